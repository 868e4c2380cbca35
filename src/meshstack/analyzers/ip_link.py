"""Interface MTUs and path-MTU probes on an overlay node (kind ``ip-link``).

What it reads, in any mix: ``ip link`` / ``ip addr`` (also ``-o`` and ``-j``),
``ifconfig`` (net-tools 2 and BSD ``name: flags=... mtu N``, the older ``Link
encap ... MTU:N``), flannel's ``/run/flannel/subnet.env`` (``FLANNEL_MTU=``) and
``ping`` runs (iputils ``N(M) bytes of data``, busybox/BSD ``N data bytes``) with
their replies, errors and statistics.

How a ZeroTier path is sized. ZeroTier wraps each Ethernet frame in a 28-byte
packet header plus the FRAME verb's 8-byte network id and 2-byte ethertype (38
bytes, ZeroTierOne ``node/Packet.hpp``) and sends it in UDP datagrams of at most
1432 bytes of payload (``ZT_DEFAULT_PHYSMTU``), splitting larger frames. Over an
IPv4 underlay of MTU U the largest inner IP packet that crosses unsplit and
unfragmented is ``min(U - 28, 1432) - 38``; a ping payload is 28 bytes less. On
case C17's 1448-byte VPS link that gives 1382, i.e. ``ping -s 1354`` passes and
1355 does not, as reported. ZeroTier splits larger frames itself, which works
while a 1432-byte datagram fits the underlay (U >= 1460); below that, datagrams
are IP-fragmented and vanish wherever fragments are dropped. The underlay is the
smallest MTU among the capture's up, physical-looking interfaces.

What it judges (layer ``overlay``):

- ``pmtu_blackhole``: ping runs to one target where a size below the ZeroTier
  interface's MTU minus 28 is lost silently (no reply and no "Frag needed" or
  "message too long") while smaller sizes pass. ``details.max_payload`` is the
  largest payload that passed, ``details.first_lost_payload`` the smallest lost.
  Sizes refused with an error are reported (``details.reported_mtu``), not a
  blackhole: the path says its MTU, so path-MTU discovery works.
- ``peer_unreachable``: every size lost, down to one ZeroTier must always carry
  (its minimum MTU is 1280, so any payload up to 1252).
- ``overlay_mtu_mismatch``: flannel's MTU (``flannel.1``, ``flannel-wg``,
  ``cni0`` or ``FLANNEL_MTU``) plus its encapsulation (VXLAN 50, WireGuard 80;
  ``cni0`` and ``FLANNEL_MTU`` assume k3s's default VXLAN) exceeds the path MTU
  measured by ping, else the ZeroTier interface's MTU, else (no ZeroTier
  interface) the underlay's.
- Interface MTUs alone never prove a blackhole: with an underlay under 1460 and a
  ZeroTier MTU above the unfragmented size, the verdict is INCONCLUSIVE
  ``context_missing`` with ``details.predicted_max_payload`` and a hint to measure
  with ``ping -M do -s``. So is a capture with nothing to size the ZeroTier
  interface against (no underlay, flannel or ping), or with no ZeroTier interface.
- ARP probes (case C12) are noted, not judged: they belong to the lb check.

The reading is in :mod:`meshstack.analyzers._ip_link_read`; this module sizes the
path, detects the kind and judges what was read.
"""

from __future__ import annotations

import logging
import re

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._ip_link_read import (
    FLANNEL_ENV,
    IFCONFIG,
    IFCONFIG_OLD,
    IP_LINK,
    PING,
    Capture,
    Probe,
    parse,
)

# Link is not used here; it stays importable from this module, where it was defined.
from meshstack.analyzers._ip_link_read import Link as Link
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "ip-link"

# Names of interfaces that are not an underlay: software, container and overlay ones.
_VIRTUAL = re.compile(
    r"^(lo|zt|flannel|cni|veth|docker|br-|virbr|cali|tunl|vxlan|kube|wg|tailscale"
    r"|tun|tap|lxc|lxd|cilium|gen|nodelocaldns|dummy|feth|utun)"
)
# TODO: frames sent as EXT_FRAME (bridged members, or with a membership
# certificate attached) carry 51 bytes of header, not 38: such a path is 13 bytes
# smaller than predicted here. A predicted size is only ever INCONCLUSIVE, so the
# cost is a hint that is slightly optimistic.
ZT_HEADER = 38  # ZeroTier packet header (28) + FRAME network id (8) + ethertype (2)
# TODO: a node whose local.conf sets another physical MTU, or that reaches its
# peers over IPv6 (48 bytes of IP and UDP, not 28), sizes its path differently;
# neither is visible in an interface listing, so both are assumed away.
ZT_PHYS_PAYLOAD = 1432  # ZT_DEFAULT_PHYSMTU: largest UDP payload ZeroTier sends
IPV4_UDP = 28
ICMP_IPV4 = 28  # what a ping payload adds to make an IPv4 packet
ZT_MIN_MTU = 1280
_ZT_NAME = re.compile(r"^(zt|feth\d+$)")
ENCAP = {"flannel.1": 50, "flannel-wg": 80, "cni0": 50, "FLANNEL_MTU": 50}


