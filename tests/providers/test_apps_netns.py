"""The apps, load and slo layers end to end on a k3s twin node in its own namespace.

A k3s twin server (its kubelet runs pods as processes) with MetalLB and Linkerd
provisioned by their providers; the apps provider applies the real emojivoto and
web demo manifests; the kubelet runs the demo apps behind the proxy twin and writes
a file_sd target per meshed pod; a real Prometheus scrapes them over the bridge;
real Locust drives emojivoto through its MetalLB address; the SLO provider judges
the window. Only addresses on the bridge made here (198.19.252.0/24) are used.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from lbmesh_support import NetnsNode, make_context, netns_capable, settings
from loadslo_support import prometheus_running

from meshstack.local.linkerd_cli import write_cli_wrapper
from meshstack.providers import apps_manifests, lb_metallb, mesh_linkerd
from meshstack.providers.load_locust import LocustLoad, finding_from_json
from meshstack.providers.slo_prometheus import PrometheusSlo
from meshstack.verdicts import Verdict

ROOT = Path(__file__).resolve().parents[2]
SERVER_ARGS = [
    "--disable", "servicelb", "--disable", "traefik",
    "--node-ip", "198.19.252.10", "--service-cidr", "198.18.242.0/24",
]  # fmt: skip
POOL = ["198.19.252.200-198.19.252.210"]

pytestmark = pytest.mark.skipif(
    not netns_capable(),
    reason="needs root and iproute2 to make a network namespace and a bridge",
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Node, MetalLB, Linkerd and the two apps, provisioned once for the module."""
    root = tmp_path_factory.mktemp("appsnode")
    targets = root / "prometheus" / "targets"
    targets.mkdir(parents=True)
    node = NetnsNode("apt", "198.19.252", root / "node")
    # As the local stack's install script runs it: ClusterIPs bound on the node's
    # loopback (web reaches emoji-svc there), proxies' targets for Prometheus.
    node.FAST = {
        **NetnsNode.FAST,
        "MESHSTACK_PROM_TARGETS_DIR": str(targets),
        "MESHSTACK_TWIN_LOOPBACK_CLUSTER_IPS": "1",
    }
    try:
        node.up(*SERVER_ARGS)
        ctx = make_context(
            root, {"kubeconfig": str(node.kubeconfig), "server_args": SERVER_ARGS}
        )
        ctx.state("overlay").outputs["host_address"] = node.host_ip
        timings = provision_layers(ctx, root)
        with prometheus_running(root) as prom:
            yield {"ctx": ctx, "root": root, "prom": prom, "timings": timings}
    finally:
        node.down()


def provision_layers(ctx: Any, root: Path) -> dict[str, float]:
    lb = lb_metallb.MetalLBProvider(
        settings(lb_metallb.SETTINGS_SCHEMA, version="v0.14.8",
                 manifests=str(ROOT / "stacks/local/metallb"),
                 pools=[{"name": "bridge-pool", "addresses": POOL}],
                 install_timeout=120),
        ctx,
    )  # fmt: skip
    wrapper = write_cli_wrapper(root / "local", sys.executable)
    mesh = mesh_linkerd.LinkerdProvider(
        settings(mesh_linkerd.SETTINGS_SCHEMA, version="stable-2.14.10",
                 cli=str(wrapper), viz=False, control_plane_timeout=120),
        ctx,
    )  # fmt: skip
    apps = apps_manifests.ManifestApps(
        settings(apps_manifests.SETTINGS_SCHEMA, available_timeout=120, apps=[
            {"name": "emojivoto", "namespace": "emojivoto", "service": "web-svc",
             "manifests": str(ROOT / "stacks/local/apps/emojivoto")},
            {"name": "webdemo", "namespace": "webdemo", "service": "webdemo",
             "manifests": str(ROOT / "stacks/local/apps/webdemo")},
        ]),
        ctx,
    )  # fmt: skip
    timings = {}
    for name, provider in (("lb", lb), ("mesh", mesh), ("apps", apps)):
        started = time.monotonic()
        provider.provision()
        timings[name] = round(time.monotonic() - started, 1)
    print("provisioning took", timings)
    return timings


