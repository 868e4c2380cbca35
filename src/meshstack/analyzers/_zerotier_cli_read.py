"""Reading what ``zerotier-cli`` prints into one :class:`CliOutput`.

The text forms (``info``/``status``, ``listnetworks`` read by its header's field
names, ``listpeers``, the ``peers`` table and its TCP-relay note), the ``-j`` JSON
of info, listnetworks and peers, and the CLI's refusals (401, an unreadable auth
token, no service to talk to) are read here, line by line, into networks, peers
and the node's state. The zerotier-cli analyzer
(:mod:`meshstack.analyzers.zerotier_cli`) judges what was read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers._json_in_text import json_values

STATUS_LINE = re.compile(
    r"^[ \t]*(\d{3}) (info|status|listnetworks|listpeers|peers|join|leave|listmoons)\b",
    re.M,
)
_INFO = re.compile(r"^\s*200 (?:info|status) (\S+) (\S+) (ONLINE|OFFLINE|TUNNELED)\b")
_NETS = re.compile(r"^\s*200 listnetworks(?: (.*))?$")
_LISTPEERS = re.compile(r"^\s*200 listpeers (.*)$")
PEERS_HEADER = re.compile(r"<ztaddr>[^\n]{0,200}<link>")
_PEER_ROW = re.compile(
    r"^\s*([0-9a-fA-F]{10})\s+(\S+)\s+(\S+)\s+(-?\d+)\s+(DIRECT|RELAY)\b\s*(.*)$"
)
_DENIED = re.compile(r"^[ \t]*(401)[ \t]+(\S+)", re.M)
TOKEN = re.compile(
    r"authtoken\.secret not found|missing authentication token"
    r"|authtoken\.secret could not be read",
    re.I,
)
NO_SERVICE = re.compile(r"Error connecting to the ZeroTier service", re.I)
_TCP_NOTE = re.compile(r"tunneling through a TCP relay", re.I)
_DEFAULT_FIELDS = ["nwid", "name", "mac", "status", "type", "dev", "ips"]
NOT_CONFIGURED = {
    "NOT_FOUND": "no network with this id exists on its controller (typo in the id?)",
    "PORT_ERROR": "the node could not create the network's virtual interface "
    "(check /dev/net/tun and, in a container, NET_ADMIN)",
    "CLIENT_TOO_OLD": "the controller requires a newer ZeroTier client",
}
_STATUSES = {"OK", "REQUESTING_CONFIGURATION", "ACCESS_DENIED", *NOT_CONFIGURED}
_STATUSES.add("AUTHENTICATION_REQUIRED")


@dataclass
class Network:
    nwid: str
    status: str
    name: str = ""
    dev: str = ""
    ips: list[str] | None = field(default_factory=list)  # None: cut off
    line: str = ""  # as printed, for the finding's evidence


@dataclass
class Peer:
    address: str
    role: str
    link: str  # DIRECT, RELAY (via roots) or TCP (through the TCP relay)
    line: str = ""


@dataclass
class CliOutput:
    """Everything read from one artifact."""

    info: tuple[str, str, str] | None = None  # address, version, state
    info_line: str = ""
    network_list_line: str = ""  # the listnetworks header, as printed
    networks: list[Network] = field(default_factory=list)
    network_list_seen: bool = False
    peers: list[Peer] = field(default_factory=list)
    tcp_note: str = ""
    not_privileged: list[str] = field(default_factory=list)
    no_service: list[str] = field(default_factory=list)


# --- text forms -----------------------------------------------------------------


def _canon(label: str) -> str:
    low = label.strip().lower()
    if "ip" in low or "addr" in low:
        return "ips"
    if low.startswith("dev") or "device" in low:
        return "dev"
    if low in ("network", "id", "network id"):
        return "nwid"
    return low


def _row(fields: list[str], tokens: list[str]) -> dict[str, str]:
    """Field name -> value; the name (possibly empty or spaced) takes what is left."""
    if "name" not in fields or len(tokens) < len(fields) - 1:
        return dict(zip(fields, tokens, strict=False))
    at = fields.index("name")
    after = len(fields) - at - 1
    tail = tokens[len(tokens) - after :] if after else []
    row = dict(zip(fields[:at], tokens[:at], strict=False))
    row.update(zip(fields[at + 1 :], tail, strict=False))
    row["name"] = " ".join(tokens[at : len(tokens) - after])
    return row


def _network(row: dict[str, str], tokens: list[str], whole: bool) -> Network | None:
    status = row.get("status", "").upper()
    if status not in _STATUSES:
        # A row cut short shifts its fields; the status word is still recognisable.
        status = next((t.upper() for t in tokens if t.upper() in _STATUSES), "")
    if not row.get("nwid") or not status:
        return None
    if not whole:  # only the id and the status can be trusted
        return Network(row["nwid"], status, ips=None)
    ips = [ip for ip in row.get("ips", "-").split(",") if ip not in ("", "-")]
    return Network(row["nwid"], status, row.get("name", ""), row.get("dev", ""), ips)


def _read_network_line(rest: str, out: CliOutput, fields: list[str]) -> list[str]:
    """Read one ``200 listnetworks`` line; return the field names now in force."""
    out.network_list_seen = True
    labels = re.findall(r"<([^>]+)>", rest)
    if labels:
        return [_canon(label) for label in labels]
    tokens = rest.split()
    whole = len(tokens) >= len(fields) - ("name" in fields)
    if tokens and (net := _network(_row(fields, tokens), tokens, whole)):
        out.networks.append(net)
    return fields


def _read_listpeers(rest: str, out: CliOutput) -> None:
    tokens = rest.split()
    if rest.lstrip().startswith("<") or len(tokens) < 5:
        return
    # address, path (address;lastTX;lastRX or -), latency, version, role
    link = "RELAY" if tokens[1] == "-" else "DIRECT"
    out.peers.append(Peer(tokens[0], tokens[4], link))


def _read_peer_row(match: re.Match[str], out: CliOutput) -> None:
    address, _version, role, _latency, link, path = match.groups()
    if link == "RELAY" and path.strip():
        link = "TCP"
    out.peers.append(Peer(address.lower(), role, link))


def _read_text(text: str, out: CliOutput) -> None:
    fields = list(_DEFAULT_FIELDS)
    peers_table = False
    for line in text.splitlines():
        networks, peers = len(out.networks), len(out.peers)
        if m := _INFO.match(line):
            out.info, out.info_line = (m.group(1), m.group(2), m.group(3)), line.strip()
        elif m := _NETS.match(line):
            fields = _read_network_line(m.group(1) or "", out, fields)
            out.network_list_line = out.network_list_line or line.strip()
        elif m := _LISTPEERS.match(line):
            _read_listpeers(m.group(1), out)
        elif PEERS_HEADER.search(line):
            peers_table = True
        elif peers_table and (m := _PEER_ROW.match(line)):
            _read_peer_row(m, out)
        for item in out.networks[networks:] + out.peers[peers:]:
            item.line = line.strip()
        _read_failures(line, out)


def _read_failures(line: str, out: CliOutput) -> None:
    if _TCP_NOTE.search(line):
        out.tcp_note = line.strip()
    if _DENIED.match(line) or TOKEN.search(line):
        out.not_privileged.append(line.strip())
    if NO_SERVICE.search(line):
        out.no_service.append(line.strip())


# --- JSON forms (-j) ----------------------------------------------------------


def _json_info(obj: dict[str, Any], out: CliOutput) -> None:
    state = "ONLINE" if obj.get("online") else "OFFLINE"
    if obj.get("tcpFallbackActive"):
        state = "TUNNELED"
    out.info = (str(obj.get("address", "-")), str(obj.get("version", "-")), state)


def _json_network(obj: dict[str, Any], out: CliOutput) -> None:
    out.network_list_seen = True
    ips = obj.get("assignedAddresses")
    out.networks.append(
        Network(
            nwid=str(obj["nwid"]),
            status=str(obj["status"]).upper(),
            name=str(obj.get("name") or ""),
            dev=str(obj.get("portDeviceName") or ""),
            ips=[str(ip) for ip in ips] if isinstance(ips, list) else [],
        )
    )


def _json_peer(obj: dict[str, Any], out: CliOutput) -> None:
    paths = obj.get("paths")
    direct = isinstance(paths, list) and any(
        isinstance(p, dict) and p.get("preferred") for p in paths
    )
    link = "TCP" if obj.get("tunneled") else "DIRECT" if direct else "RELAY"
    out.peers.append(Peer(str(obj.get("address", "?")), str(obj.get("role")), link))


def _json_form(obj: Any) -> str:
    """Which ``-j`` document an object is: info, network, peer, or ""."""
    if not isinstance(obj, dict):
        return ""
    if "online" in obj and ("tcpFallbackActive" in obj or "planetWorldId" in obj):
        return "info"
    if "nwid" in obj and "status" in obj:
        return "network" if {"portDeviceName", "assignedAddresses"} & set(obj) else ""
    return "peer" if "address" in obj and "paths" in obj else ""


def read_json(values: list[Any], out: CliOutput) -> None:
    readers = {"info": _json_info, "network": _json_network, "peer": _json_peer}
    for value in values:
        for obj in value if isinstance(value, list) else [value]:
            if form := _json_form(obj):
                readers[form](obj, out)


def parse(text: str) -> CliOutput:
    out = CliOutput()
    _read_text(text, out)
    read_json(json_values(text)[0], out)
    return out
