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

The reading is in :mod:`meshstack.analyzers._zerotier_cli_read`; this module
detects the kind and judges what was read.
"""

from __future__ import annotations

import logging

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._json_in_text import json_values
from meshstack.analyzers._zerotier_cli_read import (
    NO_SERVICE,
    NOT_CONFIGURED,
    PEERS_HEADER,
    STATUS_LINE,
    TOKEN,
    CliOutput,
    Network,
    parse,
    read_json,
)

# Peer is not used here; it stays importable from this module, where it was defined.
from meshstack.analyzers._zerotier_cli_read import Peer as Peer
from meshstack.analyzers.zerotier_member import (
    authorize_hint,
    in_range,
    overlay_range,
)
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "zerotier-cli"


# --- kind -----------------------------------------------------------------------


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if STATUS_LINE.search(text) or PEERS_HEADER.search(text):
        return 0.95
    if TOKEN.search(text) or NO_SERVICE.search(text):
        return 0.9
    if "{" not in text and "[" not in text:
        return 0.0
    out = CliOutput()
    read_json(json_values(text)[0], out)
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
    elif net.status in NOT_CONFIGURED:
        f.add("no_network_config", f"{net.nwid}: {NOT_CONFIGURED[net.status]}")
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
