"""ZeroTier network members as the controllers report them (kind ``zerotier-member``).

What it reads: the member JSON of ZeroTier Central (``/api/v1/network/<nwid>/member``
and ``.../member/<node>``: an object with ``networkId``, ``nodeId``, ``online``,
``lastOnline``/``lastSeen`` and the member's settings under ``config``) and of the
self-hosted controller (``/controller/network/<nwid>/member/<node>``: one flat object
with ``objtype: member``, ``nwid``, ``address``, ``authorized``, ``ipAssignments``,
``lastAuthorizedTime``, ``lastDeauthorizedTime``, ``noAutoAssignIps``). One object,
a list of them, or a stream of them (``curl`` in a loop, one document per line); a
copy cut off in the middle is read as far as it goes (the JSON is found in the text
by :mod:`meshstack.analyzers._json_in_text`).

What it judges (layer ``overlay``), per member:

- ``member_deauthorized``: ``lastDeauthorizedTime`` later than
  ``lastAuthorizedTime``. It names what happened, so it replaces
  ``member_not_authorized`` for that member.
- ``member_not_authorized``: ``authorized`` is false and the member was never
  deauthorized after its last authorization.
- ``no_ip_assigned`` (WARN): authorized, auto-assign on, but ``ipAssignments``
  is empty.
- Authorized, no address and ``noAutoAssignIps`` true: not ``no_ip_assigned``
  (defined for auto-assign on). No address will come by itself and which one the
  member should hold is the operator's choice, absent from the JSON: INCONCLUSIVE
  ``context_missing``, with a hint to assign one or turn auto-assign on.
- With ``Context.overlay_cidr``: an authorized member none of whose addresses lies
  inside the range is FAIL ``node_ip_not_on_overlay`` (``details.outside_overlay``):
  that address is the one k3s is to use as ``--node-ip`` (case C15), and it lies
  outside the overlay range. The vocabulary has no overlay-specific code for it;
  this is the smallest honest choice until one is added. Without a range, a hint
  says the addresses were not judged.
- ``online: false`` (Central only): case C15 requires ``online=true`` for a PASS.
  It says the node has not talked to Central lately, not that members cannot reach
  each other (``peer_unreachable`` is the ping check's), so it is INCONCLUSIVE
  ``context_missing`` with a hint naming what to capture on the node.

A member list that holds only ids (the controller's ``/member`` index), or members
cut off before their authorization or addresses, is INCONCLUSIVE
``context_missing``: nothing about those members can be claimed.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._json_in_text import json_values
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "zerotier-member"

_NODE_ID = re.compile(r"^[0-9a-f]{10}$")


# --- members ----------------------------------------------------------------


@dataclass
class Member:
    """The fields of one member this analyzer judges, from either controller."""

    node: str
    network: str
    source: str  # "central" or "controller"
    authorized: bool | None = None
    last_authorized: int = 0
    last_deauthorized: int = 0
    ips: list[str] | None = None
    no_auto_assign: bool | None = None
    online: bool | None = None
    last_online: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _is_central(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("config"), dict)
        and ("nodeId" in obj or "networkId" in obj)
    )


def _is_controller(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if obj.get("objtype") == "member":
        return True
    return "nwid" in obj and "authorized" in obj and ("address" in obj or "id" in obj)


def _is_member_index(obj: Any) -> bool:
    """The controller's ``/member`` listing: node id -> revision, nothing else."""
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(_NODE_ID.match(str(k)) and isinstance(v, int) for k, v in obj.items())
    )


