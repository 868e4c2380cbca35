"""emojivoto's ``emoji`` service: list every emoji, find one by its shortcode.

Routes (POST, JSON): ``/emojivoto.v1.EmojiService/ListAll`` ->
``{"list": [{"unicode", "shortcode"}...]}``;
``/emojivoto.v1.EmojiService/FindByShortcode`` with ``{"shortcode": ...}`` ->
``{"emoji": {...}}`` or ``{"emoji": null}`` when there is no such emoji.
Listens on the container port ``GRPC_PORT`` (8080), as the real image does.
"""

from __future__ import annotations

from meshstack.demoapps._http import Handler, listen_port, serve
from meshstack.demoapps.emojivoto.catalogue import EMOJI

PREFIX = "/emojivoto.v1.EmojiService/"
LISTING = [{"unicode": char, "shortcode": code} for code, char in EMOJI.items()]


class EmojiHandler(Handler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
        try:
            body = self.read_json()
        except ValueError:
            self.send_json(400, {"error": "the request body is not JSON"})
            return
        if self.path == PREFIX + "ListAll":
            self.send_json(200, {"list": LISTING})
        elif self.path == PREFIX + "FindByShortcode":
            code = str(body.get("shortcode", ""))
            found = (
                {"unicode": EMOJI[code], "shortcode": code} if code in EMOJI else None
            )
            self.send_json(200, {"emoji": found})
        else:
            self.send_json(404, {"error": f"no method {self.path}"})

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ping":
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": f"no route GET {self.path}"})


def main() -> None:
    serve(EmojiHandler, listen_port("GRPC_PORT", 8080), "emoji")


if __name__ == "__main__":
    main()
