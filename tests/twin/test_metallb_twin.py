"""The MetalLB twin allocates, validates and elects as MetalLB does (C09, C10).

Pure rules are checked directly; the controller is run against the twin API server
through the official client, and its webhook process is called by the twin API
server's real admission path (including the refusal right after start that makes
"failed calling webhook ... connection refused" happen for real).
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.providers.kube_apply import KubeClient, objects_yaml
from meshstack.twin import metallb as m
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.kube.controllers import ControllerOptions
from meshstack.twin.metallb_controller import Controller, _review
from tests.twin.metallb_support import metallb_controller

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "stacks" / "local" / "metallb" / "metallb-native.yaml"
NS = "metallb-system"


def _svc(name: str, notes: dict | None = None, ip: str | None = None) -> dict:
    spec: dict = {"type": "LoadBalancer", "ports": [{"port": 80}]}
    if ip:
        spec["loadBalancerIP"] = ip
    return {
        "metadata": {"name": name, "namespace": "default", "annotations": notes or {}},
        "spec": spec,
    }


# --- pure rules --------------------------------------------------------------------


def test_ranges_and_cidrs_cover_the_addresses_they_name():
    pool = m.Pool("p", ["198.19.0.200-198.19.0.202", "10.0.0.0/30"])

    assert list(pool.addresses()) == [
        "198.19.0.200",
        "198.19.0.201",
        "198.19.0.202",
        "10.0.0.0",
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]
    assert pool.contains("10.0.0.3") and not pool.contains("198.19.0.203")
    with pytest.raises(ValueError):
        m.span("198.19.0.9-198.19.0.1")


def test_allocation_honours_requests_pools_and_auto_assign():
    pools = [
        m.Pool("manual", ["198.19.0.230-198.19.0.231"], auto_assign=False),
        m.Pool("auto", ["198.19.0.200-198.19.0.201"]),
    ]

    assert m.allocate(_svc("a"), pools, set()) == ("198.19.0.200", "")
    assert m.allocate(_svc("b"), pools, {"198.19.0.200"}) == ("198.19.0.201", "")
    assert m.allocate(_svc("c"), pools, {"198.19.0.200", "198.19.0.201"}) == (
        None,
        "no available IPs",
    )
    named = _svc("d", {"metallb.universe.tf/address-pool": "manual"})
    assert m.allocate(named, pools, set()) == ("198.19.0.230", "")
    wanted = _svc("e", {"metallb.universe.tf/loadBalancerIPs": "198.19.0.231"})
    assert m.allocate(wanted, pools, set()) == ("198.19.0.231", "")
    assert m.allocate(_svc("f", ip="192.0.2.1"), pools, set()) == (
        None,
        '["192.0.2.1"] is not allowed in config',
    )


def test_overlapping_pools_get_the_webhooks_complaint():
    a = m.Pool("a", ["198.19.0.200/29"])
    b = m.Pool("b", ["198.19.0.205-198.19.0.210"])

    assert m.overlaps(b, [a]) == (
        'CIDR "198.19.0.205-198.19.0.210" in pool "b" overlaps with already defined '
        'CIDR "198.19.0.200/29"'
    )
    assert m.overlaps(m.Pool("c", ["198.19.0.220/32"]), [a, b]) is None


def test_an_advertisement_selects_pools_by_name_by_label_or_all():
    pool = m.Pool("primary", ["198.19.0.200/29"], labels={"tier": "edge"})

    assert m.selects({"spec": {}}, pool)
    assert m.selects({"spec": {"ipAddressPools": ["primary"]}}, pool)
    assert not m.selects({"spec": {"ipAddressPools": ["other"]}}, pool)
    by_label = {"ipAddressPoolSelectors": [{"matchLabels": {"tier": "edge"}}]}
    assert m.selects({"spec": by_label}, pool)
    sel = {
        "nodeSelectors": [
            {
                "matchExpressions": [
                    {"key": "role", "operator": "In", "values": ["edge"]}
                ]
            }
        ]
    }
    assert m.node_allowed({"spec": sel}, {"role": "edge"})
    assert not m.node_allowed({"spec": sel}, {"role": "core"})


def test_the_election_is_stable_and_spreads_addresses_over_nodes():
    nodes = ["node-a", "node-b", "node-c"]
    ips = [f"198.19.0.{i}" for i in range(200, 260)]

    first = [m.elect(ip, nodes) for ip in ips]

    assert first == [m.elect(ip, list(reversed(nodes))) for ip in ips]
    assert set(Counter(first)) == set(nodes)
    assert m.elect("198.19.0.200", []) is None


def test_the_image_tag_decides_between_crds_and_the_configmap():
    assert m.reads_crds("v0.14.5") and m.reads_crds("v0.13.0")
    assert not m.reads_crds("v0.12.1")


# --- the controller against the twin API server ----------------------------------


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeClient]:
    """A twin API server holding MetalLB's namespace and CRDs (k3s servicelb off)."""
    cfg = ApiServerConfig(
        tmp_path / "api",
        port=0,
        persist=False,
        controllers=ControllerOptions(servicelb=False),
    )
    server = ApiServer(cfg)
    server.start()
    path = tmp_path / "kubeconfig"
    path.write_text(server.kubeconfig())
    k = KubeClient.from_file(str(path))
    k.path = str(path)  # type: ignore[attr-defined]
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc and doc["kind"] in ("Namespace", "CustomResourceDefinition"):
            k.apply(doc)
    yield k
    server.stop()


