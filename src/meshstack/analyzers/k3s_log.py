"""k3s server and agent journals, command lines and config files (kind ``k3s-log``).

What it reads: ``journalctl -u k3s`` / ``-u k3s-agent`` lines (logrus
``time=... level=... msg=...`` or the older ``INFO[...]`` style), the command that
started k3s (``k3s server ...``, a systemd unit's ``ExecStart=`` with continuation
lines, ``INSTALL_K3S_EXEC="..."``, a bare line of ``--flag`` arguments) and
``/etc/rancher/k3s/config.yaml``.

What it judges (layer ``cluster``):

- ``node_password_rejected``: the agent's "Node password rejected" (both the
  ``/etc/rancher/node/password`` wording and the older ``node-password.txt`` one),
  the server's "Node password validation failed for 'name'", and the oldest
  releases' ``/v1-k3s/node.crt: 403 Forbidden``.
- ``token_rejected``: "token is not valid ... 401", "failed to get CA certs ...
  401 Unauthorized", "token CA hash does not match", "invalid username/password".
- ``api_unreachable``: the agent cannot dial the server's supervisor/API port
  (refused, no route, timeout, reset) while fetching CA certs or connecting its
  tunnel. Local socket errors (containerd) are not this.
- A join error that is followed by a line saying the node came up ("k3s is up and
  running", "Running kubelet") is treated as recovered: a hint, not a failure.
  Server-side rejections of *another* node always count.
- ``overlay_flags_incomplete`` (WARN): ``--node-ip`` without ``--flannel-iface`` or
  the reverse; also a server told to advertise or bind an address on the overlay
  (``--advertise-address``/``--bind-address`` inside ``Context.overlay_cidr``) with
  neither flag, since its InternalIP and flannel then follow the default route.
- ``node_ip_not_on_overlay``: a ``--node-ip`` outside ``Context.overlay_cidr``.
- ``k3s_servicelb_active_with_metallb`` (layer ``lb``): a server command without
  ``--disable servicelb`` (servicelb is on by default, so a bare ``k3s server`` or
  the stock unit's flagless ``ExecStart`` counts) is judged only when MetalLB is
  known to be installed (``Context.metallb_version`` or
  ``Context.extra["metallb_installed"]``): k3s alone is entitled to run its own
  load balancer. A config.yaml in the same capture that disables servicelb
  covers the servers beside it.

Nothing judgeable (no error, no command, no line saying the node came up) is
INCONCLUSIVE ``context_missing``: an empty journal is not a healthy node.

The argument helpers (:func:`invocations`, :func:`servicelb_disabled`) are shared
with the MetalLB configuration analyzer.
"""

from __future__ import annotations

import ipaddress
import logging
import re

import yaml

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._k3s_args import (
    config_args,
    flag_values,
    invocations,
    metallb_known,
    redact,
    servicelb_disabled,
)
from meshstack.verdicts import Finding

# Read by the MetalLB and kubectl-output analyzers and the providers through here.
__all__ = [
    "config_args",
    "detect",
    "flag_values",
    "invocations",
    "judge",
    "metallb_known",
    "redact",
    "servicelb_disabled",
]

log = logging.getLogger(__name__)

NAME = "k3s-log"

_PASSWORD = re.compile(
    r"Node password rejected|Node password validation failed"
    r"|/v1-k3s/node\.crt:\s*403 Forbidden",
    re.I,
)
_PASSWORD_NODE = re.compile(r"Node password validation failed for \[?'?([\w.-]+)")
_TOKEN = re.compile(
    r"token is not valid|token CA hash does not match|invalid username/password"
    r"|failed to validate token|(cacerts|/apis|/v1-k3s/[\w.-]+)\S*:?\s*401 Unauthorized"
    r"|failed to retrieve configuration from server: not authorized",
    re.I,
)
_DIAL_FAIL = (
    r"connection refused|no route to host|i/o timeout|connection reset by peer"
    r"|connection timed out|context deadline exceeded|\bEOF\b"
)
_API = re.compile(
    r"(failed to get CA certs|Failed to connect to proxy|Remotedialer proxy error"
    # a bounded gap: an unbounded one rescans the rest of a long line from every
    # mention of the port, quadratic in the line's length
    r"|Unable to connect to the server|:6443|:6444).{0,300}?(" + _DIAL_FAIL + ")",
    re.I,
)
_LOCAL_SOCKET = re.compile(r"unix\s*/|\.sock\b")
# Lines k3s prints once the node has joined and its kubelet runs.
_HEALTHY = re.compile(r"k3s (agent )?is up and running|Running kubelet", re.I)
_K3S_LINE = re.compile(
    r"\bk3s(-agent)?\[\d+\]|Starting k3s|k3s-agent-load-balancer|/var/lib/rancher"
    r"|/etc/rancher|v1-k3s|\bk3s (server|agent)\b|INSTALL_K3S_EXEC|get\.k3s\.io"
    r"|K3S_(URL|TOKEN)",
    re.I,
)
# --- detection -----------------------------------------------------------------------


