"""The twin API server answers the official kubernetes client as a real one does.

Every check goes through the official ``kubernetes`` Python client over HTTPS
(the kubeconfig carries the server's CA and a bearer token): the same path the
harness and the MetalLB/Linkerd twins use.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig

_SEQ = itertools.count()


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A twin API server on loopback with an ephemeral port."""
    data = tmp_path_factory.mktemp("apiserver")
    server = ApiServer(ApiServerConfig(data, port=0, persist=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_client(
    apiserver: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> client.ApiClient:
    """An official client built from the kubeconfig the server wrote."""
    path = tmp_path_factory.mktemp("kc") / "kubeconfig"
    path.write_text(apiserver.kubeconfig())
    return config.new_client_from_config(config_file=str(path))


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test."""
    name = f"t{next(_SEQ)}-" + request.node.originalname.replace("_", "-")[5:40].strip(
        "-"
    )
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def _cm(
    name: str, labels: dict[str, str] | None = None, **data: str
) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data
    )


def _body(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_a_configmap_is_created_read_updated_patched_and_deleted(core, ns):
    made = core.create_namespaced_config_map(ns, _cm("one", a="1"))
    assert made.metadata.uid and made.metadata.creation_timestamp
    assert made.metadata.resource_version

    got = core.read_namespaced_config_map("one", ns)
    got.data["b"] = "2"
    updated = core.replace_namespaced_config_map("one", ns, got)
    assert updated.data == {"a": "1", "b": "2"}
    assert int(updated.metadata.resource_version) > int(made.metadata.resource_version)

    patched = core.patch_namespaced_config_map(
        "one", ns, {"data": {"a": None, "c": "3"}}
    )
    assert patched.data == {"b": "2", "c": "3"}

    core.delete_namespaced_config_map("one", ns)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("one", ns)
    assert err.value.status == 404


def test_a_missing_object_is_a_not_found_status(core, ns):
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("nope", ns)
    body = _body(err.value)
    assert err.value.status == 404
    assert body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["details"] == {"name": "nope", "group": "", "kind": "configmaps"}
    assert body["message"] == 'configmaps "nope" not found'


def test_creating_an_existing_name_is_already_exists(core, ns):
    core.create_namespaced_config_map(ns, _cm("dup"))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("dup"))
    assert err.value.status == 409
    assert _body(err.value)["reason"] == "AlreadyExists"


def test_an_update_with_a_stale_resource_version_is_a_conflict(core, ns):
    first = core.create_namespaced_config_map(ns, _cm("rv", v="1"))
    core.patch_namespaced_config_map("rv", ns, {"data": {"v": "2"}})
    first.data["v"] = "3"
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("rv", ns, first)
    assert err.value.status == 409
    body = _body(err.value)
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert core.read_namespaced_config_map("rv", ns).data == {"v": "2"}


def test_creating_in_a_missing_namespace_is_not_found(core):
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("does-not-exist", _cm("x"))
    assert err.value.status == 404
    assert _body(err.value)["details"]["kind"] == "namespaces"


def test_generate_name_makes_a_unique_name(core, ns):
    meta = client.V1ObjectMeta(generate_name="gen-")
    a = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta))
    b = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=meta))
    assert a.metadata.name.startswith("gen-") and len(a.metadata.name) > 4
    assert a.metadata.name != b.metadata.name


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"w1", "w2"}),
        ("app!=web", {"d1", "bare"}),
        ("app in (web,db)", {"w1", "w2", "d1"}),
        ("app notin (web)", {"d1", "bare"}),
        ("tier", {"w1", "d1"}),
        ("!tier", {"w2", "bare"}),
        ("app=web,tier=front", {"w1"}),
    ],
)
def test_label_selectors_select_as_the_api_server_does(core, ns, selector, expected):
    core.create_namespaced_config_map(ns, _cm("w1", {"app": "web", "tier": "front"}))
    core.create_namespaced_config_map(ns, _cm("w2", {"app": "web"}))
    core.create_namespaced_config_map(ns, _cm("d1", {"app": "db", "tier": "back"}))
    core.create_namespaced_config_map(ns, _cm("bare"))
    got = core.list_namespaced_config_map(ns, label_selector=selector).items
    assert {i.metadata.name for i in got} == expected


def test_field_selectors_filter_on_name_and_namespace(core, ns):
    core.create_namespaced_config_map(ns, _cm("f1"))
    core.create_namespaced_config_map(ns, _cm("f2"))
    got = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={ns},metadata.name!=f1"
    )
    assert [i.metadata.name for i in got.items] == ["f2"]


def test_a_watch_streams_added_modified_and_deleted(core, ns):
    seen: list[tuple[str, str]] = []
    start_rv = core.list_namespaced_config_map(ns).metadata.resource_version

    def writer() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(ns, _cm("w", v="1"))
        core.patch_namespaced_config_map("w", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("w", ns)

    threading.Thread(target=writer).start()
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map,
        ns,
        resource_version=start_rv,
        timeout_seconds=5,
    ):
        seen.append(
            (
                event["type"],
                event["object"].data.get("v") if event["object"].data else None,
            )
        )
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_a_watch_resumes_from_a_resource_version(core, ns):
    core.create_namespaced_config_map(ns, _cm("r1"))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, _cm("r2"))
    w = watch.Watch()
    names = [
        e["object"].metadata.name
        for e in w.stream(
            core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1
        )
    ]
    assert names == ["r2"]


def test_a_watch_with_a_selector_reports_an_object_leaving_it_as_deleted(core, ns):
    core.create_namespaced_config_map(ns, _cm("sel", {"keep": "yes"}))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map(
        "sel", ns, {"metadata": {"labels": {"keep": "no"}}}
    )
    w = watch.Watch()
    events = [
        e["type"]
        for e in w.stream(
            core.list_namespaced_config_map,
            ns,
            label_selector="keep=yes",
            resource_version=rv,
            timeout_seconds=1,
        )
    ]
    assert events == ["DELETED"]


def test_a_watch_without_a_resource_version_starts_with_the_current_objects(core, ns):
    core.create_namespaced_config_map(ns, _cm("c1"))
    w = watch.Watch()
    events = [
        (e["type"], e["object"].metadata.name)
        for e in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=1)
    ]
    assert events == [("ADDED", "c1")]


def _pod(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox",
                    "env": [{"name": "A", "value": "1"}],
                },
                {"name": "side", "image": "x"},
            ]
        },
    }


def test_a_strategic_merge_patch_merges_containers_by_name(core, ns):
    core.create_namespaced_pod(ns, _pod("smp"))
    patch = {"spec": {"containers": [{"name": "side", "image": "y"}]}}
    got = core.patch_namespaced_pod("smp", ns, patch)
    assert [(c.name, c.image) for c in got.spec.containers] == [
        ("app", "busybox"),
        ("side", "y"),
    ]


def test_a_json_patch_applies_its_operations_in_order(core, ns):
    core.create_namespaced_pod(ns, _pod("jp"))
    ops = [
        {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "alpine"},
        {"op": "remove", "path": "/spec/containers/1"},
    ]
    got = core.patch_namespaced_pod("jp", ns, ops)
    assert got.metadata.labels == {"a": "b"}
    assert [c.image for c in got.spec.containers] == ["alpine"]


def test_the_status_subresource_and_the_main_resource_update_apart(core, ns):
    core.create_namespaced_pod(ns, _pod("st"))
    core.patch_namespaced_pod_status("st", ns, {"status": {"phase": "Running"}})
    core.patch_namespaced_pod(
        "st", ns, {"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}}
    )
    got = core.read_namespaced_pod("st", ns)
    assert got.status.phase == "Running" and got.metadata.labels == {"x": "y"}
    assert core.list_namespaced_pod(ns, field_selector="status.phase=Running").items


def test_a_service_gets_a_cluster_ip_and_node_ports(core, ns):
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="lb"),
        spec=client.V1ServiceSpec(
            type="LoadBalancer",
            selector={"app": "x"},
            ports=[client.V1ServicePort(port=80)],
        ),
    )
    got = core.create_namespaced_service(ns, svc)
    assert got.spec.cluster_ip.startswith("10.43.")
    assert 30000 <= got.spec.ports[0].node_port <= 32767
    assert got.spec.ports[0].target_port == 80


def test_a_delete_answers_as_the_real_registries_do(core, ns):
    # Since Kubernetes 1.22 deleting a Service answers with the Service (the
    # client's delete_namespaced_service returns a V1Service); a ConfigMap's
    # delete answers with a Status whose details name it.
    core.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="gone"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)]),
        ),
    )
    deleted = core.delete_namespaced_service("gone", ns)
    assert isinstance(deleted, client.V1Service)
    assert deleted.metadata.name == "gone" and deleted.spec.cluster_ip

    core.create_namespaced_config_map(ns, _cm("gone-too", a="1"))
    # (this client declares that answer as a plain object: it arrives as a dict)
    status = core.delete_namespaced_config_map("gone-too", ns)
    assert (status["kind"], status["status"]) == ("Status", "Success")
    assert status["details"]["name"] == "gone-too"


def test_a_bad_token_is_unauthorized(apiserver, tmp_path):
    cfg = client.Configuration()
    cfg.host = apiserver.url
    cfg.ssl_ca_cert = str(apiserver.tls_dir / "server-ca.crt")
    cfg.api_key = {"authorization": "Bearer wrong"}
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(cfg)).list_namespace()
    assert err.value.status == 401


def test_the_server_certificate_is_checked_against_the_kubeconfig_ca(
    apiserver, tmp_path
):
    cfg = client.Configuration()
    cfg.host = apiserver.url
    cfg.api_key = {"authorization": "Bearer " + apiserver.admin_token}
    cfg.retries = 0
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        client.CoreV1Api(client.ApiClient(cfg)).list_namespace()


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "ipaddresspools.metallb.io"},
    "spec": {
        "group": "metallb.io",
        "names": {
            "kind": "IPAddressPool",
            "listKind": "IPAddressPoolList",
            "plural": "ipaddresspools",
            "singular": "ipaddresspool",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
                "subresources": {"status": {}},
            }
        ],
    },
}


def test_a_crd_registers_its_resource_for_custom_objects_and_discovery(api_client, ns):
    ext = client.ApiextensionsV1Api(api_client)
    made = ext.create_custom_resource_definition(CRD)
    assert made.status.accepted_names.kind == "IPAddressPool"
    groups = [g.name for g in client.ApisApi(api_client).get_api_versions().groups]
    assert "metallb.io" in groups

    custom = client.CustomObjectsApi(api_client)
    pool = {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": "p"},
        "spec": {"addresses": ["198.19.0.200-198.19.0.220"]},
    }
    custom.create_namespaced_custom_object(
        "metallb.io", "v1beta1", ns, "ipaddresspools", pool
    )
    listed = custom.list_namespaced_custom_object(
        "metallb.io", "v1beta1", ns, "ipaddresspools"
    )
    assert [i["spec"]["addresses"] for i in listed["items"]] == [
        ["198.19.0.200-198.19.0.220"]
    ]

    dyn = dynamic.DynamicClient(api_client)
    res = dyn.resources.get(api_version="metallb.io/v1beta1", kind="IPAddressPool")
    assert res.namespaced
    assert [i.metadata.name for i in res.get(namespace=ns).items] == ["p"]

    ext.delete_custom_resource_definition("ipaddresspools.metallb.io")
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object(
            "metallb.io", "v1beta1", ns, "ipaddresspools"
        )
    assert err.value.status == 404


def test_a_cluster_scoped_crd_serves_objects_without_a_namespace(api_client):
    crd = json.loads(json.dumps(CRD))
    crd["metadata"]["name"] = "widgets.example.io"
    crd["spec"].update(
        group="example.io",
        scope="Cluster",
        names={"kind": "Widget", "plural": "widgets"},
    )
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    custom = client.CustomObjectsApi(api_client)
    custom.create_cluster_custom_object(
        "example.io",
        "v1beta1",
        "widgets",
        {
            "apiVersion": "example.io/v1beta1",
            "kind": "Widget",
            "metadata": {"name": "w"},
        },
    )
    got = custom.get_cluster_custom_object("example.io", "v1beta1", "widgets", "w")
    assert got["metadata"]["name"] == "w" and "namespace" not in got["metadata"]
    dyn = dynamic.DynamicClient(api_client)
    assert (
        dyn.resources.get(api_version="example.io/v1beta1", kind="Widget").namespaced
        is False
    )


def _gone(read, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read()
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.05)
    return False


def test_deleting_a_namespace_removes_its_objects_once_their_finalizers_clear(core, ns):
    held = _cm("held")
    held.metadata.finalizers = ["example.com/hold"]
    core.create_namespaced_config_map(ns, held)
    core.create_namespaced_config_map(ns, _cm("free"))

    deleted = json.loads(core.delete_namespace(ns, _preload_content=False).data)
    assert deleted["status"]["phase"] == "Terminating"
    assert _gone(lambda: core.read_namespaced_config_map("free", ns))
    assert core.read_namespaced_config_map("held", ns).metadata.deletion_timestamp
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, _cm("late"))
    assert err.value.status == 403
    assert core.read_namespace(ns).status.phase == "Terminating"

    core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    assert _gone(lambda: core.read_namespace(ns)), (
        f"namespace {ns} outlived its content"
    )


def test_delete_collection_removes_only_the_selected_objects(core, ns):
    for name, tier in (("d1", "a"), ("d2", "a"), ("d3", "b")):
        core.create_namespaced_config_map(ns, _cm(name, {"tier": tier}))
    core.delete_collection_namespaced_config_map(ns, label_selector="tier=a")
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == [
        "d3"
    ]


def test_a_restarted_server_keeps_its_objects_and_custom_resources(tmp_path):
    def start() -> tuple[ApiServer, client.ApiClient]:
        server = ApiServer(ApiServerConfig(tmp_path, port=0, controllers=None))
        server.start()
        (tmp_path / "kc").write_text(server.kubeconfig())
        return server, config.new_client_from_config(config_file=str(tmp_path / "kc"))

    server, api = start()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)
    made = client.CoreV1Api(api).create_namespaced_config_map("default", _cm("kept"))
    server.stop()

    server, api = start()
    try:
        got = client.CoreV1Api(api).read_namespaced_config_map("kept", "default")
        assert got.metadata.uid == made.metadata.uid
        newer = client.CoreV1Api(api).create_namespaced_config_map("default", _cm("n"))
        assert int(newer.metadata.resource_version) > int(
            made.metadata.resource_version
        )
        custom = client.CustomObjectsApi(api)
        listed = custom.list_namespaced_custom_object(
            "metallb.io", "v1beta1", "default", "ipaddresspools"
        )
        assert listed["items"] == []
    finally:
        server.stop()


def test_a_watch_from_a_compacted_resource_version_is_gone(tmp_path):
    server = ApiServer(
        ApiServerConfig(
            tmp_path, port=0, persist=False, controllers=None, watch_history=20
        )
    )
    server.start()
    try:
        (tmp_path / "kc").write_text(server.kubeconfig())
        core = client.CoreV1Api(
            config.new_client_from_config(config_file=str(tmp_path / "kc"))
        )
        old = core.list_namespaced_config_map("default").metadata.resource_version
        for i in range(30):
            core.create_namespaced_config_map("default", _cm(f"g{i}"))
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=old,
                timeout_seconds=2,
            ):
                pass
        assert err.value.status == 410
        assert "too old resource version" in str(err.value.reason)
    finally:
        server.stop()
