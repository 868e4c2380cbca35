"""The Linkerd provider installs with the CLI it is given and judges what it finds.

The CLI is the Linkerd twin behind the wrapper ``meshstack local up`` writes, run
as a subprocess exactly as a real ``linkerd`` would be, against the twin API
server. The test stands in for the kubelet where pods must be ready.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lbmesh_support import TwinCluster, make_context, settings

from meshstack.local.linkerd_cli import write_cli_wrapper
from meshstack.providers.mesh_linkerd import SETTINGS_SCHEMA, LinkerdProvider, redact
from meshstack.twin.linkerd.injector import Injector
from meshstack.twin.linkerd.kube import Kube


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[TwinCluster]:
    c = TwinCluster(tmp_path)
    yield c
    c.stop()


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    return write_cli_wrapper(tmp_path / "local", sys.executable)


def _provider(tmp_path, twin, wrapper, **over) -> LinkerdProvider:
    base = {
        "version": "stable-2.14.10",
        "cli": str(wrapper),
        "check_wait": 10,
        "control_plane_timeout": 30,
    }
    ctx = make_context(tmp_path, {"kubeconfig": str(twin.kubeconfig)})
    return LinkerdProvider(settings(SETTINGS_SCHEMA, **{**base, **over}), ctx)


def test_the_wrapper_runs_the_twin_cli_as_a_program(wrapper):
    proc = subprocess.run(
        [str(wrapper), "version", "--client"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Client version: stable-2.14.10\n"
    assert wrapper.stat().st_mode & 0o111


def test_secrets_are_hidden_in_logged_command_lines():
    line = redact(
        ["linkerd", "install", "--identity-issuer-key-file=/k", "--token=abc"]
    )

    assert "abc" not in line and "/k" not in line
    assert "--token=***" in line and "install" in line


def test_provisioning_keeps_the_pre_check_and_installs_the_control_plane(
    tmp_path, twin, wrapper
):
    provider = _provider(tmp_path, twin, wrapper, viz=False)
    twin.play_kubelet(["linkerd"], seconds=180)

    provider.provision()

    outputs = provider.state.outputs
    assert outputs["pre_check_exit"] == 0
    assert "pre-kubernetes-setup" in outputs["pre_check"]
    assert (tmp_path / "bundle" / "linkerd-check-pre.txt").exists()
    kinds = {r["type"] for r in provider.state.resources}
    assert {
        "CustomResourceDefinition",
        "Namespace",
        "Deployment",
        "MutatingWebhookConfiguration",
    } <= kinds
    pre = provider.judge_pre_check()
    assert pre.verdict.healthy, pre.summary()
    text, check = provider.judge_check()
    assert check.verdict.healthy, (check.summary(), text)
    assert check.details["exit_code"] == 0


def test_a_second_provision_does_not_reinstall(tmp_path, twin, wrapper):
    provider = _provider(tmp_path, twin, wrapper, viz=False)
    twin.play_kubelet(["linkerd"], seconds=180)
    provider.provision()
    made = len(provider.state.resources)

    provider.provision()

    assert len(provider.state.resources) == made


def test_a_pre_check_failure_stops_the_install(tmp_path, twin, wrapper):
    twin.core.create_namespace({"metadata": {"name": "linkerd"}})
    provider = _provider(tmp_path, twin, wrapper, viz=False)

    with pytest.raises(Exception) as err:
        provider.provision()

    assert "linkerd check --pre failed" in str(err.value)
    assert "preexisting_resource" in err.value.finding.reasons
    assert provider.state.resources == []


def test_an_attached_stack_has_no_pre_check_to_judge(tmp_path, twin, wrapper):
    finding = _provider(tmp_path, twin, wrapper).judge_pre_check()

    assert finding.reasons == ["context_missing"]
    assert str(finding.verdict) == "INCONCLUSIVE"


def test_check_proxy_in_an_unmeshed_namespace_fails(tmp_path, twin, wrapper):
    provider = _provider(tmp_path, twin, wrapper, viz=False)
    twin.play_kubelet(["linkerd"], seconds=180)
    provider.provision()
    twin.core.create_namespace({"metadata": {"name": "emojivoto"}})

    text, finding = provider.judge_proxy("emojivoto")

    assert "not_meshed" in finding.reasons, text
    assert finding.details["exit_code"] == 1


def _pod(ns: str, name: str, containers: list[str], owner: bool = False) -> dict:
    """A pod; ``owner`` adds a Deployment owner, for an admission review only (the
    twin's garbage collector removes stored pods whose owner does not exist)."""
    meta: dict = {"name": name, "namespace": ns, "labels": {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "web",
                "uid": "u1",
                "controller": True,
            }
        ]
    containers_ = [{"name": c, "image": f"{c}:1"} for c in containers]
    return {"metadata": meta, "spec": {"containers": containers_}}


def test_pods_without_the_proxy_and_a_misplaced_annotation_are_judged_c29(
    tmp_path, twin, wrapper
):
    ns = "emojivoto"
    twin.core.create_namespace({"metadata": {"name": ns}})
    twin.kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": ns,
                "annotations": {"linkerd.io/inject": "enabled"},
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]},
                },
            },
        }
    )
    admitted = _pod(ns, "", ["web"], owner=True)
    admitted["metadata"]["generateName"] = "web-5d7f-"
    review = {
        "request": {
            "uid": "1",
            "kind": {"kind": "Pod"},
            "namespace": ns,
            "object": admitted,
        }
    }
    lines: list[str] = []
    Injector(
        Kube(twin.kube.api, str(twin.kubeconfig)), "stable-2.14.10", emit=lines.append
    ).review(review)
    twin.core.create_namespaced_pod(ns, _pod(ns, "web-5d7f-abcde", ["web"]))
    twin.play_kubelet([ns], seconds=5).join()

    attachments, finding = _provider(tmp_path, twin, wrapper).judge_meshed(ns)

    assert set(finding.reasons) == {"not_meshed", "annotation_misplaced"}
    assert finding.details["without_proxy"] == ["web-5d7f-abcde"]
    assert "InjectionSkipped" in attachments["events and injector log"]
    assert attachments["pods and their containers"] == "pod/web-5d7f-abcde: web"


