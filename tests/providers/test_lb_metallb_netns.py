"""MetalLB end to end on a k3s twin node in a network namespace of its own.

A bridge made here (``mslbt<n>0``, host end 198.19.<200+n>.1/24, n the xdist
worker) joins the host to one node namespace (.10) running the k3s twin server
and its kubelet. The lb provider installs the shipped MetalLB manifest there; the
kubelet runs the MetalLB twin's controller and speaker as processes in the
namespace; the address the probe Service gets is announced by the speaker (the
kernel answers ARP for it on the bridge) and the harness connects to it from the
host. Without an advertisement for the pool (C10) the address is handed out but
never answers. Only addresses on the bridge made here are used.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lbmesh_support import NetnsNode, make_context, netns_capable, settings, sh

from meshstack.providers.lb_metallb import SETTINGS_SCHEMA, MetalLBProvider

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not netns_capable(),
    reason="needs root and iproute2 to make a network namespace and a bridge",
)


def server_args(node: NetnsNode) -> list[str]:
    return [
        "--disable",
        "servicelb",
        "--disable",
        "traefik",
        "--node-ip",
        node.node_ip,
        "--service-cidr",
        "198.18.240.0/24",
    ]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsNode]:
    """The k3s twin server in its own namespace behind a bridge."""
    n = NetnsNode("lbt", 200, tmp_path_factory.mktemp("lbnode"))
    try:
        n.up(*server_args(n))
        yield n
    finally:
        n.down()


def _provider(root: Path, node: NetnsNode, **over) -> MetalLBProvider:
    pool = [f"{node.subnet}.200-{node.subnet}.210"]
    values = {
        "version": "v0.14.8",
        "manifests": str(ROOT / "stacks/local/metallb"),
        "pools": [{"name": "bridge-pool", "addresses": pool}],
        "install_timeout": 120,
        "ip_allocation_timeout": 30,
        "reachability_timeout": 20,
        "probe_namespace": "lb-probe",
        **over,
    }
    ctx = make_context(
        root,
        {
            "kubeconfig": str(node.kubeconfig),
            "server_args": ["server", *server_args(node)],
        },
    )
    ctx.state("overlay").outputs["host_address"] = node.host_ip
    return MetalLBProvider(settings(SETTINGS_SCHEMA, **values), ctx)


@pytest.fixture(scope="module")
def installed(node: NetnsNode, tmp_path_factory: pytest.TempPathFactory) -> float:
    """MetalLB provisioned once on the node; the seconds it took."""
    provider = _provider(tmp_path_factory.mktemp("lb"), node)
    started = time.monotonic()
    provider.provision()
    return time.monotonic() - started


def test_metallb_installs_and_an_announced_address_answers_from_the_host(
    node, installed, tmp_path
):
    provider = _provider(tmp_path, node)

    components = provider.judge_components()
    servicelb = provider.judge_servicelb()
    config = provider.judge_config()
    allocation = provider.judge_allocation()
    probe = provider.probe()

    print(f"MetalLB provision took {installed:.1f}s")
    assert components.reasons == [], components.evidence
    assert servicelb.reasons == []
    assert config.verdict.healthy, config.summary()
    assert allocation.reasons == [], (allocation.summary(), allocation.details)
    assert allocation.details["ip"].startswith(f"{node.subnet}.2")
    assert allocation.details["answer"] == "meshstack-lb-probe"
    # the probe connected once the speaker said it announces the address
    assert any(" nodeAssigned " in e for e in allocation.details["events"])
    assert probe.reasons == [] and probe.details["answer"] == "meshstack-lb-probe"
    neigh = sh("ip", "neigh", "show", allocation.details["ip"], "dev", node.bridge)
    assert "lladdr" in neigh.stdout  # the address was resolved by ARP on the bridge
    # the probe Service is gone; its namespace stays recorded for teardown
    assert [(r["type"], r["id"]) for r in provider.state.resources] == [
        ("Namespace", "lb-probe")
    ]


def test_without_an_advertisement_the_address_is_given_but_silent_c10(
    node, installed, tmp_path
):
    provider = _provider(tmp_path, node, advertisements=[], reachability_timeout=6)
    provider.kube.delete(
        "metallb.io/v1beta1", "L2Advertisement", "default", "metallb-system"
    )
    try:
        finding = provider.judge_allocation()
    finally:
        _provider(tmp_path, node)._apply(provider_default_adverts(node, tmp_path))
    assert finding.details["ip"] is not None
    assert {"ip_unreachable", "pool_not_advertised"} <= set(finding.reasons)
    assert "no speaker announced it" in " ".join(finding.hints + finding.evidence)


def provider_default_adverts(node: NetnsNode, root: Path) -> list[dict]:
    """The default advertisement again, for tests that run after this one."""
    docs = _provider(root, node).config_documents()
    return [d for d in docs if d["kind"] == "L2Advertisement"]