# --- judging ------------------------------------------------------------------


def _zerotier(cap: Capture) -> dict[str, int]:
    """ZeroTier's interfaces: zt* on Linux and Windows, feth<N> on macOS."""
    return {n: lk.mtu for n, lk in cap.links.items() if _ZT_NAME.match(n) and lk.mtu}


def _underlay(cap: Capture) -> dict[str, int]:
    return {
        n: lk.mtu
        for n, lk in cap.links.items()
        if not _VIRTUAL.match(n)
        and lk.up
        and lk.mtu
        and (lk.addresses or not cap.addresses_shown)
    }


def unsplit_packet(underlay_mtu: int) -> int:
    """Largest inner IP packet ZeroTier carries in one unfragmented datagram."""
    return min(underlay_mtu - IPV4_UDP, ZT_PHYS_PAYLOAD) - ZT_HEADER


def _flannel(cap: Capture) -> dict[str, int]:
    found = {n: cap.links[n].mtu for n in ENCAP if n in cap.links and cap.links[n].mtu}
    if cap.flannel_env:
        found["FLANNEL_MTU"] = cap.flannel_env
    return found


def _judge_pings(cap: Capture, zt_mtu: int | None, f: Finding) -> int | None:
    """Judge the ping runs; return the measured path MTU where a blackhole shows."""
    measured = None
    for target in dict.fromkeys(p.target for p in cap.probes):
        runs = sorted(
            (p for p in cap.probes if p.target == target), key=lambda p: p.size
        )
        f.details.setdefault("pings", {})[target] = {p.size: _outcome(p) for p in runs}
        cut = [str(p.size) for p in runs if _outcome(p) == "cut off"]
        if cut:
            f.hint(
                f"the ping to {target} at {', '.join(cut)} bytes was cut off before "
                "its statistics: not judged; capture the run whole"
            )
        measured = _judge_target(target, runs, zt_mtu, f) or measured
    return measured


def _outcome(p: Probe) -> str:
    if p.passed:
        return "passed"
    if p.error:
        return p.error
    return "lost" if p.lost_silently else "cut off"


def _judge_target(
    target: str, runs: list[Probe], zt_mtu: int | None, f: Finding
) -> int | None:
    passed = [p for p in runs if p.passed]
    lost = [p for p in runs if p.lost_silently]
    said = [p.error for p in runs if p.error.startswith("path mtu=")]
    if said:
        f.details["reported_mtu"] = int(said[0].split("=")[1])
        f.hint(f"the path to {target} reports its MTU ({said[0]}): not a blackhole")
    if not lost:
        return None
    first = lost[0]
    if not passed:
        if first.size <= ZT_MIN_MTU - ICMP_IPV4:
            f.evidence.extend(line for p in lost for line in p.lines)
            f.add(
                "peer_unreachable",
                f"no ping to {target} came back, down to {first.size} bytes: the "
                "members do not reach each other over the overlay",
                target=target,
            )
        return None
    if any(p.size > first.size for p in passed):
        f.hint(f"pings to {target} were lost at random sizes: a lossy path")
        return None
    if zt_mtu is not None and first.size + ICMP_IPV4 > zt_mtu:
        return None
    best = max(p.size for p in passed)
    f.evidence.extend([*max(passed, key=lambda p: p.size).lines, *first.lines])
    f.add(
        "pmtu_blackhole",
        f"pings to {target} above {best} bytes vanish without an error while the "
        f"interface allows {zt_mtu or 'more'}: lower the network's MTU in ZeroTier "
        f"Central to at most {best + ICMP_IPV4} (the client-side `zerotier-cli set "
        "<nwid> mtu=` may be overridden), then restart k3s so flannel re-derives it",
        max_payload=best,
        first_lost_payload=first.size,
        target=target,
    )
    return best + ICMP_IPV4


