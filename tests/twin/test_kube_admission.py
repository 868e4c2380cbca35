"""The twin API server sends AdmissionReview v1 to webhooks, as kube-apiserver does."""

from __future__ import annotations

import base64
import itertools
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from meshstack.twin.kube import tls
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig

_SEQ = itertools.count()


class _Hook(BaseHTTPRequestHandler):
    """Mutates: adds label mutated=yes. Validates: denies objects labelled deny."""

    reviews: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hook.reviews.append(review)
        req = review["request"]
        resp: dict = {"uid": req["uid"], "allowed": True}
        labels = (req.get("object") or {}).get("metadata", {}).get("labels") or {}
        if self.path.startswith("/mutate"):
            ops = [
                {
                    "op": "add",
                    "path": "/metadata/labels",
                    "value": {**labels, "mutated": "yes"},
                }
            ]
            resp.update(
                patchType="JSONPatch",
                patch=base64.b64encode(json.dumps(ops).encode()).decode(),
            )
        elif labels.get("deny"):
            resp.update(allowed=False, status={"code": 403, "message": "labelled deny"})
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": resp,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """An API server and an HTTPS webhook server on loopback."""
    server = ApiServer(
        ApiServerConfig(tmp_path_factory.mktemp("api"), port=0, persist=False)
    )
    server.start()
    kc = tmp_path_factory.mktemp("kc") / "kubeconfig"
    kc.write_text(server.kubeconfig())
    hook_dir = tmp_path_factory.mktemp("hook")
    crt, key = tls.issue_serving(hook_dir, ["hook.hooks.svc"], "hook")
    httpd = HTTPServer(("127.0.0.1", 0), _Hook)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = config.new_client_from_config(config_file=str(kc))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "hooks"}})
    core.create_namespaced_service(
        "hooks",
        {
            "metadata": {"name": "hook"},
            "spec": {"ports": [{"name": "https", "port": 443}]},
        },
    )
    ca = base64.b64encode((hook_dir / "server-ca.crt").read_bytes()).decode()
    yield {"api": api, "core": core, "ca": ca, "port": httpd.server_address[1]}
    httpd.shutdown()
    server.stop()


def _endpoints(core: client.CoreV1Api, port: int | None) -> None:
    subsets = (
        [
            {
                "addresses": [{"ip": "127.0.0.1"}],
                "ports": [{"name": "https", "port": port}],
            }
        ]
        if port
        else []
    )
    body = {"metadata": {"name": "hook", "namespace": "hooks"}, "subsets": subsets}
    try:
        core.replace_namespaced_endpoints("hook", "hooks", body)
    except ApiException:
        core.create_namespaced_endpoints("hooks", body)


def _config(
    env: dict, kind: str, path: str, policy: str = "Fail", ca: str | None = None
) -> str:
    name = f"cfg{next(_SEQ)}"
    hook = {
        "name": f"{name}.example.io",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": policy,
        "clientConfig": {
            "service": {"namespace": "hooks", "name": "hook", "path": path},
            "caBundle": ca or env["ca"],
        },
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
            }
        ],
        "namespaceSelector": {"matchLabels": {"hooked": name}},
    }
    reg = client.AdmissionregistrationV1Api(env["api"])
    body = {"metadata": {"name": name}, "webhooks": [hook]}
    if kind == "mutating":
        reg.create_mutating_webhook_configuration(body)
    else:
        reg.create_validating_webhook_configuration(body)
    env["core"].create_namespace(
        {"metadata": {"name": name, "labels": {"hooked": name}}}
    )
    return name


def _cm(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_a_mutating_webhook_patches_the_object_before_it_is_stored(env):
    _endpoints(env["core"], env["port"])
    ns = _config(env, "mutating", "/mutate")
    made = env["core"].create_namespaced_config_map(ns, _cm("m"))
    assert made.metadata.labels == {"mutated": "yes"}
    review = _Hook.reviews[-1]
    assert (
        review["apiVersion"] == "admission.k8s.io/v1"
        and review["kind"] == "AdmissionReview"
    )
    assert review["request"]["operation"] == "CREATE"
    assert review["request"]["resource"] == {
        "group": "",
        "version": "v1",
        "resource": "configmaps",
    }


def test_a_validating_webhook_denial_is_returned_with_its_message(env):
    _endpoints(env["core"], env["port"])
    ns = _config(env, "validating", "/validate")
    env["core"].create_namespaced_config_map(ns, _cm("ok"))
    with pytest.raises(ApiException) as err:
        env["core"].create_namespaced_config_map(ns, _cm("no", {"deny": "1"}))
    assert err.value.status == 403
    assert (
        f'admission webhook "{ns}.example.io" denied the request: labelled deny'
        in json.loads(err.value.body)["message"]
    )


def test_a_webhook_without_endpoints_fails_the_request_under_failure_policy_fail(env):
    _endpoints(env["core"], None)
    ns = _config(env, "validating", "/validate")
    with pytest.raises(ApiException) as err:
        env["core"].create_namespaced_config_map(ns, _cm("x"))
    assert err.value.status == 500
    message = json.loads(err.value.body)["message"]
    assert message.startswith(
        f'Internal error occurred: failed calling webhook "{ns}.example.io": '
        'failed to call webhook: Post "https://hook.hooks.svc:443/validate?timeout=10s"'
    )
    assert message.endswith('no endpoints available for service "hook"')


def test_a_refused_webhook_is_reported_as_connection_refused(env):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    _endpoints(env["core"], closed)
    ns = _config(env, "validating", "/validate")
    with pytest.raises(ApiException) as err:
        env["core"].create_namespaced_config_map(ns, _cm("x"))
    assert (
        f"dial tcp 127.0.0.1:{closed}: connect: connection refused"
        in json.loads(err.value.body)["message"]
    )


def test_a_failing_webhook_is_skipped_under_failure_policy_ignore(env):
    _endpoints(env["core"], None)
    ns = _config(env, "validating", "/validate", policy="Ignore")
    assert env["core"].create_namespaced_config_map(ns, _cm("x")).metadata.name == "x"


def test_a_webhook_whose_certificate_the_ca_bundle_does_not_sign_is_refused(
    env, tmp_path
):
    _endpoints(env["core"], env["port"])
    tls.ensure_ca(tmp_path)
    other = base64.b64encode((tmp_path / "server-ca.crt").read_bytes()).decode()
    ns = _config(env, "validating", "/validate", ca=other)
    with pytest.raises(ApiException) as err:
        env["core"].create_namespaced_config_map(ns, _cm("x"))
    assert (
        "x509: certificate signed by unknown authority"
        in json.loads(err.value.body)["message"]
    )


def test_webhooks_do_not_see_namespaces_their_selector_excludes(env):
    _endpoints(env["core"], None)
    _config(env, "validating", "/validate")
    env["core"].create_namespace({"metadata": {"name": "unhooked"}})
    assert (
        env["core"].create_namespaced_config_map("unhooked", _cm("x")).metadata.name
        == "x"
    )
