"""The ZeroTier controller twin's state: networks, members, and the overlay.

:class:`Controller` holds what the real controller keeps (networks, members,
address assignment, revisions) in a JSON file; :class:`Overlay` turns an
authorized member with an address into a real interface ``zt<device>`` in the
member's network namespace, on the overlay bridge. The HTTP API in
:mod:`meshstack.twin.zerotier.controller` drives both.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def device(nwid: str, node: str) -> str:
    """A member's interface key: one per network and node, as real ZeroTier has one
    device per joined network (leaving one network keeps the others)."""
    return hashlib.sha1(f"{nwid}:{node}".encode()).hexdigest()[:10]


def now_ms() -> int:
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
            "creationTime": now_ms(),
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
            "creationTime": now_ms(),
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
            member[key] = now_ms()
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