def _pool(k: KubeClient, name: str, addresses: list[str]) -> None:
    k.apply(
        {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"addresses": addresses},
        }
    )


def _legacy(k: KubeClient, addresses: list[str]) -> None:
    config = yaml.safe_dump(
        {
            "address-pools": [
                {"name": "default", "protocol": "layer2", "addresses": addresses}
            ]
        }
    )
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "config", "namespace": NS},
            "data": {"config": config},
        }
    )


def _lb_service(k: KubeClient, name: str = "web") -> None:
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]},
        }
    )


def _ingress(k: KubeClient, name: str = "web") -> str | None:
    svc = client.CoreV1Api(k.api).read_namespaced_service(name, "default")
    lb = svc.status.load_balancer
    return lb.ingress[0].ip if lb and lb.ingress else None


def _events(k: KubeClient) -> list[tuple[str, str]]:
    items = client.CoreV1Api(k.api).list_namespaced_event("default").items
    return [
        (e.reason, e.message)
        for e in items
        if e.source.component == "metallb-controller"
    ]


def test_a_0_14_controller_assigns_from_an_ipaddresspool(kube):
    _pool(kube, "default", ["198.19.0.200-198.19.0.220"])
    _lb_service(kube)

    Controller(kube.api, "v0.14.5").reconcile()

    assert _ingress(kube) == "198.19.0.200"
    assert ("IPAllocated", 'Assigned IP ["198.19.0.200"]') in _events(kube)


def test_a_0_14_controller_ignores_the_legacy_configmap_c09(kube):
    _legacy(kube, ["198.19.0.200-198.19.0.220"])
    _lb_service(kube)

    Controller(kube.api, "v0.14.5").reconcile()

    assert _ingress(kube) is None
    assert (
        "AllocationFailed",
        'Failed to allocate IP for "default/web": no available IPs',
    ) in _events(kube)
    objs = [
        client.ApiClient().sanitize_for_serialization(o)
        for o in (
            client.CoreV1Api(kube.api).read_namespaced_config_map("config", NS),
            client.CoreV1Api(kube.api).read_namespaced_service("web", "default"),
        )
    ]
    objs[0].update(kind="ConfigMap", apiVersion="v1")
    objs[1].update(kind="Service", apiVersion="v1")
    finding = analyzers.get("metallb-config").judge(
        Evidence(objects_yaml(objs), "twin objects"), Context(metallb_version="v0.14.5")
    )
    assert "legacy_configmap_ignored" in finding.reasons
    assert "ip_pending" in finding.reasons


def test_a_0_12_controller_reads_only_the_configmap(kube):
    _legacy(kube, ["198.19.0.210/32"])
    _lb_service(kube)

    Controller(kube.api, "v0.12.1").reconcile()

    assert _ingress(kube) == "198.19.0.210"


def test_an_address_already_held_is_kept_across_reconciles(kube):
    _pool(kube, "default", ["198.19.0.200-198.19.0.201"])
    _lb_service(kube, "one")
    ctl = Controller(kube.api, "v0.14.5")
    ctl.reconcile()
    _lb_service(kube, "two")

    ctl.reconcile()

    assert (_ingress(kube, "one"), _ingress(kube, "two")) == (
        "198.19.0.200",
        "198.19.0.201",
    )


def test_the_webhook_rejects_an_overlapping_pool_in_an_admission_review(kube):
    _pool(kube, "first", ["198.19.0.200/29"])
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "object": {
                "apiVersion": "metallb.io/v1beta1",
                "kind": "IPAddressPool",
                "metadata": {"name": "second", "namespace": NS},
                "spec": {"addresses": ["198.19.0.204-198.19.0.209"]},
            },
        },
    }

    answer = _review(kube.api, "v0.14.5", review)

    assert answer["response"]["uid"] == "u-1"
    assert answer["response"]["allowed"] is False
    assert "overlaps with already defined" in answer["response"]["status"]["message"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _webhook_route(k: KubeClient, port: int) -> None:
    """The webhook Service with its endpoint where the test runs the controller."""
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc and doc["kind"] == "ValidatingWebhookConfiguration":
            k.apply(doc)
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metallb-webhook-service", "namespace": NS},
            "spec": {"ports": [{"port": 443, "targetPort": 9443}]},
        }
    )
    k.apply(
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "metallb-webhook-service", "namespace": NS},
            "subsets": [
                {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": port}]}
            ],
        }
    )


