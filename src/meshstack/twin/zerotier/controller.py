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
import hashlib
import ipaddress
import json
import logging
import secrets
import subprocess
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERSION = "1.14.2"


def device(nwid: str, node: str) -> str:
    """A member's interface key: one per network and node, as real ZeroTier has one
    device per joined network (leaving one network keeps the others)."""
    return hashlib.sha1(f"{nwid}:{node}".encode()).hexdigest()[:10]


def _now_ms() -> int:
    return int(time.time() * 1000)


class Overlay:
    """Gives member namespaces their interface on the overlay bridge."""

    def __init__(self, bridge: str) -> None:
        self.bridge = bridge

    def _ip(self, *args: str, netns: str | None = None, check: bool = True) -> None:
        argv = ["ip", *(["-n", netns] if netns else []), *args]
        log.debug("run: %s", " ".join(argv))
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        if check and res.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(argv)}` exited {res.returncode}: {res.stderr}"
            )

    def attach(
        self, netns: str, node_id: str, address: str, prefix: int, mtu: int
    ) -> str:
        inside, outside = f"zt{node_id}", f"zv{node_id}"
        self.detach(netns, node_id)
        self._ip(
            "link",
            "add",
            outside,
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            inside,
        )
        self._ip("link", "set", inside, "netns", netns)
        self._ip("link", "set", outside, "master", self.bridge, "up")
        self._ip("link", "set", inside, "mtu", str(mtu), "up", netns=netns)
        self._ip("addr", "add", f"{address}/{prefix}", "dev", inside, netns=netns)
        log.info(
            "[%s] overlay interface %s up with %s/%d", netns, inside, address, prefix
        )
        return inside

    def detach(self, netns: str, node_id: str) -> None:
        self._ip("link", "del", f"zv{node_id}", check=False)
        self._ip("link", "del", f"zt{node_id}", netns=netns, check=False)


class Controller:
    """Networks and members, persisted to one JSON file after every change."""

    def __init__(self, data_file: Path, overlay: Overlay | None) -> None:
        self.data_file = data_file
        self.overlay = overlay
        self.lock = threading.RLock()
        self.address = secrets.token_hex(5)
        self.networks: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.joined: dict[str, dict[str, str]] = {}  # nwid -> node -> netns
        self._load()

    def _load(self) -> None:
        if self.data_file.exists():
            data = json.loads(self.data_file.read_text())
            self.address = data["address"]
            self.networks, self.members = data["networks"], data["members"]
            self.joined = data.get("joined", {})

    def _save(self) -> None:
        data = {
            "address": self.address,
            "networks": self.networks,
            "members": self.members,
            "joined": self.joined,
        }
        tmp = self.data_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.data_file)

    # -- networks ----------------------------------------------------------------
    def create_network(self, nwid: str, body: dict[str, Any]) -> dict[str, Any]:
        if nwid.endswith("______"):
            nwid = nwid[:10] + secrets.token_hex(3)
        net = {
            "id": nwid,
            "nwid": nwid,
            "objtype": "network",
            "name": "",
            "private": True,
            "enableBroadcast": True,
            "v4AssignMode": {"zt": False},
            "v6AssignMode": {"zt": False, "6plane": False, "rfc4193": False},
            "mtu": 2800,
            "multicastLimit": 32,
            "routes": [],
            "ipAssignmentPools": [],
            "rules": [{"type": "ACTION_ACCEPT"}],
            "capabilities": [],
            "tags": [],
            "creationTime": _now_ms(),
            "revision": 0,
        }
        self.networks[nwid] = net
        self.members.setdefault(nwid, {})
        return self.update_network(nwid, body)

    def update_network(self, nwid: str, body: dict[str, Any]) -> dict[str, Any]:
        net = self.networks[nwid]
        for key in (
            "name",
            "private",
            "enableBroadcast",
            "v4AssignMode",
            "mtu",
            "multicastLimit",
            "routes",
            "ipAssignmentPools",
            "rules",
        ):
            if key in body:
                net[key] = body[key]
        net["revision"] += 1
        self._save()
        return net

    def delete_network(self, nwid: str) -> dict[str, Any]:
        for node in list(self.members.get(nwid, {})):
            self.delete_member(nwid, node)
        net = self.networks.pop(nwid)
        self.members.pop(nwid, None)
        self.joined.pop(nwid, None)
        self._save()
        return net

    # -- members -----------------------------------------------------------------
    def _new_member(self, nwid: str, node: str) -> dict[str, Any]:
        return {
            "id": node,
            "address": node,
            "nwid": nwid,
            "objtype": "member",
            "authorized": False,
            "activeBridge": False,
            "identity": f"{node}:0:{secrets.token_hex(32)}",
            "ipAssignments": [],
            "noAutoAssignIps": False,
            "creationTime": _now_ms(),
            "lastAuthorizedTime": 0,
            "lastDeauthorizedTime": 0,
            "capabilities": [],
            "tags": [],
            "revision": 1,
            "vMajor": 1,
            "vMinor": 14,
            "vRev": 2,
            "vProto": 12,
        }

    def update_member(
        self, nwid: str, node: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        members = self.members[nwid]
        member = members.get(node) or self._new_member(nwid, node)
        members[node] = member
        if "authorized" in body and bool(body["authorized"]) != member["authorized"]:
            member["authorized"] = bool(body["authorized"])
            key = (
                "lastAuthorizedTime" if member["authorized"] else "lastDeauthorizedTime"
            )
            member[key] = _now_ms()
        for key in ("ipAssignments", "noAutoAssignIps", "activeBridge", "name"):
            if key in body:
                member[key] = body[key]
        self._assign(nwid, member)
        member["revision"] += 1
        self._configure(nwid, member)
        self._save()
        return member

    def delete_member(self, nwid: str, node: str) -> dict[str, Any]:
        member = self.members[nwid].pop(node)
        netns = self.joined.get(nwid, {}).pop(node, None)
        if netns and self.overlay:
            self.overlay.detach(netns, device(nwid, node))
        self._save()
        return member

    def _assign(self, nwid: str, member: dict[str, Any]) -> None:
        """Give an authorized member an address from the pool, as auto-assign does."""
        net = self.networks[nwid]
        if (
            not member["authorized"]
            or member["ipAssignments"]
            or member["noAutoAssignIps"]
        ):
            return
        if not net["v4AssignMode"].get("zt") or not net["ipAssignmentPools"]:
            return
        taken = {ip for m in self.members[nwid].values() for ip in m["ipAssignments"]}
        pool = net["ipAssignmentPools"][0]
        start = ipaddress.IPv4Address(pool["ipRangeStart"])
        end = ipaddress.IPv4Address(pool["ipRangeEnd"])
        candidate = start
        while candidate <= end:
            if str(candidate) not in taken:
                member["ipAssignments"] = [str(candidate)]
                return
            candidate += 1

    def _prefix(self, nwid: str, address: str) -> int:
        for route in self.networks[nwid]["routes"]:
            target = ipaddress.ip_network(route["target"], strict=False)
            if ipaddress.ip_address(address) in target:
                return target.prefixlen
        return 32

    def _configure(self, nwid: str, member: dict[str, Any]) -> None:
        """Hand the joined node its configuration, or take it away."""
        netns = self.joined.get(nwid, {}).get(member["id"])
        if netns is None or self.overlay is None:
            return
        if member["authorized"] and member["ipAssignments"]:
            address = member["ipAssignments"][0]
            prefix = self._prefix(nwid, address)
            self.overlay.attach(
                netns,
                device(nwid, member["id"]),
                address,
                prefix,
                self.networks[nwid]["mtu"],
            )
        else:
            self.overlay.detach(netns, device(nwid, member["id"]))

    # -- the node side (twin-internal) ---------------------------------------------
    def join(self, nwid: str, node: str, netns: str) -> dict[str, Any]:
        if nwid not in self.networks:
            return {"status": "NOT_FOUND"}
        self.joined.setdefault(nwid, {})[node] = netns
        if node not in self.members[nwid]:
            self.members[nwid][node] = self._new_member(nwid, node)
        self._configure(nwid, self.members[nwid][node])
        self._save()
        return self.netconf(nwid, node)

    def leave(self, nwid: str, node: str) -> None:
        netns = self.joined.get(nwid, {}).pop(node, None)
        if netns and self.overlay:
            self.overlay.detach(netns, device(nwid, node))
        self._save()

    def netconf(self, nwid: str, node: str) -> dict[str, Any]:
        net = self.networks.get(nwid)
        member = self.members.get(nwid, {}).get(node)
        if net is None:
            return {"nwid": nwid, "status": "NOT_FOUND", "assignedAddresses": []}
        if member is None or node not in self.joined.get(nwid, {}):
            status = "REQUESTING_CONFIGURATION"
        elif not member["authorized"]:
            status = (
                "ACCESS_DENIED"
                if member["lastDeauthorizedTime"]
                else "REQUESTING_CONFIGURATION"
            )
        else:
            status = "OK"
        addresses = []
        if status == "OK" and member is not None:
            addresses = [
                f"{a}/{self._prefix(nwid, a)}" for a in member["ipAssignments"]
            ]
        return {
            "nwid": nwid,
            "id": nwid,
            "name": net["name"] if status == "OK" else "",
            "status": status,
            "type": "PRIVATE" if net["private"] else "PUBLIC",
            "mtu": net["mtu"],
            "portDeviceName": f"zt{device(nwid, node)}",
            "mac": "02:" + ":".join(node[i : i + 2] for i in range(0, 10, 2)),
            "assignedAddresses": addresses,
        }


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
        return ok, {"controller": True, "apiVersion": 4, "clock": _now_ms()}
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