def test_pods_carrying_the_proxy_pass(tmp_path, twin, wrapper):
    ns = "webdemo"
    twin.core.create_namespace({"metadata": {"name": ns}})
    twin.core.create_namespaced_pod(ns, _pod(ns, "web-1", ["web", "linkerd-proxy"]))
    twin.play_kubelet([ns], seconds=5).join()

    attachments, finding = _provider(tmp_path, twin, wrapper).judge_meshed(ns)

    assert finding.reasons == []
    assert finding.details["pods"] == 1
    # what was seen is attached even when it passes, never an empty attachment
    assert attachments == {"pods and their containers": "pod/web-1: web, linkerd-proxy"}


def test_an_empty_namespace_is_not_a_pass(tmp_path, twin, wrapper):
    twin.core.create_namespace({"metadata": {"name": "empty"}})

    _, finding = _provider(tmp_path, twin, wrapper).judge_meshed("empty")

    assert str(finding.verdict) == "INCONCLUSIVE"


def test_teardown_removes_the_installed_control_plane(tmp_path, twin, wrapper):
    provider = _provider(tmp_path, twin, wrapper, viz=False)
    twin.play_kubelet(["linkerd"], seconds=180)
    provider.provision()

    provider.teardown()

    assert provider.state.resources == []
    hooks = twin.kube.list(
        "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"
    )
    assert hooks == []
    crds = [
        c["metadata"]["name"]
        for c in twin.kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    ]
    assert not any(name.endswith("linkerd.io") for name in crds)
