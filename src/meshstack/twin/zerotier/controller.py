"""A twin of ZeroTier's network controller, and the overlay segment it manages.

The HTTP API is the self-hosted controller's (the `zerotier-one` service's
``/controller`` endpoints, authenticated with ``X-ZT1-Auth``): create, read, update
and delete networks and members, with the real JSON field names. What the real
controller does over ZeroTier's own peer protocol (a node asking to join, the
controller sending it its network configuration) happens here over two internal
endpoints under ``/twin/`` that only the twin ``zerotier-cli`` calls.

The overlay itself is real L2: once a member is authorized and has an address,
the controller gives the member's network namespace an interface ``zt<node id>``
on the bridge the local stack made, carrying that address and the network's MTU.
Deauthorizing or deleting the member takes the interface away again, as a real
node loses its network configuration.

Simplifications: one controller, IPv4 only, the managed route is the network's
CIDR, and an address is taken from the first pool, lowest free first.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from meshstack.twin.zerotier.network import Controller, Overlay, now_ms

log = logging.getLogger(__name__)

VERSION = "1.14.2"


class Handler(BaseHTTPRequestHandler):
    server: ControllerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        data = json.loads(self.rfile.read(length) or b"{}")
        return data if isinstance(data, dict) else {}

    def _authorized(self) -> bool:
        token = self.headers.get("X-ZT1-Auth") or ""
        bearer = self.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            token = bearer[7:]
        return secrets.compare_digest(token, self.server.token)

    def _route(self, method: str) -> None:
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        # The node side needs no admin token, as a real node needs none to ask to
        # join: the controller's authorization is what admits it.
        if parts[:1] != ["twin"] and not self._authorized():
            self._send(HTTPStatus.UNAUTHORIZED, {"error": "401 Unauthorized"})
            return
        try:
            body = self._body() if method == "POST" else {}
            with self.server.controller.lock:
                status, out = dispatch(self.server.controller, method, parts, body)
        except (ValueError, KeyError) as exc:
            status, out = HTTPStatus.BAD_REQUEST, {"error": f"bad request: {exc}"}
        self._send(status, out)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")


def dispatch(
    c: Controller, method: str, parts: list[str], body: dict[str, Any]
) -> tuple[int, Any]:
    ok, missing = HTTPStatus.OK, (HTTPStatus.NOT_FOUND, {"error": "404 Not Found"})
    if parts == ["status"]:
        return ok, {
            "address": c.address,
            "online": True,
            "version": VERSION,
            "tcpFallbackActive": False,
        }
    if parts == ["controller"]:
        return ok, {"controller": True, "apiVersion": 4, "clock": now_ms()}
    if parts[:2] == ["controller", "network"]:
        return _network_api(c, method, parts[2:], body)
    if parts[:1] == ["twin"] and len(parts) == 4:
        _, action, nwid, node = parts
        if action == "join" and method == "POST":
            return ok, c.join(nwid, node, str(body["netns"]))
        if action == "leave" and method == "POST":
            c.leave(nwid, node)
            return ok, {"nwid": nwid, "status": "LEFT"}
        if action == "netconf" and method == "GET":
            return ok, c.netconf(nwid, node)
    return missing


def _network_api(
    c: Controller, method: str, rest: list[str], body: dict[str, Any]
) -> tuple[int, Any]:
    ok, missing = HTTPStatus.OK, (HTTPStatus.NOT_FOUND, {"error": "404 Not Found"})
    if not rest:
        return ok, sorted(c.networks)
    nwid = rest[0]
    if len(rest) == 1:
        if method == "POST":
            if nwid in c.networks:
                return ok, c.update_network(nwid, body)
            if len(nwid) != 16 or not nwid.startswith(c.address):
                return missing
            return ok, c.create_network(nwid, body)
        if nwid not in c.networks:
            return missing
        return ok, c.delete_network(nwid) if method == "DELETE" else c.networks[nwid]
    if nwid not in c.networks or rest[1] != "member":
        return missing
    if len(rest) == 2:
        return ok, {node: m["revision"] for node, m in c.members[nwid].items()}
    node = rest[2]
    if method == "POST":
        return ok, c.update_member(nwid, node, body)
    if node not in c.members[nwid]:
        return missing
    return ok, c.delete_member(nwid, node) if method == "DELETE" else c.members[nwid][
        node
    ]


class ControllerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], controller: Controller, token: str
    ) -> None:
        super().__init__(address, Handler)
        self.controller = controller
        self.token = token


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="ZeroTier controller twin")
    p.add_argument(
        "--listen", action="append", required=True, help="host:port, repeatable"
    )
    p.add_argument("--token-file", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument(
        "--bridge", default=None, help="overlay bridge for member interfaces"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    token = args.token_file.read_text().strip()
    controller = Controller(args.data, Overlay(args.bridge) if args.bridge else None)
    servers = []
    for spec in args.listen:
        host, port = spec.rsplit(":", 1)
        srv = ControllerServer((host, int(port)), controller, token)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        log.info("controller %s listening on %s", controller.address, spec)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