def test_the_webhook_refuses_right_after_start_then_judges_pools(kube, tmp_path):
    port = _free_port()
    _webhook_route(kube, port)
    with metallb_controller(kube.path, port, "v0.14.5", tmp_path / "controller.log"):
        early = _try_pool(kube, "first", ["198.19.0.200/29"])
        deadline = time.monotonic() + 30
        while early is not None and time.monotonic() < deadline:
            time.sleep(0.5)
            early_retry = _try_pool(kube, "first", ["198.19.0.200/29"])
            if early_retry is None:
                break
        overlap = _try_pool(kube, "second", ["198.19.0.204-198.19.0.209"])
    assert early is not None and "connection refused" in early, early
    judged = analyzers.get("kube-apply-error").judge(
        Evidence(early, "early"), Context()
    )
    assert "webhook_unavailable" in judged.reasons
    assert judged.details.get("transient") is True
    assert overlap is not None and "denied the request" in overlap, overlap
    assert "overlaps with already defined CIDR" in overlap
    assert "198.19.0.200/29" in overlap


def _try_pool(k: KubeClient, name: str, addresses: list[str]) -> str | None:
    try:
        _pool(k, name, addresses)
        return None
    except client.ApiException as exc:
        return f"({exc.status})\nReason: {exc.reason}\nHTTP response body: {exc.body}"


def test_unknown_roles_exit_2():
    assert m.main(["dancer"]) == 2


def _speaker(node: str, iface: str):
    from meshstack.twin.metallb_speaker import Speaker

    s = object.__new__(Speaker)  # only the election inputs matter here
    s.node, s.iface, s.tag = node, iface, "v0.14.8"
    return s


def test_node_selectors_narrow_the_election_and_interfaces_only_the_winner():
    pool = m.Pool("p", ["198.19.0.200/32"])
    speakers = {"n1": {"zone": "a"}, "n2": {"zone": "b"}}
    by_zone = {"spec": {"nodeSelectors": [{"matchLabels": {"zone": "b"}}]}}
    by_iface = {"spec": {"interfaces": ["eth9"]}}

    assert _speaker("n1", "zt1")._eligible(pool, [by_zone], speakers) == {"n2"}
    # every speaker must elect the same node: interfaces do not narrow the election
    assert _speaker("n1", "zt1")._eligible(pool, [by_iface], speakers) == {"n1", "n2"}
    assert not _speaker("n1", "zt1")._interface_allowed(pool, [by_iface])
    assert _speaker("n1", "eth9")._interface_allowed(pool, [by_iface])
    assert _speaker("n1", "zt1")._eligible(pool, [], speakers) is None
    assert _speaker("n1", "zt1")._eligible(pool, None, speakers) == {"n1", "n2"}


def test_the_controller_waits_for_a_change_instead_of_spinning(kube, monkeypatch):
    # A watch opened without a resourceVersion first replays every Service as
    # ADDED; a controller that watched so would wake at once, for ever, and take a
    # core of the machine. It must watch from the version it listed.
    import threading

    _pool(kube, "default", ["198.19.0.200-198.19.0.220"])
    _lb_service(kube)
    ctl = Controller(kube.api, "v0.14.5")
    reconciles = 0
    plain_reconcile = ctl.reconcile

    def counted() -> str:
        nonlocal reconciles
        reconciles += 1
        return plain_reconcile()

    monkeypatch.setattr(ctl, "reconcile", counted)
    stop = threading.Event()
    runner = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    runner.start()
    time.sleep(3 * m.RESYNC_INTERVAL)
    stop.set()
    runner.join(timeout=3 * m.RESYNC_INTERVAL)

    assert _ingress(kube) == "198.19.0.200"
    # one start, one wake for its own status write, then one resync per interval
    assert 2 <= reconciles <= 6, reconciles


def test_the_speaker_wakes_on_a_service_change(kube):
    import threading

    from meshstack.twin.metallb_speaker import Speaker

    _lb_service(kube, "one")  # a watch without a version would replay it at once
    speaker = Speaker(kube.api, "v0.14.5", "n1", "eth0")
    speaker.services_version = str(
        client.CoreV1Api(kube.api)
        .list_service_for_all_namespaces()
        .metadata.resource_version
    )
    quiet = threading.Thread(target=speaker._await_service_change, args=(1.0,))
    quiet.start()
    quiet.join(timeout=0.5)
    assert quiet.is_alive()  # nothing changed: still waiting
    quiet.join()

    woken = threading.Thread(target=speaker._await_service_change, args=(60.0,))
    woken.start()
    _lb_service(kube, "two")
    woken.join(timeout=30)
    assert not woken.is_alive()  # ended by the change, long before its 60 s
