"""emojivoto's ``voting`` service: one vote method per emoji, and the results.

Routes (POST, JSON): ``/emojivoto.v1.VotingService/Vote<Name>`` (``VoteDoughnut``,
``VotePoop`` ...) counts one vote; ``/emojivoto.v1.VotingService/Results`` ->
``{"results": [{"shortcode", "votes"}...]}`` most votes first. Voting for :poop:
always fails with HTTP 500 and counts nothing: the real app's deliberate failure.
Listens on the container port ``GRPC_PORT`` (8080).
"""

from __future__ import annotations

import threading
from collections import Counter

from meshstack.demoapps._http import Handler, listen_port, serve
from meshstack.demoapps.emojivoto.catalogue import BY_METHOD, FAILING_SHORTCODE

PREFIX = "/emojivoto.v1.VotingService/"


class Ballot:
    """Votes per shortcode, safe to use from many handler threads."""

    def __init__(self) -> None:
        self._votes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def vote(self, shortcode: str) -> None:
        with self._lock:
            self._votes[shortcode] += 1

    def results(self) -> list[dict[str, object]]:
        with self._lock:
            ranked = self._votes.most_common()
        return [{"shortcode": code, "votes": n} for code, n in ranked]


BALLOT = Ballot()


class VotingHandler(Handler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
        self.read_json()
        method = self.path.removeprefix(PREFIX) if self.path.startswith(PREFIX) else ""
        if method == "Results":
            self.send_json(200, {"results": BALLOT.results()})
            return
        shortcode = BY_METHOD.get(method.removeprefix("Vote")) if method else None
        if not method.startswith("Vote") or shortcode is None:
            self.send_json(404, {"error": f"no method {self.path}"})
        elif shortcode == FAILING_SHORTCODE:
            self.send_json(500, {"error": "ERROR: voting for :poop: always fails"})
        else:
            BALLOT.vote(shortcode)
            self.send_json(200, {})

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ping":
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": f"no route GET {self.path}"})


def main() -> None:
    serve(VotingHandler, listen_port("GRPC_PORT", 8080), "voting")


if __name__ == "__main__":
    main()
