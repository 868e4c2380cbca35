"""The proxy injector twin mutates pods exactly where Linkerd's injector does (C29).

The injection rule is checked through the real AdmissionReview exchange: directly
on :class:`Injector` against the twin API server, and over TLS against the
``controller proxy-injector`` process serving the webhook with the certificate
``linkerd install`` generated. Its log lines and events are read back with the
``injector-log`` analyzer, whose cases are the real C29 wording.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.providers.kube_apply import KubeClient
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.linkerd import cli, manifests
from meshstack.twin.linkerd.injector import SKIP_NO_ANNOTATION, Injector
from meshstack.twin.linkerd.kube import Kube

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeClient]:
    """A twin API server with Linkerd's install manifest applied."""
    root = tmp_path_factory.mktemp("injector")
    server = ApiServer(ApiServerConfig(root / "api", port=0, persist=False))
    server.start()
    path = root / "kubeconfig"
    path.write_text(server.kubeconfig())
    k = KubeClient.from_file(str(path))
    k.path = str(path)  # type: ignore[attr-defined]
    for objs in (manifests.crds("stable-2.14.10"), _control_plane()):
        for obj in objs:
            k.apply(obj)
    yield k
    server.stop()


def _control_plane() -> list[dict]:
    import io

    out = io.StringIO()
    assert cli.main(["install", "--ignore-cluster"], out, io.StringIO()) == 0
    return [d for d in yaml.safe_load_all(out.getvalue()) if d]


def _namespace(k: KubeClient, annotations=None, labels=None) -> str:
    name = f"app-{uuid.uuid4().hex[:6]}"
    meta = {"name": name, "annotations": annotations or {}, "labels": labels or {}}
    client.CoreV1Api(k.api).create_namespace({"metadata": meta})
    return name


def _deployment(k: KubeClient, ns: str, own=None, template=None) -> dict:
    labels = {"app": "web"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "annotations": own or {}},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": template or {}},
                "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            },
        },
    }
    k.apply(body)
    return body


def _review(ns: str, pod_notes=None, owner=None) -> dict:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-5d7f-",
            "namespace": ns,
            "annotations": pod_notes or {},
            "labels": {"app": "web"},
            "ownerReferences": owner or [],
        },
        "spec": {"containers": [{"name": "web", "image": "web:1"}]},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": ns,
            "operation": "CREATE",
            "object": pod,
        },
    }


def _injector(k: KubeClient, lines: list[str]) -> Injector:
    return Injector(Kube(k.api, k.path), "stable-2.14.10", emit=lines.append)


def _ops(answer: dict) -> list[dict]:
    return json.loads(base64.b64decode(answer["response"]["patch"]))


def test_a_pod_in_an_annotated_namespace_gets_the_proxy_container(kube):
    ns = _namespace(kube, annotations={"linkerd.io/inject": "enabled"})
    lines: list[str] = []

    answer = _injector(kube, lines).review(_review(ns))

    resp = answer["response"]
    assert resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    ops = _ops(answer)
    proxy = next(o["value"] for o in ops if o["path"] == "/spec/containers/-")
    assert proxy["name"] == "linkerd-proxy"
    assert proxy["image"] == "cr.l5d.io/linkerd/proxy:stable-2.14.10"
    notes = next(o["value"] for o in ops if o["path"] == "/metadata/annotations")
    assert notes["linkerd.io/proxy-version"] == "stable-2.14.10"
    assert any("injection patch generated for: pod/web-5d7f-" in ln for ln in lines)


def test_a_pod_template_annotation_injects_without_a_namespace_annotation(kube):
    ns = _namespace(kube)

    answer = _injector(kube, []).review(_review(ns, {"linkerd.io/inject": "enabled"}))

    assert answer["response"].get("patchType") == "JSONPatch"


