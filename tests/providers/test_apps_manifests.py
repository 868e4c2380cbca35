"""The apps provider applies manifests through the official client and waits on them.

It runs against the twin API server on loopback (the real REST and watch protocol).
Nothing runs the pods here, so the test plays the kubelet (it reports the pods
Ready; the twin's own controllers then make the Deployment Available) and MetalLB (it
gives the Service the address 127.0.0.1, where a real web demo listens).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from loadslo_support import free_port, make_context, serving

from meshstack.providers.apps_manifests import (
    ManifestApps,
    deployment_available,
    load_manifests,
    load_routes,
    probe_routes,
)
from meshstack.providers.base import ProviderError
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.kube.controllers import ControllerOptions
from meshstack.verdicts import Verdict

APPS = Path(__file__).resolve().parents[2] / "stacks" / "local" / "apps"


def test_manifests_apply_namespaces_first_and_skip_the_routes_file() -> None:
    docs = load_manifests(APPS / "emojivoto")

    assert docs[0]["kind"] == "Namespace"
    assert docs[0]["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
    assert all("routes" not in d for d in docs)
    web = next(
        d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "web-svc"
    )
    assert web["spec"]["type"] == "LoadBalancer"


def test_the_misannotated_variant_annotates_only_the_deployments_own_metadata() -> None:
    docs = load_manifests(APPS / "emojivoto-misannotated")
    deployments = [d for d in docs if d["kind"] == "Deployment"]

    assert "annotations" not in docs[0]["metadata"]
    assert deployments
    for dep in deployments:
        assert dep["metadata"]["annotations"] == {"linkerd.io/inject": "enabled"}
        assert "annotations" not in dep["spec"]["template"]["metadata"]


def test_emojivoto_routes_include_the_vote_that_must_fail() -> None:
    routes = load_routes(APPS / "emojivoto", None)

    assert {"path": "/api/vote?choice=:poop:", "status": 500} in routes


def test_a_deployment_is_available_only_with_the_condition_and_the_replicas() -> None:
    dep = {"spec": {"replicas": 2}, "status": {"availableReplicas": 1,
           "conditions": [{"type": "Available", "status": "True"}]}}  # fmt: skip
    assert not deployment_available(dep)
    dep["status"]["availableReplicas"] = 2
    assert deployment_available(dep)
    assert deployment_available({"spec": {"replicas": 0}})


def test_a_route_answering_the_wrong_status_is_an_unhealthy_endpoint() -> None:
    port = free_port()
    with serving("meshstack.demoapps.webdemo", {"PORT": str(port)}, port):
        finding = probe_routes(
            f"http://127.0.0.1:{port}",
            [{"path": "/api/info", "status": 200}, {"path": "/nope", "status": 200}],
            timeout=1,
        )

    assert finding.verdict is Verdict.FAIL
    assert finding.reasons == ["endpoint_unhealthy"]
    assert any("/nope -> 404" in e for e in finding.evidence)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    # As the local profile runs k3s: --disable servicelb (MetalLB gives addresses).
    controllers = ControllerOptions(servicelb=False)
    cfg = ApiServerConfig(
        tmp_path / "api", port=0, persist=False, controllers=controllers
    )
    server = ApiServer(cfg)
    server.start()
    path = tmp_path / "kubeconfig"
    path.write_text(server.kubeconfig())
    yield path
    server.stop()


def webdemo_manifests(tmp_path: Path, port: int) -> Path:
    """The web demo's manifests with the Service on ``port`` (where it listens)."""
    folder = tmp_path / "webdemo"
    folder.mkdir()
    docs = load_manifests(APPS / "webdemo")
    for doc in docs:
        if doc["kind"] == "Service":
            doc["spec"]["ports"][0]["port"] = port
    (folder / "webdemo.yaml").write_text(yaml.safe_dump_all(docs))
    shutil.copy(APPS / "webdemo" / "routes.yaml", folder / "routes.yaml")
    return folder


def play_kubelet_and_metallb(kubeconfig: Path, stop: threading.Event) -> None:
    """Report webdemo's pods Ready (the twin's controllers then make the Deployment
    Available) and give its Service the address 127.0.0.1."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    ready = {"status": {"phase": "Running", "podIP": "127.0.0.1", "conditions": [
        {"type": "Ready", "status": "True"},
        {"type": "ContainersReady", "status": "True"}]}}  # fmt: skip
    ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    while not stop.wait(0.3):
        try:
            pods = core.list_namespaced_pod("webdemo").items
            for pod in pods:
                core.patch_namespaced_pod_status(pod.metadata.name, "webdemo", ready)
            core.patch_namespaced_service_status("webdemo", "webdemo", ingress)
        except client.ApiException:
            continue  # not created yet
        if pods:
            return


def provider(tmp_path: Path, kubeconfig: Path, timeout: float) -> ManifestApps:
    ctx = make_context(tmp_path)
    ctx.state("cluster").outputs["kubeconfig"] = str(kubeconfig)
    settings = {
        "apps": [{"name": "webdemo", "namespace": "webdemo", "manifests": "webdemo",
                  "service": "webdemo"}],
        "available_timeout": timeout,
        "route_timeout": 5,
    }  # fmt: skip
    return ManifestApps(settings, ctx)


def test_provisioned_apps_offer_their_lb_url_and_answer_through_it(
    tmp_path: Path, kubeconfig: Path
) -> None:
    port = free_port()
    webdemo_manifests(tmp_path, port)
    apps = provider(tmp_path, kubeconfig, timeout=20)
    stop = threading.Event()
    helper = threading.Thread(target=play_kubelet_and_metallb, args=(kubeconfig, stop))
    helper.start()
    try:
        with serving("meshstack.demoapps.webdemo", {"PORT": str(port)}, port):
            apps.provision()
            routes = apps.check_routes("webdemo")
    finally:
        stop.set()
        helper.join()

    assert apps.state.outputs["apps"]["webdemo"]["url"] == f"http://127.0.0.1:{port}"
    assert routes.verdict is Verdict.PASS, routes.to_json()
    assert apps.check_deployments("webdemo").verdict is Verdict.PASS
    kinds = [r["type"] for r in apps.state.resources]
    assert kinds == ["Namespace", "Deployment", "Service"]
    # The report's copy of what was applied: the same objects, in the same order.
    applied = list(yaml.safe_load_all(apps.manifests_text("webdemo")))
    assert [d["kind"] for d in applied] == kinds
    assert applied == load_manifests(tmp_path / "webdemo")

    apps.teardown()
    assert apps.state.resources == []


def test_a_deployment_that_never_becomes_available_fails_the_provisioning(
    tmp_path: Path, kubeconfig: Path
) -> None:
    webdemo_manifests(tmp_path, free_port())
    apps = provider(tmp_path, kubeconfig, timeout=2)

    with pytest.raises(ProviderError) as err:
        apps.provision()

    assert err.value.finding.reasons == ["deployment_not_available"]
    assert any(
        "webdemo/webdemo: 0/1 available" in e for e in err.value.finding.evidence
    )