def _config_doc(text: str) -> list[str] | None:
    if not re.search(r"^[\w-]+[ \t]*:", text, re.M):
        return None
    try:
        return config_args(yaml.safe_load(text))
    except (yaml.YAMLError, RecursionError):
        return None


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if not text.strip():
        return 0.0
    sample = text[:200_000]
    hits = len(_K3S_LINE.findall(sample))
    if _PASSWORD.search(sample) or re.search(r"token CA hash does not match", sample):
        return 0.95
    if hits >= 2 or (hits and (_API.search(sample) or _TOKEN.search(sample))):
        return 0.9
    if hits == 1:
        return 0.7
    if invocations(sample) or _config_doc(sample):
        return 0.6
    return 0.0


# --- judging -------------------------------------------------------------------------


def _classify(line: str) -> str | None:
    if _PASSWORD.search(line):
        return "node_password_rejected"
    if _TOKEN.search(line):
        return "token_rejected"
    if _API.search(line) and not _LOCAL_SOCKET.search(line):
        return "api_unreachable"
    return None


_HINTS = {
    "node_password_rejected": (
        "the server holds another password for this node name: delete the node's "
        "entry (k3s >= 1.20: `kubectl -n kube-system delete secret "
        "<node>.node-password.k3s`; older: its line in server/cred/node-passwd), or "
        "give each node a unique name (--with-node-id)"
    ),
    "token_rejected": (
        "the join token is refused: use the full K10... token from the server's "
        "/var/lib/rancher/k3s/server/node-token on the agent (K3S_TOKEN / --token)"
    ),
    "api_unreachable": (
        "the agent cannot reach the server on :6443: check the server is running, "
        "that K3S_URL names its overlay address, and that the overlay and firewall "
        "carry TCP 6443 between the nodes"
    ),
}


def _judge_lines(lines: list[str], f: Finding) -> int:
    """Record join errors; return how many lines showed the node coming up."""
    last_healthy = max(
        (i for i, ln in enumerate(lines) if _HEALTHY.search(ln)), default=-1
    )
    healthy = sum(1 for ln in lines if _HEALTHY.search(ln))
    recovered: set[str] = set()
    for i, line in enumerate(lines):
        code = _classify(line)
        if code is None:
            continue
        other_node = _PASSWORD_NODE.search(line)
        if i < last_healthy and not other_node:
            recovered.add(code)
            continue
        f.add(code, _HINTS[code])
        f.evidence.append(line.strip()[:400])
        if other_node:
            f.details.setdefault("nodes", [])
            if other_node.group(1) not in f.details["nodes"]:
                f.details["nodes"].append(other_node.group(1))
    for code in sorted(recovered - set(f.reasons)):
        f.hint(f"{code} earlier in the log, but the node came up afterwards")
    return healthy


def _overlay(ctx: Context) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not ctx.overlay_cidr:
        return None
    try:
        return ipaddress.ip_network(ctx.overlay_cidr, strict=False)
    except (ValueError, RecursionError):
        return None


def _on(net: object, value: str) -> bool | None:
    try:
        return ipaddress.ip_address(value.strip()) in net  # type: ignore[operator]
    except (ValueError, RecursionError):
        return None