@pytest.mark.parametrize("where", ["deployment metadata", "namespace label"])
def test_an_annotation_in_the_wrong_place_is_skipped_with_the_real_wording(kube, where):
    if where == "namespace label":
        ns = _namespace(kube, labels={"linkerd.io/inject": "enabled"})
        _deployment(kube, ns)
    else:
        ns = _namespace(kube)
        _deployment(kube, ns, own={"linkerd.io/inject": "enabled"})
    rs = client.AppsV1Api(kube.api)
    owner = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": "u1",
            "controller": True,
        }
    ]
    lines: list[str] = []

    answer = _injector(kube, lines).review(_review(ns, owner=owner))

    assert "patch" not in answer["response"] and answer["response"]["allowed"]
    assert lines[-1].endswith(
        'msg="skipped pod/web-5d7f-: neither the namespace nor the pod have the '
        'annotation \\"linkerd.io/inject:enabled\\""'
    )
    events = client.CoreV1Api(kube.api).list_namespaced_event(ns).items
    skipped = [e for e in events if e.reason == "InjectionSkipped"]
    assert [e.involved_object.kind for e in skipped] == ["Deployment"]
    assert skipped[0].message == (
        f"Linkerd sidecar proxy injection skipped: {SKIP_NO_ANNOTATION}"
    )
    assert skipped[0].source.component == "linkerd-proxy-injector"
    objs = [
        client.ApiClient().sanitize_for_serialization(o)
        for o in (
            client.CoreV1Api(kube.api).read_namespace(ns),
            rs.read_namespaced_deployment("web", ns),
        )
    ]
    objs[0].update(kind="Namespace", apiVersion="v1")
    objs[1].update(kind="Deployment", apiVersion="apps/v1")
    finding = analyzers.get("injector-log").judge(
        Evidence("\n".join(lines), "twin injector log"),
        Context(extra={"objects": objs}),
    )
    assert set(finding.reasons) == {"not_meshed", "annotation_misplaced"}


def test_an_opted_out_pod_in_an_annotated_namespace_is_left_alone(kube):
    ns = _namespace(kube, annotations={"linkerd.io/inject": "enabled"})
    lines: list[str] = []

    answer = _injector(kube, lines).review(
        _review(ns, {"linkerd.io/inject": "disabled"})
    )

    assert "patch" not in answer["response"]
    assert 'pod has the annotation \\"linkerd.io/inject:disabled\\"' in lines[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_injector_process_answers_admission_reviews_over_tls(kube, tmp_path):
    webhook, admin = _free_port(), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "MESHSTACK_KUBECONFIG": kube.path,
        "MESHSTACK_PORT_8443": str(webhook),
        "MESHSTACK_PORT_9995": str(admin),
        "MESHSTACK_IMAGE_TAG": "stable-2.14.10",
        "MESHSTACK_BIND_ADDRESS": "127.0.0.1",
    }
    log = (tmp_path / "injector.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meshstack.twin.linkerd.controller",
            "proxy-injector",
            "-log-level=info",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _await_ready(admin, proc)
        ns = _namespace(kube, annotations={"linkerd.io/inject": "enabled"})
        answer = _post(webhook, _review(ns), _ca_bundle(kube))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert answer["response"]["patchType"] == "JSONPatch"
    assert "received pod/web-5d7f-" in (tmp_path / "injector.log").read_text()


def _await_ready(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"injector exited {proc.returncode}"
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/ready", timeout=2
            ) as r:
                if r.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise AssertionError(f"injector not ready within {timeout}s: {last}")


def _ca_bundle(k: KubeClient) -> str:
    adm = client.AdmissionregistrationV1Api(k.api)
    hook = adm.read_mutating_webhook_configuration(
        "linkerd-proxy-injector-webhook-config"
    )
    return base64.b64decode(hook.webhooks[0].client_config.ca_bundle).decode()


def _post(port: int, review: dict, ca_pem: str) -> dict:
    ctx = ssl.create_default_context(cadata=ca_pem)
    ctx.check_hostname = False  # the cert names the Service, not 127.0.0.1
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}/",
        method="POST",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
        return json.loads(resp.read())
