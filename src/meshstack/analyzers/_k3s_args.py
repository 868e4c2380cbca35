"""k3s command lines and config files: found in any text, read as arguments.

A k3s invocation is read from a shell line, a systemd unit's ``ExecStart`` (with
its continuation lines), ``INSTALL_K3S_EXEC``, a process list or a bare line of
flags; a ``config.yaml`` becomes the same argument list. The k3s-log analyzer
judges them, and the MetalLB and kubectl-output analyzers and the cluster provider
read servicelb and overlay flags through the helpers here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from meshstack.analyzers import Context

# Keys of a k3s config.yaml (and flags) that mark it as k3s's.
_CONFIG_KEYS = frozenset(
    """
    node-ip flannel-iface flannel-backend disable no-deploy tls-san cluster-init
    advertise-address bind-address node-external-ip write-kubeconfig-mode token
    server node-name with-node-id
    """.split()
)
_SHORT = {"-i": "--node-ip"}


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