def apps_provider(stack: dict[str, Any]) -> apps_manifests.ManifestApps:
    section = {"apps": [
        {"name": "emojivoto", "namespace": "emojivoto", "service": "web-svc",
         "manifests": str(ROOT / "stacks/local/apps/emojivoto")},
        {"name": "webdemo", "namespace": "webdemo", "service": "webdemo",
         "manifests": str(ROOT / "stacks/local/apps/webdemo")},
    ]}  # fmt: skip
    return apps_manifests.ManifestApps(
        settings(apps_manifests.SETTINGS_SCHEMA, **section), stack["ctx"]
    )


def test_both_apps_are_available_meshed_and_answer_through_metallb(
    stack: dict[str, Any],
) -> None:
    apps = apps_provider(stack)
    urls = {
        name: out["url"] for name, out in stack["ctx"].outputs("apps")["apps"].items()
    }
    core = client.CoreV1Api(apps.kube.api)

    for name in ("emojivoto", "webdemo"):
        assert apps.check_deployments(name).verdict is Verdict.PASS
        routes = apps.check_routes(name)
        assert routes.verdict is Verdict.PASS, routes.evidence
        assert urls[name].startswith("http://198.19.252.2")
    pods = core.list_namespaced_pod("emojivoto").items
    assert {p.metadata.labels["app"] for p in pods} == {
        "emoji-svc",
        "voting-svc",
        "web-svc",
    }
    for pod in pods:
        assert "linkerd-proxy" in [c.name for c in pod.spec.containers]


@pytest.fixture(scope="module")
def measured(stack: dict[str, Any]) -> dict[str, Any]:
    """One emojivoto load (Locust, ~24 s) through MetalLB, judged by the SLO layer."""
    ctx, root = stack["ctx"], stack["root"]
    profile = yaml.safe_load((ROOT / "loadprofiles/emojivoto.yaml").read_text())
    locustfile = str(ROOT / "loadprofiles/emojivoto_locust.py")
    profile.update(duration=24, ramp=3, steady=20, tolerance=0.1, min_sample=300,
                   locustfile=locustfile)  # fmt: skip
    (root / "profiles").mkdir(exist_ok=True)
    (root / "profiles" / "emojivoto.yaml").write_text(yaml.safe_dump(profile))
    url = str(stack["prom"]["url"])
    wait_scraped(url, "emojivoto", timeout=60)
    record = LocustLoad({"directory": str(root / "profiles")}, ctx).run("emojivoto")
    result = PrometheusSlo({"url": url, "scrape_interval": 1}, ctx).evaluate(record)
    rate = finding_from_json(record["finding"]).details.get("achieved_rps")
    seen = {
        k: (v["verdict"], v["details"].get("min")) for k, v in result["checks"].items()
    }
    print("load:", rate, "rps;", seen)
    return {"record": record, "result": result}


def test_emojivoto_load_through_metallb_meets_its_rate_and_success_objectives(
    measured: dict[str, Any],
) -> None:
    record, checks = measured["record"], measured["result"]["checks"]
    load = finding_from_json(record["finding"])

    assert record["host"].startswith("http://198.19.252.2")
    assert load.verdict is Verdict.PASS, load.to_json()
    for name in ("success_rate", "declared:votes for :poop:", "reconciliation"):
        assert checks[name]["verdict"] == "PASS", (name, checks[name])


def test_emojivoto_latency_through_metallb_meets_its_bounds(
    measured: dict[str, Any],
) -> None:
    checks = measured["result"]["checks"]

    for name in ("latency_p95", "latency_p99"):
        assert checks[name]["verdict"] == "PASS", (name, checks[name]["details"])


def wait_scraped(url: str, namespace: str, timeout: float) -> None:
    """Until Prometheus has scraped every meshed pod of the namespace (three)."""
    from meshstack.local import prometheus

    deadline = time.monotonic() + timeout
    promql = f'count(up{{namespace="{namespace}"}} == 1)'
    while time.monotonic() < deadline:
        result = prometheus.query(url, promql).get("data", {}).get("result", [])
        if result and float(result[0]["value"][1]) >= 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus did not scrape the {namespace} proxies")
