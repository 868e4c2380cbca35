"""emojivoto's ``vote-bot``: votes for a random emoji now and then, like the real one.

It calls ``WEB_HOST`` (``host:port``) every ``VOTE_BOT_INTERVAL`` seconds (default
1): a random emoji from ``/api/list``, then ``/api/vote``. Its random choices include
:poop:, so it adds failures of the declared class to the app's numbers: scale it to
zero while Locust measures, or the mesh's counts and Locust's will not reconcile.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)


def vote_once(base: str, rng: random.Random) -> int:
    """One random vote; the HTTP status it got."""
    with urllib.request.urlopen(base + "/api/list", timeout=5) as resp:
        listing = json.loads(resp.read())
    choice = rng.choice(listing)["shortcode"]
    url = base + "/api/vote?" + urllib.parse.urlencode({"choice": choice})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = "http://" + os.environ.get("WEB_HOST", "web-svc.emojivoto:80")
    interval = float(os.environ.get("VOTE_BOT_INTERVAL", "1"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    rng = random.Random()
    while not stop.wait(interval):
        try:
            log.info("[vote-bot] vote: %d", vote_once(base, rng))
        except OSError as exc:
            log.warning(
                "[vote-bot] %s did not answer: %s; retrying in %.0fs",
                base,
                exc,
                interval,
            )


if __name__ == "__main__":
    main()