def _judge_flannel(
    cap: Capture,
    zt: dict[str, int],
    underlay: dict[str, int],
    measured: int | None,
    f: Finding,
) -> bool:
    """Compare flannel's MTU plus encapsulation with the path; True if judged."""
    flannel = _flannel(cap)
    if not flannel:
        return False
    f.details["flannel"] = flannel
    if measured:
        limit, what = measured, "the path MTU that ping measured"
    elif zt:
        limit, what = min(zt.values()), "the ZeroTier interface's MTU"
    elif underlay:
        limit, what = min(underlay.values()), "the underlay's MTU"
    else:
        f.hint("flannel's MTU is shown but no interface or ping to size it against")
        return False
    over = [f"{n} {m}+{ENCAP[n]}" for n, m in flannel.items() if m + ENCAP[n] > limit]
    if over:
        f.evidence.extend(_flannel_lines(cap, flannel))
        f.add(
            "overlay_mtu_mismatch",
            f"{', '.join(over)} bytes of encapsulation exceed {what} ({limit}): "
            "lower the ZeroTier network's MTU in Central, then restart k3s so "
            "flannel derives its MTU from it",
            path_mtu=limit,
        )
    return True


def _flannel_lines(cap: Capture, flannel: dict[str, int]) -> list[str]:
    lines = [cap.links[n].line for n in flannel if n in cap.links]
    return [*lines, cap.flannel_line] if "FLANNEL_MTU" in flannel else lines


def _predict(
    cap: Capture, zt: dict[str, int], underlay: dict[str, int], f: Finding
) -> bool:
    """Size the path from interface MTUs alone; True if that decides anything."""
    if not zt or not underlay:
        return False
    under, zt_mtu = min(underlay.values()), min(zt.values())
    f.evidence.append(cap.links[min(underlay, key=lambda n: underlay[n])].line or "")
    packet = unsplit_packet(under)
    f.details["predicted_max_payload"] = packet - ICMP_IPV4
    if zt_mtu <= packet or under >= ZT_PHYS_PAYLOAD + IPV4_UDP:
        if zt_mtu > packet:
            f.hint(
                f"ZeroTier splits frames above {packet} bytes into two datagrams "
                f"(underlay {under}): it works, at some cost in throughput"
            )
        return True
    if any(p.passed and p.size > packet - ICMP_IPV4 for p in cap.probes):
        return True  # measured beyond the prediction: the path carries more
    f.add(
        "context_missing",
        f"ZeroTier MTU {zt_mtu} over an underlay of {under}: ZeroTier's "
        f"{ZT_PHYS_PAYLOAD + IPV4_UDP}-byte datagrams do not fit, so ping payloads "
        f"above {packet - ICMP_IPV4} are expected to vanish. Measure it (`ping -M "
        "do -s <size> <peer>`, binary search) to judge; the fix is a network MTU "
        f"of at most {packet} set in ZeroTier Central",
    )
    return True


def _notes(cap: Capture, zt: dict[str, int], f: Finding) -> None:
    for name in zt:
        link = cap.links[name]
        f.evidence.insert(0, link.line or f"{name} mtu {link.mtu}")
        if not link.up:
            f.hint(f"ZeroTier interface {name} is down")
    if cap.arp:
        f.hint(
            "ARP probes in this capture are judged by the lb check "
            "(l2_arp_unreliable_on_overlay), not here"
        )


def _nothing_judged(cap: Capture, zt: dict[str, int], f: Finding) -> None:
    if not zt:
        what = "no ZeroTier interface (zt*) in the capture: is this an overlay node?"
    else:
        what = "no underlay interface, flannel MTU or ping result to size it against"
    f.add(
        "context_missing",
        f"{what}; capture the host's whole `ip link`, or `ping -M do -s <size>` "
        "runs across the overlay",
    )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    cap = parse(evidence.text)
    if not (cap.links or cap.probes or cap.flannel_env):
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="overlay", kind=NAME)
    zt, underlay = _zerotier(cap), _underlay(cap)
    f.details.update(zerotier=zt, underlay=underlay)
    measured = _judge_pings(cap, min(zt.values()) if zt else None, f)
    judged = any(p.passed for p in cap.probes) or bool(f.reasons)
    judged = _judge_flannel(cap, zt, underlay, measured, f) or judged
    if measured is None:
        judged = _predict(cap, zt, underlay, f) or judged
    _notes(cap, zt, f)
    if not judged:
        _nothing_judged(cap, zt, f)
    log.debug("[%s] %s", evidence.name, f.summary())
    return f


def detect(evidence: Evidence) -> float:
    text = evidence.text
    for line in text.splitlines():
        if IP_LINK.match(line) or IFCONFIG.match(line) or IFCONFIG_OLD.match(line):
            return 0.9
    if '"ifname"' in text and parse(text).links:
        return 0.85
    if FLANNEL_ENV.search(text):
        return 0.7
    return 0.6 if any(PING.match(line) for line in text.splitlines()) else 0.0


register(
    Kind(
        name=NAME,
        layer="overlay",
        summary="ip link/ifconfig MTUs, flannel's MTU and ping -M do path probes",
        detect=detect,
        judge=judge,
    )
)
