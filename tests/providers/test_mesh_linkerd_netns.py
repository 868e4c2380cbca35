"""Linkerd end to end on a k3s twin node in a network namespace of its own.

The mesh provider runs the Linkerd CLI twin (through the wrapper ``local up``
writes) against a k3s twin server whose kubelet runs the control plane, viz and
the proxies as processes; the proxy injector is called by the API server's real
admission path. A namespace annotated for injection gets meshed pods; a
Deployment annotated on its own metadata (C29) does not, and the injector says so.
Only addresses on the bridge made here (198.19.<230+n>.0/24) are used.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from lbmesh_support import NetnsNode, make_context, netns_capable, settings

from meshstack.local.linkerd_cli import write_cli_wrapper
from meshstack.providers.mesh_linkerd import SETTINGS_SCHEMA, LinkerdProvider

pytestmark = pytest.mark.skipif(
    not netns_capable(),
    reason="needs root and iproute2 to make a network namespace and a bridge",
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsNode]:
    n = NetnsNode("lmt", 230, tmp_path_factory.mktemp("meshnode"))
    args = [
        "--disable",
        "servicelb",
        "--disable",
        "traefik",
        "--node-ip",
        n.node_ip,
        "--service-cidr",
        "198.18.241.0/24",
    ]
    try:
        n.up(*args)
        yield n
    finally:
        n.down()


@pytest.fixture(scope="module")
def mesh(node: NetnsNode, tmp_path_factory: pytest.TempPathFactory) -> LinkerdProvider:
    """Linkerd (with viz) provisioned once for the module."""
    root = tmp_path_factory.mktemp("mesh")
    wrapper = write_cli_wrapper(root / "local", sys.executable)
    values = {
        "version": "stable-2.14.10",
        "cli": str(wrapper),
        "viz": True,
        "check_wait": 60,
        "cli_timeout": 120,
        "control_plane_timeout": 120,
    }
    ctx = make_context(root, {"kubeconfig": str(node.kubeconfig)})
    provider = LinkerdProvider(settings(SCHEMA, **values), ctx)
    started = time.monotonic()
    provider.provision()
    print(f"linkerd provision took {time.monotonic() - started:.1f}s")
    return provider


SCHEMA = SETTINGS_SCHEMA


def _echo(provider: LinkerdProvider, ns: str, annotate_ns: bool, own=None) -> None:
    notes = {"linkerd.io/inject": "enabled"} if annotate_ns else {}
    provider.kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "annotations": notes},
        }
    )
    labels = {"app": "echo"}
    provider.kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "echo", "namespace": ns, "annotations": own or {}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "echo",
                                "image": "ghcr.io/meshstack/echo:1.0",
                                "ports": [{"name": "http", "containerPort": 8080}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": "http"}
                                },
                            }
                        ]
                    },
                },
            },
        }
    )


def _await_running(provider: LinkerdProvider, ns: str, timeout: float = 60) -> list:
    core = client.CoreV1Api(provider.kube.api)
    deadline = time.monotonic() + timeout
    pods: list = []
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns).items
        if pods and all(
            p.status.phase == "Running"
            and all(s.ready for s in p.status.container_statuses or [])
            for p in pods
        ):
            return pods
        time.sleep(0.5)
    raise AssertionError(
        f"pods in {ns} not running after {timeout}s: "
        f"{[(p.metadata.name, p.status.phase) for p in pods]}"
    )


def test_the_pre_check_and_the_check_pass_on_a_fresh_install(mesh):
    pre = mesh.judge_pre_check()
    text, check = mesh.judge_check()

    assert pre.verdict.healthy, pre.summary()
    assert check.verdict.healthy, (check.summary(), text)
    assert check.details["exit_code"] == 0


def test_pods_of_an_annotated_namespace_carry_the_proxy_and_pass_check_proxy(mesh):
    _echo(mesh, "meshed", annotate_ns=True)
    pods = _await_running(mesh, "meshed")

    _, meshed = mesh.judge_meshed("meshed")
    text, proxy = mesh.judge_proxy("meshed")

    assert [c.name for c in pods[0].spec.containers] == ["echo", "linkerd-proxy"]
    assert meshed.reasons == []
    assert proxy.verdict.healthy, (proxy.summary(), text)


def test_an_annotation_on_the_deployment_metadata_leaves_pods_bare_c29(mesh):
    _echo(mesh, "c29", annotate_ns=False, own={"linkerd.io/inject": "enabled"})
    _await_running(mesh, "c29")

    attachments, finding = mesh.judge_meshed("c29")
    _, check = mesh.judge_check()

    assert set(finding.reasons) == {"not_meshed", "annotation_misplaced"}
    assert "skipped pod/echo-" in attachments["events and injector log"]
    assert "InjectionSkipped" in attachments["events and injector log"]
    assert check.verdict.healthy  # `linkerd check` alone does not see it (C29)


def _get_through_the_proxy(mesh: LinkerdProvider, ns: str, count: int) -> int:
    """Requests to the echo pod's published port (the proxy's inbound listener)."""
    import json
    import urllib.request

    pod = client.CoreV1Api(mesh.kube.api).list_namespaced_pod(ns).items[0]
    ports = json.loads(pod.metadata.annotations["twin.meshstack.io/port-map"])
    ok = 0
    for _ in range(count):
        url = f"http://{pod.status.pod_ip}:{ports['8080']}/"
        with urllib.request.urlopen(url, timeout=5) as resp:
            ok += resp.status == 200
    return ok


def test_viz_stat_reads_meshed_traffic_and_shows_the_unmeshed_workload(mesh):
    from meshstack import analyzers
    from meshstack.analyzers import Context, Evidence

    _echo(mesh, "meshed", annotate_ns=True)
    _await_running(mesh, "meshed")
    sent = _get_through_the_proxy(mesh, "meshed", 20)

    meshed = mesh.cli("viz", "stat", "deploy", "-n", "meshed")
    _echo(mesh, "c29", annotate_ns=False, own={"linkerd.io/inject": "enabled"})
    _await_running(mesh, "c29")
    bare = mesh.cli("viz", "stat", "deploy", "-n", "c29")

    assert sent == 20
    assert meshed.returncode == 0, meshed.stderr
    header, row = meshed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "MESHED", "SUCCESS", "RPS"]
    assert row.split()[:3] == ["echo", "1/1", "100.00%"]
    stat = analyzers.get("linkerd-stat")
    assert stat.judge(Evidence(meshed.stdout, "stat"), Context()).reasons == []
    judged = stat.judge(Evidence(bare.stdout, "stat"), Context())
    assert "not_meshed" in judged.reasons, bare.stdout
