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
import shlex
from collections.abc import Iterable

import yaml

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.verdicts import Finding

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
# Keys of a k3s config.yaml (and flags) that mark it as k3s's.
_CONFIG_KEYS = frozenset(
    """
    node-ip flannel-iface flannel-backend disable no-deploy tls-san cluster-init
    advertise-address bind-address node-external-ip write-kubeconfig-mode token
    server node-name with-node-id
    """.split()
)
_SHORT = {"-i": "--node-ip"}


# --- shared argument helpers -------------------------------------------------------


def _join_continuations(text: str) -> list[str]:
    return [line for line, _ in _joined(text)]


def _joined(text: str) -> list[tuple[str, bool]]:
    """Lines with ``\\`` continuations joined, and whether each was continued."""
    out: list[tuple[str, bool]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((buf + line, bool(buf)))
        buf = ""
    if buf:
        out.append((buf, True))
    return out


# shlex reads a character at a time in Python; past this length (no real command
# line is this long) a line is split on blanks, which is linear in C.
_SHLEX_MAX = 20_000


def _tokens(line: str) -> list[str]:
    if len(line) <= _SHLEX_MAX:
        try:
            return shlex.split(line, comments=False)
        except (ValueError, RecursionError):
            pass
    return line.replace('"', " ").replace("'", " ").split()


def _expand_exec(tokens: list[str]) -> list[str]:
    """Unfold INSTALL_K3S_EXEC="server --flag" and ExecStart=/path/k3s tokens."""
    out: list[str] = []
    for tok in tokens:
        name, sep, value = tok.partition("=")
        if sep and name.endswith("INSTALL_K3S_EXEC"):
            return ["k3s", *_tokens(value)]  # what follows is the installer's shell
        elif sep and name == "ExecStart":
            out.append(value)
        else:
            out.append(tok)
    return out


# Log lines that mention k3s and its arguments without being the command itself;
# the CGroup tree of `systemctl status` shows k3s's process title, which hides the
# arguments.
_NOT_A_COMMAND = re.compile(
    r"Running (kubelet|kube-|containerd|flannel)|Starting k3s|\blevel=\w+|^[A-Z]{4}\["
    r"|[└├]─"
)


def invocations(text: str) -> list[list[str]]:
    """Every k3s command line in the text, as its arguments after server/agent.

    The first element is ``server``, ``agent`` or ``?`` (a bare line of flags). A
    ``k3s server`` with no arguments is a command (the stock systemd unit's
    ``ExecStart=/usr/local/bin/k3s \\`` / ``server \\``, a typed ``k3s server``)
    unless it is a process listing: ``ps`` and ``pgrep -a`` print k3s's process
    title, which hides the arguments, after a PID column, and ``systemctl status``
    after a ``└─PID`` tree branch. Lines where k3s reports the arguments it gives
    to its embedded components (``Running kubelet --node-ip=...``) and other log
    lines are not commands.
    """
    found: list[list[str]] = []
    for line, continued in _joined(text):
        if "k3s" not in line.lower() and not line.lstrip().startswith("--"):
            continue  # cheap: most lines of a journal are not commands
        if _NOT_A_COMMAND.search(line):
            continue
        cmd = _command(_expand_exec(_tokens(line)), continued or "ExecStart=" in line)
        if cmd is not None:
            found.append(cmd)
    return found


def _command(toks: list[str], unit: bool) -> list[str] | None:
    for i, tok in enumerate(toks[:-1]):
        if tok.rsplit("/", 1)[-1] == "k3s" and toks[i + 1] in ("server", "agent"):
            args = _until_shell(toks[i + 2 : i + 2 + _MAX_ARGS])
            if args or unit or not any(t.isdigit() for t in toks[:i]):
                return [toks[i + 1], *args]
            return None  # "PID ... k3s server": a process title, arguments hidden
    if toks and toks[0].startswith("--") and _k3s_flags(toks[:_MAX_ARGS]):
        return ["?", *toks[:_MAX_ARGS]]
    return None


# More arguments than any k3s command line has; the rest of a longer line (a
# megabyte of repeated words) is not read, which keeps judging it linear and fast.
_MAX_ARGS = 1_000


def _until_shell(args: list[str]) -> list[str]:
    """The arguments up to a shell operator that ends the command."""
    for i, arg in enumerate(args):
        if arg in ("|", "||", "&&", ";", ">", ">>", "2>&1"):
            return args[:i]
    return args


def _k3s_flags(args: list[str]) -> bool:
    names = {a.split("=", 1)[0].lstrip("-") for a in args if a.startswith("--")}
    return bool(names & _CONFIG_KEYS)


def config_args(data: object) -> list[str] | None:
    """A k3s config.yaml mapping turned into the equivalent ``--flag value`` list."""
    if not isinstance(data, dict) or "apiVersion" in data or "kind" in data:
        return None
    keys = {str(k) for k in data}
    if not keys & _CONFIG_KEYS or not keys <= _CONFIG_KEYS | _OTHER_CONFIG_KEYS:
        return None
    args: list[str] = ["?"]
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and "," in v and key in ("disable", "no-deploy"):
                args += [f"--{key}", v]
            else:
                args += [f"--{key}", str(v).lower() if isinstance(v, bool) else str(v)]
    return args


# Other keys a k3s config.yaml may hold beside those.
_OTHER_CONFIG_KEYS = frozenset(
    """
    secrets-encryption kube-proxy-arg kubelet-arg kube-apiserver-arg node-label
    node-taint data-dir cluster-cidr service-cidr selinux protect-kernel-defaults
    disable-network-policy flannel-ipv6-masq etcd-expose-metrics datastore-endpoint
    agent-token cluster-dns docker prefer-bundled-bin system-default-registry
    """.split()
)


def flag_values(args: Iterable[str], name: str) -> list[str]:
    """Values of ``--name value`` / ``--name=value`` (and its short alias)."""
    seq = list(args)
    out: list[str] = []
    for i, arg in enumerate(seq):
        key, sep, value = arg.partition("=")
        key = _SHORT.get(key, key)
        if key != f"--{name}":
            continue
        if sep:
            out.append(value)
        elif i + 1 < len(seq) and not seq[i + 1].startswith("-"):
            out.append(seq[i + 1])
        else:
            out.append("")
    return out


_SECRET_FLAGS = {"--token", "-t", "--agent-token", "--datastore-endpoint"}


def redact(args: Iterable[str]) -> str:
    """The arguments as one line, with tokens and datastore credentials masked."""
    out: list[str] = []
    hide = False
    for arg in args:
        key, sep, _ = arg.partition("=")
        if hide:
            out.append("<redacted>")
        elif sep and (key in _SECRET_FLAGS or key.endswith("K3S_TOKEN")):
            out.append(f"{key}=<redacted>")
        else:
            out.append(arg)
        hide = not sep and arg in _SECRET_FLAGS
    return " ".join(out)[:300]


def servicelb_disabled(args: Iterable[str]) -> bool:
    """True if the k3s arguments turn off its own service load balancer."""
    seq = list(args)
    for flag in ("disable", "no-deploy"):
        for value in flag_values(seq, flag):
            if "servicelb" in {v.strip() for v in value.split(",")}:
                return True
    return any(a.split("=", 1)[0] == "--disable-servicelb" for a in seq)


def metallb_known(ctx: Context) -> bool:
    return bool(ctx.metallb_version) or bool(ctx.extra.get("metallb_installed"))


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
