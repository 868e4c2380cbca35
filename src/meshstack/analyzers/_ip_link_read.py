"""Reading interface listings and ping runs into one :class:`Capture`.

``ip link`` / ``ip addr`` (also ``-o`` and ``-j``), ``ifconfig`` (net-tools 2, BSD
and the older ``Link encap ... MTU:N`` form), flannel's ``FLANNEL_MTU=`` line and
``ping`` runs (iputils and busybox/BSD headers, replies, errors, statistics) are
read line by line: each interface with its MTU, state and addresses, each ping run
with its target, payload size and outcome. The ip-link analyzer
(:mod:`meshstack.analyzers.ip_link`) sizes the ZeroTier path and judges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meshstack.analyzers._json_in_text import json_values

IP_LINK = re.compile(r"^\s*\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>.*?\bmtu (\d+)")
IFCONFIG = re.compile(r"^([^\s:]+):\s+flags=\d+<([^>]*)>.*?\bmtu (\d+)")
IFCONFIG_OLD = re.compile(r"^(\S+)\s+Link encap:")
_OLD_FLAGS = re.compile(r"^\s+((?:[A-Z]+ )*[A-Z]+)\s+MTU:(\d+)")
_INET = re.compile(r"^\s+inet6? (?:addr:\s*)?([0-9a-fA-F.:]+)")
FLANNEL_ENV = re.compile(r"^[ \t]*FLANNEL_MTU=(\d+)", re.M)
PING = re.compile(
    r"^PING (\S+) \(([^)]*)\)(?: from \S+ \S+)?:? (\d+)(?:\(\d+\))? (?:data )?bytes"
)
_REPLY = re.compile(r"^\d+ bytes from ")
_SIGNALLED = re.compile(
    r"Frag needed|message too long|fragmentation needed|Packet too big", re.I
)
_MTU_SAID = re.compile(r"mtu\s*=\s*(\d+)", re.I)
_STATS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


@dataclass
class Link:
    name: str
    mtu: int
    up: bool
    addresses: list[str] = field(default_factory=list)
    line: str = ""  # the line that gave the MTU, for the finding's evidence


@dataclass
class Probe:
    """One ping run: its target, payload size, and what came back."""

    target: str
    size: int
    replies: int = 0
    received: int | None = None  # from the statistics line; None if cut off
    error: str = ""
    lines: list[str] = field(default_factory=list)  # header and outcome, as printed

    @property
    def passed(self) -> bool:
        return self.replies > 0 or bool(self.received)

    @property
    def lost_silently(self) -> bool:
        return self.received == 0 and self.replies == 0 and not self.error


@dataclass
class Capture:
    links: dict[str, Link] = field(default_factory=dict)
    addresses_shown: bool = False
    flannel_env: int | None = None
    flannel_line: str = ""
    probes: list[Probe] = field(default_factory=list)
    arp: bool = False


# --- reading ------------------------------------------------------------------


def _read_line(line: str, cap: Capture, current: Link | None) -> Link | None:
    """Read one line of interface output; return the interface now being read."""
    if m := IP_LINK.match(line) or IFCONFIG.match(line):
        link = Link(m.group(1), int(m.group(3)), "UP" in m.group(2).split(","))
        link.line = line.strip()
        cap.links[link.name] = link
        return link
    if m := IFCONFIG_OLD.match(line):
        link = Link(m.group(1), 0, False)
        cap.links[link.name] = link
        return link
    if current is None:
        return None
    if m := _OLD_FLAGS.match(line):
        current.up, current.mtu = "UP" in m.group(1).split(), int(m.group(2))
        current.line = line.strip()
    elif m := _INET.match(line):
        current.addresses.append(m.group(1))
        cap.addresses_shown = True
    elif line and not line[0].isspace():
        return None
    return current


def _read_ping(line: str, cap: Capture, probe: Probe | None) -> Probe | None:
    if m := PING.match(line):
        probe = Probe(target=m.group(2) or m.group(1), size=int(m.group(3)))
        probe.lines.append(line.strip())
        cap.probes.append(probe)
        return probe
    if probe is None:
        return None
    if _REPLY.match(line):
        probe.replies += 1
    elif _SIGNALLED.search(line):
        # "From <router> ... Frag needed (mtu = N)" comes from the path; "local
        # error: message too long" is this host refusing a size above its own MTU.
        said = _MTU_SAID.search(line) if line.startswith("From ") else None
        probe.error = f"path mtu={said.group(1)}" if said else "refused"
    elif m := _STATS.search(line):
        probe.received = int(m.group(2))
        probe.lines.append(line.strip())
        return None
    return probe


def _read_json(text: str, cap: Capture) -> None:
    for value in json_values(text)[0]:
        for obj in value if isinstance(value, list) else []:
            if isinstance(obj, dict) and "ifname" in obj and "mtu" in obj:
                up = "UP" in (obj.get("flags") or [])
                mtu = obj["mtu"] if isinstance(obj["mtu"], int) else 0
                link = Link(
                    str(obj["ifname"]), mtu, up, line=f"{obj['ifname']} mtu {mtu}"
                )
                for a in obj.get("addr_info") or []:
                    if isinstance(a, dict) and "local" in a:
                        link.addresses.append(str(a["local"]))
                        cap.addresses_shown = True
                cap.links[link.name] = link


def parse(text: str) -> Capture:
    cap = Capture()
    link: Link | None = None
    probe: Probe | None = None
    for line in text.splitlines():
        link = _read_line(line, cap, link)
        probe = _read_ping(line, cap, probe)
        cap.arp = cap.arp or line.startswith("ARPING ")
    if m := FLANNEL_ENV.search(text):
        cap.flannel_env, cap.flannel_line = int(m.group(1)), m.group(0).strip()
    if "ifname" in text:
        _read_json(text, cap)
    return cap
