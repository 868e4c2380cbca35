"""emojivoto's ``web`` service: the page and the JSON API the page calls.

``GET /`` and ``GET /leaderboard`` serve the page; the API:

* ``GET /api/list``: every emoji (from ``emoji``);
* ``GET /api/vote?choice=:shortcode:``: checks the emoji exists (``emoji``), then
  calls ``voting``'s ``Vote<Name>``; a failed vote (always, for :poop:) is HTTP 500;
* ``GET /api/leaderboard``: the results from ``voting`` with each emoji's character.

The two services are found at ``EMOJISVC_HOST`` and ``VOTINGSVC_HOST`` (``host:port``),
as in the real manifest. Listens on the container port ``WEB_PORT`` (8080).
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from meshstack.demoapps._http import Handler, Upstream, listen_port, serve
from meshstack.demoapps.emojivoto.catalogue import method_name

EMOJI = "/emojivoto.v1.EmojiService/"
VOTING = "/emojivoto.v1.VotingService/"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Emoji Vote</title></head>
<body><h1>Emoji Vote</h1>
<p>Pick your favourite emoji; see the <a href="/leaderboard">leaderboard</a>.</p>
<p>Served by pod {pod}.</p>
<script>
fetch('/api/list').then(r => r.json()).then(list => {{
  document.body.insertAdjacentHTML('beforeend', list.map(e =>
    `<a href="/api/vote?choice=${{e.shortcode}}">${{e.unicode}}</a>`).join(' '));
}});
</script></body></html>
"""


class WebHandler(Handler):
    emoji: Upstream
    voting: Upstream

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        url = urlsplit(self.path)
        route = {
            "/": self.page,
            "/leaderboard": self.page,
            "/api/list": self.api_list,
            "/api/vote": self.api_vote,
            "/api/leaderboard": self.api_leaderboard,
            "/ping": lambda _q: self.send_json(200, {"ok": True}),
        }.get(url.path)
        if route is None:
            self.send_json(404, {"error": f"no route GET {url.path}"})
            return
        try:
            route(parse_qs(url.query))
        except OSError as exc:
            self.send_json(502, {"error": f"an upstream did not answer: {exc}"})

    def page(self, _query: dict[str, list[str]]) -> None:
        pod = html.escape(os.environ.get("MESHSTACK_POD_NAME", "-"))
        self.send_body(200, PAGE.format(pod=pod).encode(), "text/html; charset=utf-8")

    def api_list(self, _query: dict[str, list[str]]) -> None:
        status, body = self.emoji.call(EMOJI + "ListAll")
        if status != 200:
            self.send_json(500, {"error": f"emoji service answered {status}"})
            return
        self.send_json(200, body["list"])

    def api_vote(self, query: dict[str, list[str]]) -> None:
        choice = (query.get("choice") or [""])[0]
        status, body = self.emoji.call(EMOJI + "FindByShortcode", {"shortcode": choice})
        if status != 200 or not body or body.get("emoji") is None:
            self.send_json(400, {"error": f"no emoji with shortcode {choice!r}"})
            return
        status, body = self.voting.call(VOTING + "Vote" + method_name(choice))
        if status != 200:
            error = (body or {}).get("error", f"voting service answered {status}")
            self.send_json(500, {"error": error})
            return
        self.send_json(200, {})

    def api_leaderboard(self, _query: dict[str, list[str]]) -> None:
        status, results = self.voting.call(VOTING + "Results")
        if status != 200:
            self.send_json(500, {"error": f"voting service answered {status}"})
            return
        status, listing = self.emoji.call(EMOJI + "ListAll")
        if status != 200:
            self.send_json(500, {"error": f"emoji service answered {status}"})
            return
        chars = {e["shortcode"]: e["unicode"] for e in listing["list"]}
        board: list[dict[str, Any]] = [
            {
                "shortcode": r["shortcode"],
                "unicode": chars.get(r["shortcode"], "?"),
                "votes": r["votes"],
            }
            for r in results["results"]
        ]
        self.send_json(200, board)


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(
            f"web: environment variable {name} is not set; set it to the service's "
            "host:port (the manifest sets emoji-svc.emojivoto:8080 and "
            "voting-svc.emojivoto:8080)"
        )
    return value


def main() -> None:
    WebHandler.emoji = Upstream(_required("EMOJISVC_HOST"))
    WebHandler.voting = Upstream(_required("VOTINGSVC_HOST"))
    serve(WebHandler, listen_port("WEB_PORT", 8080), "web")


if __name__ == "__main__":
    main()
