"""MetalLB end to end on a k3s twin node in a network namespace of its own.

A bridge made here (``mslbt0``, host end 198.19.250.1/24) joins the host to one
node namespace (198.19.250.10) running the k3s twin server with its kubelet. The
lb provider installs the shipped MetalLB manifest there; the kubelet runs the
MetalLB twin's controller and speaker as processes in the namespace; the address
the probe Service gets is announced by the speaker (the kernel answers ARP for it
on the bridge) and the harness connects to it from the host. Without an
advertisement for the pool (C10) the address is handed out but never answers.
Only addresses on the bridge made here are used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lbmesh_support import make_context, settings

from meshstack.providers.lb_metallb import SETTINGS_SCHEMA, MetalLBProvider

ROOT = Path(__file__).resolve().parents[2]
BRIDGE, HOST_IP, NODE_IP = "mslbt0", "198.19.250.1", "198.19.250.10"
NETNS, VETH = "mslbt-n1", "mslbt-v1"
POOL = ["198.19.250.200-198.19.250.210"]
FAST = {
    "MESHSTACK_TWIN_HEARTBEAT_INTERVAL": "1",
    "MESHSTACK_TWIN_RESYNC_INTERVAL": "0.5",
    "MESHSTACK_TWIN_PROXY_INTERVAL": "0.5",
}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to make a network namespace and a bridge",
)


def sh(
    *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}"
        )
    return proc


def _net_up() -> None:
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    sh("ip", "netns", "add", NETNS)
    sh(
        "ip",
        "link",
        "add",
        VETH,
        "type",
        "veth",
        "peer",
        "name",
        "ztlbt1",
        "netns",
        NETNS,
    )
    sh("ip", "link", "set", VETH, "master", BRIDGE, "up")
    for cmd in (
        ("addr", "add", f"{NODE_IP}/24", "dev", "ztlbt1"),
        ("link", "set", "ztlbt1", "up"),
        ("link", "set", "lo", "up"),
    ):
        sh("ip", "netns", "exec", NETNS, "ip", *cmd)


def _net_down() -> None:
    sh("ip", "netns", "del", NETNS, check=False)
    sh("ip", "link", "del", VETH, check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


def _k3s(
    node_dir: Path, *args: str, timeout: float = 90
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **FAST,
        "MESHSTACK_NODE_DIR": str(node_dir),
        "PYTHONPATH": str(ROOT / "src"),
    }
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            NETNS,
            sys.executable,
            "-m",
            "meshstack.twin.k3s",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


SERVER_ARGS = ["--disable", "servicelb", "--disable", "traefik", "--node-ip", NODE_IP]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The k3s twin server in its namespace; yields its kubeconfig."""
    _net_down()
    _net_up()
    node_dir = tmp_path_factory.mktemp("lbnode")
    try:
        done = _k3s(
            node_dir,
            "server",
            "--daemon",
            "--node-name",
            "n1",
            "--bind-address",
            NODE_IP,
            "--service-cidr",
            "198.18.240.0/24",
            "--token",
            "lb-selftest",
            *SERVER_ARGS,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield node_dir / "etc/rancher/k3s/k3s.yaml"
    finally:
        _k3s(node_dir, "killall", timeout=60)
        _net_down()


def _provider(tmp_path: Path, kubeconfig: Path, **over) -> MetalLBProvider:
    values = {
        "version": "v0.14.8",
        "manifests": str(ROOT / "stacks/local/metallb"),
        "pools": [{"name": "bridge-pool", "addresses": POOL}],
        "install_timeout": 120,
        "ip_allocation_timeout": 30,
        "reachability_timeout": 20,
        "probe_namespace": "lb-probe",
        **over,
    }
    ctx = make_context(
        tmp_path,
        {"kubeconfig": str(kubeconfig), "server_args": ["server", *SERVER_ARGS]},
    )
    ctx.state("overlay").outputs["host_address"] = HOST_IP
    return MetalLBProvider(settings(SETTINGS_SCHEMA, **values), ctx)


def test_metallb_installs_and_an_announced_address_answers_from_the_host(
    node, tmp_path
):
    provider = _provider(tmp_path, node)

    started = time.monotonic()
    provider.provision()
    took = time.monotonic() - started
    components = provider.judge_components()
    servicelb = provider.judge_servicelb()
    config = provider.judge_config()
    allocation = provider.judge_allocation()

    print(f"provision took {took:.1f}s")
    assert components.reasons == [], components.evidence
    assert servicelb.reasons == []
    assert config.verdict.healthy, config.summary()
    assert allocation.reasons == [], (allocation.summary(), allocation.details)
    assert allocation.details["ip"].startswith("198.19.250.2")
    assert allocation.details["answer"] == "meshstack-lb-probe"
    neigh = sh("ip", "neigh", "show", allocation.details["ip"], "dev", BRIDGE).stdout
    assert "lladdr" in neigh  # the address was resolved by ARP on the bridge


def test_without_an_advertisement_the_address_is_given_but_silent_c10(node, tmp_path):
    provider = _provider(tmp_path, node, advertisements=[], reachability_timeout=6)
    provider.kube.delete(
        "metallb.io/v1beta1", "L2Advertisement", "default", "metallb-system"
    )
    provider._apply(provider.config_documents(), retry_webhook=True)

    finding = provider.judge_allocation()

    assert finding.details["ip"] is not None
    assert {"ip_unreachable", "pool_not_advertised"} <= set(finding.reasons)
