"""What ``zerotier-cli`` prints on a node (kind ``zerotier-cli``).

What it reads, in one artifact or several concatenated:

- ``info``/``status``: ``200 info <address> <version> ONLINE|OFFLINE|TUNNELED``
  (TUNNELED is printed when the service's ``tcpFallbackActive`` is set).
- ``listnetworks``: the header ``200 listnetworks <nwid> <name> <mac> <status>
  <type> <dev> <ZT assigned ips>`` and a row per network, read by the header's
  field names (any order; the stock order without a header). The name may be
  empty or hold spaces: the fields either side of it are counted from the ends.
- ``listpeers`` (``200 listpeers <ztaddr> <path> <latency> <version> <role>``; a
  path of ``-`` means no direct path) and ``peers`` (a ``<ztaddr> <ver> <role>
  <lat> <link> ...`` table whose link is DIRECT or RELAY, RELAY followed by a path
  when the peer is reached through the TCP relay, and a closing "NOTE: Currently
  tunneling through a TCP relay" line).
- The ``-j`` JSON of info, listnetworks and peers.
- Failures: a ``401`` status line, "authtoken.secret not found or readable", the
  older "missing authentication token and authtoken.secret not found (or
  readable)", and "Error connecting to the ZeroTier service".

What it judges (layer ``overlay``):

- ``cli_not_privileged`` (HARNESS-ERROR): 401 or an unreadable auth token: the
  harness ran the CLI without root (or the token), nothing about the node is known.
- ``api_unreachable``: the CLI could not reach the local service (not running).
- ``member_not_authorized``: a network in ACCESS_DENIED, or AUTHENTICATION_REQUIRED
  (an SSO network whose login has not been done or has expired).
- ``no_network_config``: REQUESTING_CONFIGURATION with no address; also NOT_FOUND
  (no such network on its controller), PORT_ERROR (the node could not create the
  network's virtual interface) and CLIENT_TOO_OLD: in each the node never holds a
  usable configuration. A network list with no network at all is this too.
- ``no_ip_assigned`` (WARN): a network that is OK but has no address.
- ``node_ip_not_on_overlay``: with ``Context.overlay_cidr``, an OK network none of
  whose addresses lies inside it (``details.outside_overlay``): the address k3s is
  to use lies off the overlay range, as the zerotier-member analyzer decides.
- ``degraded_tcp_relay`` (WARN): info says TUNNELED, the peers table carries the
  TCP-relay note, or a peer's link is RELAY through a path (JSON ``tunneled``).
  A peer relayed through the roots over UDP (RELAY with no path, listpeers ``-``)
  is a hint: it still works, with more latency.
- ``peer_unreachable``: info says OFFLINE: the node reaches no root server, so it
  cannot look up or reach the other members.

Output that holds none of this (only ``200 join OK``, say) is INCONCLUSIVE
``context_missing``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._json_in_text import json_values
from meshstack.analyzers.zerotier_member import (
    authorize_hint,
    in_range,
    overlay_range,
)
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "zerotier-cli"

_STATUS_LINE = re.compile(
    r"^[ \t]*(\d{3}) (info|status|listnetworks|listpeers|peers|join|leave|listmoons)\b",
    re.M,
)
_INFO = re.compile(r"^\s*200 (?:info|status) (\S+) (\S+) (ONLINE|OFFLINE|TUNNELED)\b")
_NETS = re.compile(r"^\s*200 listnetworks(?: (.*))?$")
_LISTPEERS = re.compile(r"^\s*200 listpeers (.*)$")
_PEERS_HEADER = re.compile(r"<ztaddr>[^\n]{0,200}<link>")
_PEER_ROW = re.compile(
    r"^\s*([0-9a-fA-F]{10})\s+(\S+)\s+(\S+)\s+(-?\d+)\s+(DIRECT|RELAY)\b\s*(.*)$"
)
_DENIED = re.compile(r"^[ \t]*(401)[ \t]+(\S+)", re.M)
_TOKEN = re.compile(
    r"authtoken\.secret not found|missing authentication token"
    r"|authtoken\.secret could not be read",
    re.I,
)
_NO_SERVICE = re.compile(r"Error connecting to the ZeroTier service", re.I)
_TCP_NOTE = re.compile(r"tunneling through a TCP relay", re.I)
_DEFAULT_FIELDS = ["nwid", "name", "mac", "status", "type", "dev", "ips"]
_NOT_CONFIGURED = {
    "NOT_FOUND": "no network with this id exists on its controller (typo in the id?)",
    "PORT_ERROR": "the node could not create the network's virtual interface "
    "(check /dev/net/tun and, in a container, NET_ADMIN)",
    "CLIENT_TOO_OLD": "the controller requires a newer ZeroTier client",
}
_STATUSES = {"OK", "REQUESTING_CONFIGURATION", "ACCESS_DENIED", *_NOT_CONFIGURED}
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
        elif _PEERS_HEADER.search(line):
            peers_table = True
        elif peers_table and (m := _PEER_ROW.match(line)):
            _read_peer_row(m, out)
        for item in out.networks[networks:] + out.peers[peers:]:
            item.line = line.strip()
        _read_failures(line, out)


def _read_failures(line: str, out: CliOutput) -> None:
    if _TCP_NOTE.search(line):
        out.tcp_note = line.strip()
    if _DENIED.match(line) or _TOKEN.search(line):
        out.not_privileged.append(line.strip())
    if _NO_SERVICE.search(line):
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


def _read_json(values: list[Any], out: CliOutput) -> None:
    readers = {"info": _json_info, "network": _json_network, "peer": _json_peer}
    for value in values:
        for obj in value if isinstance(value, list) else [value]:
            if form := _json_form(obj):
                readers[form](obj, out)


def parse(text: str) -> CliOutput:
    out = CliOutput()
    _read_text(text, out)
    _read_json(json_values(text)[0], out)
    return out


# --- kind -----------------------------------------------------------------------


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if _STATUS_LINE.search(text) or _PEERS_HEADER.search(text):
        return 0.95
    if _TOKEN.search(text) or _NO_SERVICE.search(text):
        return 0.9
    if "{" not in text and "[" not in text:
        return 0.0
    out = CliOutput()
    _read_json(json_values(text)[0], out)
    return 0.85 if (out.info or out.networks or out.peers) else 0.0


def _judge_info(out: CliOutput, f: Finding) -> None:
    if out.info is None:
        return
    address, version, state = out.info
    f.details.update(node=address, version=version, state=state)
    f.evidence.append(out.info_line or f"info {address} {version} {state}")
    if state == "TUNNELED":
        f.add(
            "degraded_tcp_relay",
            f"node {address} reaches ZeroTier only through the TCP relay: "
            "let UDP 9993 out (and in) through the firewall or NAT",
        )
    elif state == "OFFLINE":
        f.add(
            "peer_unreachable",
            f"node {address} is OFFLINE: it reaches no root server, so it cannot "
            "find the other members; check outbound UDP 9993 and the service's log",
        )


def _judge_network(net: Network, node: str, ctx: Context, f: Finding) -> None:
    f.details.setdefault("networks", {})[net.nwid] = {
        "status": net.status,
        "name": net.name,
        "dev": net.dev,
        "ips": net.ips,
    }
    shown = ",".join(net.ips or []) or "-"
    f.evidence.append(net.line or f"network {net.nwid} {net.status} {shown}")
    if net.status in ("ACCESS_DENIED", "AUTHENTICATION_REQUIRED"):
        sso = net.status == "AUTHENTICATION_REQUIRED"
        hint = (
            f"network {net.nwid} needs an SSO login for node {node}"
            if sso
            else authorize_hint(node, net.nwid)
        )
        f.add("member_not_authorized", hint)
    elif net.status == "REQUESTING_CONFIGURATION" and not net.ips:
        f.add(
            "no_network_config",
            f"node {node} never received network {net.nwid}'s configuration: is the "
            "controller online and reachable over UDP 9993?",
        )
    elif net.status in _NOT_CONFIGURED:
        f.add("no_network_config", f"{net.nwid}: {_NOT_CONFIGURED[net.status]}")
    elif net.status == "OK":
        _judge_addresses(net, ctx, f)
    elif net.status != "REQUESTING_CONFIGURATION":
        f.hint(f"network {net.nwid} has status {net.status}, which is not judged")


def _judge_addresses(net: Network, ctx: Context, f: Finding) -> None:
    if net.ips is None:
        f.add(
            "context_missing",
            f"network {net.nwid}: its row is cut off before the addresses; "
            "capture listnetworks whole",
        )
        return
    if not net.ips:
        f.add(
            "no_ip_assigned",
            f"network {net.nwid} is OK but gave this node no address: check the "
            "network's assignment pools and the member's noAutoAssignIps",
        )
        return
    cidr = overlay_range(ctx, f)
    if cidr is None:
        return
    if not any(in_range(ip, cidr) for ip in net.ips):
        # It has an address, so not no_ip_assigned; see zerotier-member for why
        # this is node_ip_not_on_overlay until an overlay-specific code exists.
        f.add(
            "node_ip_not_on_overlay",
            f"network {net.nwid} gave {', '.join(net.ips)}, none inside the overlay "
            f"range {cidr}: fix the network's pools or --overlay-cidr",
        )
        f.details.setdefault("outside_overlay", {})[net.nwid] = list(net.ips)


def _judge_peers(out: CliOutput, f: Finding) -> None:
    tcp = [p.address for p in out.peers if p.link == "TCP"]
    relayed = [p.address for p in out.peers if p.link == "RELAY" and p.role == "LEAF"]
    if out.tcp_note or tcp:
        lines = [p.line for p in out.peers if p.link == "TCP" and p.line]
        f.evidence.extend(lines + ([out.tcp_note] if out.tcp_note else []))
        f.add(
            "degraded_tcp_relay",
            "peers are reached through ZeroTier's TCP relay: let UDP 9993 through "
            "the firewall or NAT so that direct paths can form",
            tcp_relayed_peers=tcp,
        )
    if relayed:
        f.hint(
            f"peers {', '.join(relayed)} are relayed through the roots (no direct "
            "path yet): expect extra latency"
        )
        f.details["relayed_peers"] = relayed


def _judge_output(out: CliOutput, ctx: Context, f: Finding) -> None:
    _judge_info(out, f)
    node = out.info[0] if out.info else "<node>"
    for net in out.networks:
        _judge_network(net, node, ctx, f)
    if out.network_list_seen and not out.networks:
        f.add("no_network_config", f"node {node} has joined no network")
        f.evidence.append(out.network_list_line or "listnetworks: no network")
    _judge_peers(out, f)
    if out.no_service:
        f.add(
            "api_unreachable",
            "zerotier-cli could not reach the local zerotier-one service: is it "
            "running (and listening on 127.0.0.1:9993)?",
        )
        f.evidence.extend(out.no_service[:3])


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    out = parse(evidence.text)
    f = Finding(layer="overlay", kind=NAME)
    if out.not_privileged:
        f.add(
            "cli_not_privileged",
            "zerotier-cli was refused (401 or no readable authtoken.secret): run it "
            "as root, or give the harness a copy of the token (-T or "
            "~/.zeroTierOneAuthToken)",
        )
        f.evidence.extend(out.not_privileged[:3])
    _judge_output(out, ctx, f)
    if not f.reasons and not (out.info or out.networks or out.peers):
        f.add(
            "context_missing",
            f"{evidence.name}: no info, network or peer lines to judge; capture "
            "`zerotier-cli info`, `listnetworks` and `peers`",
        )
    log.debug("[%s] %s", evidence.name, f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="overlay",
        summary="zerotier-cli info/listnetworks/peers output, text or -j JSON",
        detect=detect,
        judge=judge,
    )
)