def _judge_flags(args: list[str], ctx: Context, f: Finding) -> bool:
    """Judge the overlay flags; True if there were flags to judge."""
    node_ip = [v for v in flag_values(args, "node-ip") if v]
    iface = [v for v in flag_values(args, "flannel-iface") if v]
    where = redact(args)
    if bool(node_ip) != bool(iface):
        have, lack = (
            ("--node-ip", "--flannel-iface")
            if node_ip
            else (
                "--flannel-iface",
                "--node-ip",
            )
        )
        f.add(
            "overlay_flags_incomplete",
            f"k3s is given {have} but not {lack}: pin node-ip, node-external-ip and "
            "flannel-iface to the overlay on every node",
        )
        f.evidence.append(where)
    net = _overlay(ctx)
    _judge_advertised(args, node_ip, iface, net, f)
    if net is None:
        return bool(node_ip or iface)
    off = [v for v in node_ip if _on(net, v) is False]
    if off:
        f.add(
            "node_ip_not_on_overlay",
            f"--node-ip {', '.join(off)} lies outside the overlay {net}",
            node_ips_off_overlay=off,
        )
    return bool(node_ip or iface)


def _judge_advertised(
    args: list[str], node_ip: list[str], iface: list[str], net: object, f: Finding
) -> None:
    bound = flag_values(args, "advertise-address") + flag_values(args, "bind-address")
    if not bound or node_ip or iface:
        return
    if net is None:
        f.hint(
            f"the server advertises/binds {bound[0]} but sets neither --node-ip nor "
            "--flannel-iface; give --overlay-cidr to judge whether that is the overlay"
        )
        return
    if any(_on(net, b) for b in bound):
        f.add(
            "overlay_flags_incomplete",
            f"the server advertises {bound[0]} on the overlay but its InternalIP and "
            "flannel follow the default route: add --node-ip and --flannel-iface",
        )
        f.evidence.append(redact(args))


def _judge_servicelb(cmds: list[list[str]], ctx: Context, f: Finding) -> bool:
    """Judge servicelb on the servers; True if a server's servicelb was judged."""
    servers = [c for c in cmds if c[0] == "server"]
    if not servers:
        return False
    # config.yaml (or a bare line of flags) applies to the server beside it.
    elsewhere = any(servicelb_disabled(c) for c in cmds if c[0] == "?")
    if not metallb_known(ctx):
        if not elsewhere and not any(servicelb_disabled(c) for c in servers):
            f.hint(
                "k3s servicelb is not disabled; that is only a fault beside MetalLB "
                "(give --metallb-version to judge it)"
            )
            return False
        return True
    for cmd in servers:
        if elsewhere or servicelb_disabled(cmd):
            continue
        f.add(
            "k3s_servicelb_active_with_metallb",
            "k3s runs its servicelb unless told not to: restart the k3s servers with "
            "--disable servicelb (or `disable: [servicelb]` in "
            "/etc/rancher/k3s/config.yaml; include that file in the capture if it "
            "already says so) and delete leftover svclb-* DaemonSets",
        )
        bare = "k3s server (no flags: servicelb is on by default)"
        f.evidence.append(redact(cmd) if len(cmd) > 1 else bare)
    return True


def _layer(f: Finding) -> str:
    lb_only = {"k3s_servicelb_active_with_metallb"}
    return "lb" if f.reasons and set(f.reasons) <= lb_only else "cluster"


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="cluster", kind=NAME)
    lines = evidence.text.splitlines()
    healthy = _judge_lines(lines, f)
    cmds = invocations(evidence.text)
    conf = _config_doc(evidence.text)
    if conf:
        cmds.append(conf)
    judged = [_judge_flags(cmd, ctx, f) for cmd in cmds]
    judged.append(_judge_servicelb(cmds, ctx, f))
    if not f.reasons and not healthy and not any(judged):
        # A command line whose flags say nothing judgeable (no overlay flags, and
        # servicelb with no MetalLB context) is not evidence of health.
        f.add(
            "context_missing",
            "the log shows neither a join error nor the node coming up: capture the "
            "unit's journal from its start (journalctl -u k3s-agent -b)"
            if not cmds
            else "nothing on this k3s command line could be judged: it sets no "
            "overlay flags, and servicelb is judged only with --metallb-version",
        )
    f.layer = _layer(f)
    f.details.setdefault("commands", len(cmds))
    log.debug("[%s] judged %s", evidence.name, f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="cluster",
        summary="k3s server/agent journal, command line or config.yaml",
        detect=detect,
        judge=judge,
    )
)
