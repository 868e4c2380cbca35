"""k3s's command line, parsed as k3s parses it (the flags the stack uses).

``--disable servicelb``, ``--disable=servicelb,traefik`` and the older
``--no-deploy servicelb`` all add to one set; repeated list flags accumulate.
Flags k3s has but the twin has no use for are accepted and ignored (listed in
``IGNORED``); anything else is refused with k3s's "flag provided but not
defined" wording, as a typo would be on a real node.

Twin-only settings (heartbeat and resync intervals, the kubelet port, where
Prometheus targets go) come from ``MESHSTACK_TWIN_*`` environment variables,
never from flags, so a real k3s command line works unchanged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

IGNORED_VALUED = (
    "--flannel-backend",
    "--kube-proxy-arg",
    "--kubelet-arg",
    "--kube-apiserver-arg",
    "--kube-controller-manager-arg",
    "--node-taint",
    "--cluster-dns",
    "--default-local-storage-path",
    "--container-runtime-endpoint",
    "--resolv-conf",
)
IGNORED_SWITCHES = (
    "--secrets-encryption",
    "--cluster-init",
    "--docker",
    "--selinux",
    "--prefer-bundled-bin",
)


class UsageError(Exception):
    """The command line is not one k3s would accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"Incorrect Usage: {message}")


def _list(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@dataclass
class Settings:
    role: str
    argv: list[str]
    node_dir: Path
    node_name: str = ""
    node_ip: str = ""
    flannel_iface: str = ""
    node_labels: dict[str, str] = field(default_factory=dict)
    with_node_id: bool = False
    token: str = ""
    server_url: str = ""
    disabled: set[str] = field(default_factory=set)
    advertise_address: str = ""
    bind_address: str = "0.0.0.0"
    https_port: int = 6443
    service_cidr: str = "10.43.0.0/16"
    cluster_cidr: str = "10.42.0.0/16"
    tls_sans: list[str] = field(default_factory=list)
    kubeconfig_mode: int = 0o600
    kubeconfig_path: Path | None = None
    daemon: bool = False

    @property
    def data_dir(self) -> Path:
        return self.node_dir / "var/lib/rancher/k3s"


def _parser(role: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"k3s {role}", add_help=False, allow_abbrev=False)
    for flag in (
        "--node-ip",
        "-i",
        "--flannel-iface",
        "--node-name",
        "--token",
        "-t",
        "--token-file",
        "--data-dir",
        "-d",
        "--node-external-ip",
    ):
        p.add_argument(
            flag,
            dest=flag.lstrip("-").replace("-", "_") if flag.startswith("--") else None,
        )
    p.add_argument("--node-label", action="append")
    p.add_argument("--with-node-id", action="store_true")
    p.add_argument(
        "--daemon", action="store_true", help="(twin) detach, return once running"
    )
    for flag in IGNORED_VALUED:
        p.add_argument(flag, action="append")
    for flag in IGNORED_SWITCHES:
        p.add_argument(flag, action="store_true")
    if role == "server":
        p.add_argument("--disable", action="append")
        p.add_argument("--no-deploy", action="append")
        for flag in (
            "--advertise-address",
            "--bind-address",
            "--https-listen-port",
            "--service-cidr",
            "--cluster-cidr",
            "--write-kubeconfig-mode",
            "--write-kubeconfig",
            "-o",
        ):
            p.add_argument(flag)
        p.add_argument("--tls-san", action="append")
    else:
        p.add_argument("--server", "-s")
    return p


def parse(role: str, argv: list[str], env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    args, extra = _parser(role).parse_known_args(argv)
    if extra:
        raise UsageError(f"Incorrect Usage: flag provided but not defined: {extra[0]}")
    ns = vars(args)
    node_dir = Path(
        env.get("MESHSTACK_NODE_DIR") or ns.get("data_dir") or ns.get("d") or "k3s-node"
    ).resolve()
    s = Settings(role=role, argv=[role, *argv], node_dir=node_dir, daemon=args.daemon)
    s.node_name = args.node_name or env.get("K3S_NODE_NAME", "")
    s.node_ip = args.node_ip or ns.get("i") or ""
    s.flannel_iface = args.flannel_iface or ""
    s.node_labels = dict(lbl.partition("=")[::2] for lbl in args.node_label or [])
    s.with_node_id = args.with_node_id
    s.token = _token(
        args.token or ns.get("t") or env.get("K3S_TOKEN", ""),
        args.token_file or env.get("K3S_TOKEN_FILE", ""),
    )
    if role == "server":
        _server(s, args)
    else:
        s.server_url = args.server or env.get("K3S_URL", "")
        if not s.server_url:
            raise UsageError(
                "Incorrect Usage: --server is required for an agent (or K3S_URL)"
            )
        if not s.token:
            raise UsageError(
                "Incorrect Usage: --token is required for an agent (or K3S_TOKEN)"
            )
    return s


def _server(s: Settings, args: argparse.Namespace) -> None:
    s.disabled = set(_list(args.disable)) | set(_list(args.no_deploy))
    s.advertise_address = args.advertise_address or ""
    s.bind_address = args.bind_address or "0.0.0.0"
    s.https_port = int(args.https_listen_port or 6443)
    s.service_cidr = args.service_cidr or s.service_cidr
    s.cluster_cidr = args.cluster_cidr or s.cluster_cidr
    s.tls_sans = _list(args.tls_san)
    if args.write_kubeconfig_mode:
        s.kubeconfig_mode = int(args.write_kubeconfig_mode, 8)
    out = args.write_kubeconfig or args.o
    s.kubeconfig_path = Path(out) if out else None


def _token(value: str, file: str) -> str:
    if value:
        return value.strip()
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {file}: {exc}") from None
    return ""


def iface_address(iface: str) -> str:
    """The first IPv4 address of an interface, as k3s takes it for --flannel-iface."""
    cmd = ["ip", "-4", "-o", "addr", "show", "dev", iface]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)
    if done.returncode != 0:
        raise UsageError(
            f"unable to find interface {iface}: {' '.join(cmd)} "
            f"exited {done.returncode}: {done.stderr.strip()}"
        )
    for line in done.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    raise UsageError(
        f"interface {iface} has no IPv4 address "
        f"(ip -4 addr show dev {iface} printed nothing)"
    )


def default_address() -> str:
    """The first global IPv4 address, where k3s would take the default route's."""
    done = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    for line in done.stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return "127.0.0.1"


def redacted_args(argv: list[str]) -> list[str]:
    """The k3s.io/node-args annotation's command line, tokens hidden as k3s does."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("********")
            hide = False
            continue
        name, eq, _ = arg.partition("=")
        if name in ("--token", "-t", "--agent-token"):
            if eq:
                out.append(f"{name}=********")
            else:
                out.append(arg)
                hide = True
            continue
        out.append(arg)
    return out
