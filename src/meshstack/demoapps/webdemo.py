"""The single-service web demo: a page and a small JSON endpoint, nothing behind it.

``GET /`` serves the page, ``GET /api/info`` answers ``{"app", "pod", "served"}``
(how many requests this process has answered), ``GET /healthz`` answers ``ok``.
It depends on nothing, so it should hold a success rate of 100%. Listens on the
container port ``PORT`` (8080).
"""

from __future__ import annotations

import html
import itertools
import os

from meshstack.demoapps._http import Handler, listen_port, serve

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Web demo</title></head>
<body><h1>Web demo</h1><p>Served by pod {pod}.</p></body></html>
"""

_served = itertools.count(1)


class WebDemoHandler(Handler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        pod = os.environ.get("MESHSTACK_POD_NAME", "-")
        path = self.path.split("?", 1)[0]
        if path == "/":
            page = PAGE.format(pod=html.escape(pod)).encode()
            self.send_body(200, page, "text/html; charset=utf-8")
        elif path == "/api/info":
            self.send_json(200, {"app": "webdemo", "pod": pod, "served": next(_served)})
        elif path == "/healthz":
            self.send_body(200, b"ok\n", "text/plain")
        else:
            self.send_json(404, {"error": f"no route GET {path}"})

    do_HEAD = do_GET


def main() -> None:
    serve(WebDemoHandler, listen_port("PORT", 8080), "webdemo")


if __name__ == "__main__":
    main()