def _walk(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _bool(value: Any) -> bool | None:
    # Controllers of the 1.2 era wrote booleans as the strings "true"/"false".
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value if isinstance(value, bool) else None


def _ips(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [str(v) for v in value if isinstance(v, str)]


def _from_settings(m: Member, cfg: dict[str, Any]) -> Member:
    m.authorized = _bool(cfg.get("authorized"))
    m.last_authorized = _int(cfg.get("lastAuthorizedTime"))
    m.last_deauthorized = _int(cfg.get("lastDeauthorizedTime"))
    m.ips = _ips(cfg.get("ipAssignments"))
    m.no_auto_assign = _bool(cfg.get("noAutoAssignIps"))
    return m


def _central(obj: dict[str, Any]) -> Member:
    cfg = obj["config"]
    node = obj.get("nodeId") or cfg.get("address") or str(obj.get("id", "?"))[-10:]
    network = obj.get("networkId") or cfg.get("nwid") or "?"
    m = _from_settings(Member(str(node), str(network), "central"), cfg)
    m.online = _bool(obj.get("online"))
    last = obj.get("lastOnline", obj.get("lastSeen"))
    m.last_online = _int(last) or None
    return m


def _controller(obj: dict[str, Any]) -> Member:
    node = obj.get("address") or obj.get("id") or "?"
    m = Member(str(node), str(obj.get("nwid", "?")), "controller")
    return _from_settings(m, obj)


def members(values: list[Any]) -> tuple[list[Member], int]:
    """Members found in parsed JSON, and how many bare member ids were listed."""
    found: list[Member] = []
    ids = 0
    for obj in _walk(values):
        if _is_central(obj):
            found.append(_central(obj))
        elif _is_controller(obj):
            found.append(_controller(obj))
        elif _is_member_index(obj):
            ids += len(obj)
    return found, ids


# --- kind ---------------------------------------------------------------------


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if '"authorized"' not in text and not re.search(r'"[0-9a-f]{10}"\s*:\s*\d', text):
        return 0.0
    found, ids = members(json_values(text)[0])
    if found:
        return 0.95
    return 0.6 if ids else 0.0


def authorize_hint(node: str, nwid: str, source: str = "") -> str:
    """How to authorize a member, for Central, the controller, or (no source) both."""
    central = (
        f'POST {{"config":{{"authorized":true}}}} to '
        f"/api/v1/network/{nwid}/member/{node} (ZeroTier Central)"
    )
    controller = (
        f'POST {{"authorized":true}} to '
        f"/controller/network/{nwid}/member/{node} (self-hosted controller)"
    )
    how = {"central": central, "controller": controller}.get(
        source, f"{central}, or {controller}"
    )
    return f"authorize member {node} on {nwid}: {how}"


def _judge_authorization(m: Member, f: Finding) -> bool:
    """Record authorization problems; True when the member counts as authorized."""
    if m.last_deauthorized > m.last_authorized:
        f.add(
            "member_deauthorized",
            f"member {m.node} was deauthorized after its last authorization "
            f"(lastDeauthorizedTime {m.last_deauthorized} > lastAuthorizedTime "
            f"{m.last_authorized}); find out who or what did it, then "
            + authorize_hint(m.node, m.network, m.source),
        )
        _note(f, "deauthorized", m.node)
        return False
    if m.authorized is False:
        f.add("member_not_authorized", authorize_hint(m.node, m.network, m.source))
        _note(f, "not_authorized", m.node)
        return False
    return m.authorized is True


def _note(f: Finding, key: str, node: str) -> None:
    bucket = f.details.setdefault(key, [])
    if node not in bucket:
        bucket.append(node)


def _judge_addresses(m: Member, ctx: Context, f: Finding) -> None:
    if m.ips is None:
        return
    if not m.ips:
        _judge_no_address(m, f)
        return
    network = overlay_range(ctx, f)
    if network is None:
        return
    inside = [ip for ip in m.ips if in_range(ip, network)]
    if not inside:
        # TODO: a dedicated overlay code ("member addressed outside the overlay
        # range") would name this exactly; until the vocabulary has one, the
        # address k3s is to use as --node-ip lying outside the range is
        # node_ip_not_on_overlay, reported on the overlay layer.
        f.add(
            "node_ip_not_on_overlay",
            f"member {m.node} has {', '.join(m.ips)}, none inside the overlay range "
            f"{network}: fix the network's IP assignment pools in ZeroTier Central "
            "(or --overlay-cidr, if that is what is wrong)",
        )
        f.details.setdefault("outside_overlay", {})[m.node] = list(m.ips)


def _judge_no_address(m: Member, f: Finding) -> None:
    if not m.no_auto_assign:
        f.add(
            "no_ip_assigned",
            f"member {m.node} has no overlay address yet: check the network's IP "
            "assignment pools and that they have room",
        )
        _note(f, "no_ip", m.node)
        return
    # no_ip_assigned is defined for auto-assign on, where an address is still to
    # come. With it off, which address the member should hold is the operator's
    # choice, not in this JSON: nothing can be claimed about its address.
    f.add(
        "context_missing",
        f"member {m.node} has no address and auto-assign is off (noAutoAssignIps): "
        "none will come by itself. Assign one (ipAssignments in the member's "
        "config) or turn auto-assign on, then capture the member again",
    )
    _note(f, "no_ip_manual", m.node)


def overlay_range(
    ctx: Context, f: Finding
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """``Context.overlay_cidr`` as a network, or None with a hint saying why not."""
    if not ctx.overlay_cidr:
        f.hint(
            "addresses were not checked against the overlay range: "
            "pass --overlay-cidr to judge them"
        )
        return None
    try:
        return ipaddress.ip_network(ctx.overlay_cidr, strict=False)
    except (ValueError, RecursionError):
        f.hint(
            f"overlay range {ctx.overlay_cidr!r} is not a network (expected a CIDR "
            "such as 198.51.100.0/24); addresses were not judged"
        )
        return None


def in_range(ip: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        addr = ipaddress.ip_interface(ip).ip
    except (ValueError, RecursionError):
        return False
    return addr.version == network.version and addr in network


def _judge_online(m: Member, ctx: Context, f: Finding) -> None:
    if m.online is not False:
        return
    age = ""
    if ctx.now is not None and m.last_online:
        minutes = (ctx.now.timestamp() * 1000 - m.last_online) / 60000
        age = f", last seen {minutes:.0f} min before the judging time"
    f.add(
        "context_missing",
        f"ZeroTier Central reports member {m.node} offline{age}: this JSON cannot "
        "show it on the overlay. Check the node (`zerotier-cli info`, `zerotier-cli "
        "listnetworks`) or run the overlay's ping check",
    )
    _note(f, "offline", m.node)


def _judge_member(m: Member, ctx: Context, f: Finding) -> None:
    f.details.setdefault("members", {})[m.node] = {
        "network": m.network,
        "authorized": m.authorized,
        "ip_assignments": m.ips,
        "online": m.online,
    }
    f.evidence.append(
        f"{m.node} on {m.network}: authorized={m.authorized} "
        f"ipAssignments={m.ips} online={m.online}"
    )
    authorized = _judge_authorization(m, f)
    if m.authorized is None or (authorized and m.ips is None):
        f.add(
            "context_missing",
            f"member {m.node}: its authorization or addresses are missing from the "
            "capture (cut off?); capture the member JSON whole",
        )
        _note(f, "incomplete", m.node)
    elif authorized:
        _judge_addresses(m, ctx, f)
    _judge_online(m, ctx, f)


def judge(evidence: Evidence, ctx: Context) -> Finding:
    values, truncated = json_values(evidence.text)
    found, ids = members(values)
    if not found and not ids:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="overlay", kind=NAME)
    for m in found:
        _judge_member(m, ctx, f)
    if truncated:
        f.hint(f"{evidence.name}: the JSON is cut off; judged the members it holds")
        f.details["truncated"] = True
    if ids and not found:
        f.add(
            "context_missing",
            f"{evidence.name}: a list of {ids} member ids without their settings; "
            "fetch /controller/network/<nwid>/member/<node> for each",
        )
    log.debug("[%s] judged %d members: %s", evidence.name, len(found), f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="overlay",
        summary="ZeroTier Central or controller member JSON: authorized, addressed",
        detect=detect,
        judge=judge,
    )
)
