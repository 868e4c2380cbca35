"""Self-tests of the ``kube-output`` analyzer.

Fixtures in data/kube-output/: ``c08-svclb-pending.txt`` re-types case C08's artifact
(k3s-io/k3s#1969, carlosedp/kubernetes-arm#5: a grep'd pod list without its header,
a describe ``Events:`` block without the Age column, a pending Service);
``c13-nodes-wide-vpc-address.txt`` and ``c13-endpoints-kubernetes.txt`` carry case
C13's condition (k3s-io/k3s#2087: a node and an API endpoint on the cloud VPC
192.0.2.0/24 instead of the ZeroTier 198.51.100.0/24) in ``kubectl get -o wide`` and
``get endpoints`` form. Other files are other layouts (``-A``, ``-o wide``, events
tables, describe output, kubectl 1.19's table), truncated copies and healthy
counterparts, typed in kubectl's own formats.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import kube_output as ko
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "kube-output"
ZT = "198.51.100.0/24"


def judge(name: str, **ctx: object) -> Finding:
    return ko.judge(Evidence.from_path(HERE / name), Context(**ctx))  # type: ignore[arg-type]


# --- C08 ----------------------------------------------------------------------------


def test_c08_pending_svclb_without_free_ports_is_servicelb_beside_metallb() -> None:
    f = judge("c08-svclb-pending.txt")

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["k3s_servicelb_active_with_metallb", "ip_pending"]
    assert f.details["svclb"] == ["svclb-traefik-ext-7d9f4"]


def test_c08_pending_address_carries_the_schedulers_reason() -> None:
    f = judge("c08-svclb-pending.txt")

    why = f.details["pending_reasons"]["web"]
    assert len(why) == 1
    assert why[0].startswith("FailedScheduling: 0/5 nodes are available")
    assert "didn't have free ports" in why[0]
    assert any(h.startswith("web is pending: FailedScheduling") for h in f.hints)


def test_c08_truncated_before_the_service_still_fails() -> None:
    f = judge("c08-svclb-pending-truncated.txt")

    assert f.reasons == ["k3s_servicelb_active_with_metallb"]


def test_c08_running_svclb_pods_beside_metallb_system_fail() -> None:
    f = judge("c08-pods-all-namespaces.txt")

    assert (f.layer, f.reasons) == ("lb", ["k3s_servicelb_active_with_metallb"])
    assert f.details["svclb"] == [
        "svclb-web-5f7c2b1e-4xk9p",
        "svclb-web-5f7c2b1e-r8t2m",
    ]


def test_c08_svclb_daemonset_fails_when_metallb_is_known_from_context() -> None:
    f = judge("c08-daemonsets.txt", metallb_version="0.13.10")

    assert f.reasons == ["k3s_servicelb_active_with_metallb"]
    assert f.details["svclb"] == ["svclb-traefik-a1b2"]


def test_c08_svclb_daemonset_without_metallb_is_only_a_hint() -> None:
    f = judge("c08-daemonsets.txt")

    assert f.verdict is Verdict.PASS
    assert any("servicelb" in h for h in f.hints)


def test_c08_a_described_svclb_pod_that_cannot_get_its_ports_fails() -> None:
    f = judge("c08-describe-svclb-pod.txt")

    assert (f.layer, f.reasons) == ("lb", ["k3s_servicelb_active_with_metallb"])
    assert f.details["svclb"] == ["svclb-traefik-ext-7d9f4"]
    assert "didn't have free ports" in f.evidence[-1]


def test_c08_healthy_cluster_with_an_assigned_address_passes() -> None:
    f = judge("c08-healthy.txt")

    assert (f.layer, f.verdict) == ("lb", Verdict.PASS)
    assert f.details["counts"] == {"pods": 5, "services": 2}


# --- pending addresses and their reasons --------------------------------------------


@pytest.mark.parametrize(
    "name", ["svc-pending-allocation-failed.txt", "svc-pending-events-table.txt"]
)
def test_a_pending_address_carries_metallbs_allocation_failure(name: str) -> None:
    f = judge(name)

    assert (f.layer, f.reasons) == ("lb", ["ip_pending"])
    [(svc, why)] = f.details["pending_reasons"].items()
    assert svc in ("web", "default/web")
    assert why == [
        'AllocationFailed: Failed to allocate IP for "default/web": no available IPs'
    ]


def test_pending_services_are_named_with_their_namespace_when_shown() -> None:
    f = judge("svc-pending-events-table.txt")

    assert f.details["pending"] == ["default/web"]


def test_a_pending_address_with_no_reason_in_the_artifact_says_so() -> None:
    text = "\n".join((HERE / "c08-svclb-pending.txt").read_text().splitlines()[-3:])
    f = ko.judge(Evidence(text), Context())

    assert f.reasons == ["ip_pending"]
    assert f.details["pending_reasons"] == {"web": []}
    assert any("nothing here says why" in h for h in f.hints)


# --- C13 and cluster health ---------------------------------------------------------


def test_c13_node_internal_ip_off_the_overlay_fails() -> None:
    f = judge("c13-nodes-wide-vpc-address.txt", overlay_cidr=ZT)

    assert (f.layer, f.verdict) == ("cluster", Verdict.FAIL)
    assert f.reasons == ["node_ip_not_on_overlay"]
    assert f.details["off_overlay"] == {"node-2": "192.0.2.31"}


def test_c13_nodes_all_on_the_overlay_pass() -> None:
    f = judge("c13-nodes-wide-on-overlay.txt", overlay_cidr=ZT)

    assert f.verdict is Verdict.PASS
    assert f.details["counts"] == {"nodes": 3}


def test_c13_without_an_overlay_cidr_says_it_could_not_judge() -> None:
    f = judge("c13-nodes-wide-vpc-address.txt")

    assert f.verdict is Verdict.PASS
    assert any("--overlay-cidr" in h for h in f.hints)


def test_c13_kubernetes_endpoint_off_the_overlay_fails() -> None:
    f = judge("c13-endpoints-kubernetes.txt", overlay_cidr=ZT)

    assert f.reasons == ["node_ip_not_on_overlay"]
    assert list(f.details["off_overlay"].values()) == ["192.0.2.10"]


def test_not_ready_nodes_are_named_and_cordoned_ready_nodes_are_not() -> None:
    f = judge("nodes-not-ready-old-kubectl.txt")

    assert (f.layer, f.reasons) == ("cluster", ["node_not_ready"])
    assert f.details["nodes"] == ["node-2"]


def test_system_pods_crashing_or_unready_fail_and_completed_jobs_do_not() -> None:
    f = judge("system-pods-crashloop.txt")

    assert (f.layer, f.reasons) == ("cluster", ["system_pods_not_ready"])
    assert f.details["pods"] == [
        "coredns-77ccd57875-x2v8k",
        "metrics-server-648b5df564-bqn9s",
    ]


def test_system_pods_truncated_mid_row_still_fail_on_the_rows_kept() -> None:
    f = judge("system-pods-crashloop-truncated.txt")

    assert f.reasons == ["system_pods_not_ready"]
    assert f.details["pods"] == ["coredns-77ccd57875-x2v8k"]


def test_k3s_system_pods_are_known_without_a_namespace_column_or_prompt() -> None:
    text = (HERE / "system-pods-crashloop.txt").read_text().split("\n", 1)[1]
    f = ko.judge(Evidence(text), Context())

    assert f.reasons == ["system_pods_not_ready"]
    assert f.details["pods"][0] == "coredns-77ccd57875-x2v8k"


def test_the_lowest_failing_layer_names_the_finding() -> None:
    text = (
        (HERE / "nodes-not-ready-old-kubectl.txt").read_text()
        + "\n"
        + (HERE / "svc-pending-allocation-failed.txt").read_text()
    )
    f = ko.judge(Evidence(text), Context())

    assert f.layer == "cluster"
    assert f.reasons == ["node_not_ready", "ip_pending"]


def test_app_pods_not_ready_are_left_to_the_mesh_and_apps_layers() -> None:
    text = (
        "NAMESPACE   NAME                     READY   STATUS    RESTARTS   AGE\n"
        "emojivoto   web-5d7b9c7b6d-2xk9p     1/2     Running   0          5m\n"
    )
    f = ko.judge(Evidence(text), Context())

    # Nothing here is this analyzer's to judge, so it claims nothing: not a PASS.
    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])
    assert f.details["counts"] == {"pods": 1}


# --- parsing ------------------------------------------------------------------------


def test_columns_are_found_by_header_name_in_any_order() -> None:
    text = (
        "STATUS     NAME     VERSION        ROLES    AGE\n"
        "NotReady   node-9   v1.27.4+k3s1   <none>   3d\n"
    )
    f = ko.judge(Evidence(text), Context())

    assert f.details["nodes"] == ["node-9"]


def test_multi_word_cells_are_read_by_position_in_aligned_output() -> None:
    parsed = ko.parse((HERE / "c13-nodes-wide-vpc-address.txt").read_text())

    assert parsed.rows[0].cells["OS-IMAGE"] == "Ubuntu 22.04.3 LTS"
    assert parsed.rows[0].cells["CONTAINER-RUNTIME"] == "containerd://1.7.1-k3s1"


# --- detection and robustness -------------------------------------------------------

FOREIGN = {
    "linkerd check": "kubernetes-api\n--------------\n√ can initialize the client\n",
    "linkerd viz stat": (
        "NAME    MESHED   SUCCESS   RPS   LATENCY_P50   LATENCY_P95   LATENCY_P99\n"
        "web        1/1   100.00%   2.0rps   1ms   2ms   3ms\n"
    ),
    "locust csv": "Type,Name,Request Count\nGET,/api/list,600\n",
    "zerotier member json": '{"id": "8056c2e21c", "config": {"authorized": true}}',
    "deployments only": (
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n"
        "web    1/1     1            1           5m\n"
    ),
}


@pytest.mark.parametrize("text", FOREIGN.values(), ids=list(FOREIGN))
def test_other_inputs_score_zero(text: str) -> None:
    assert ko.detect(Evidence(text)) == 0.0


def test_foreign_input_judged_as_this_kind_is_unrecognised() -> None:
    f = ko.judge(Evidence(FOREIGN["linkerd viz stat"]), Context())

    assert (f.verdict, f.reasons) == (Verdict.HARNESS_ERROR, ["unrecognised_input"])


@pytest.mark.parametrize("path", sorted(HERE.iterdir()), ids=lambda p: p.name)
def test_every_prefix_of_a_fixture_is_judged_without_raising(path: Path) -> None:
    text = path.read_text()
    for end in range(0, len(text), 29):
        ctx = Context(overlay_cidr=ZT)
        assert ko.judge(Evidence(text[:end]), ctx).verdict in Verdict


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NAME  STATUS  ROLES\n",
        "NAME  ENDPOINTS\nkubernetes  [::1:6443\n",
        "$ kubectl get\n",
        "$ kubectl describe\nEvents:\n  Warning  X\n",
        "NAME   TYPE   CLUSTER-IP\n\x00\xff  a  b  c  d  e  f\n",
    ],
)
def test_arbitrary_text_never_raises(text: str) -> None:
    ctx = Context(overlay_cidr="not-a-cidr")
    assert ko.judge(Evidence(text), ctx).verdict in Verdict


# --- fresh-user review: nothing judged, describe svc, C10 pasted with its pool -------


def test_kubernetes_endpoints_without_an_overlay_cidr_are_inconclusive() -> None:
    f = judge("c13-endpoints-kubernetes.txt")

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])
    assert any("--overlay-cidr" in h for h in f.hints)


def test_a_described_pending_service_without_a_prompt_is_read_with_its_events() -> None:
    # `kubectl describe svc web` as printed (kubectl's describe.go field names), no
    # `$ kubectl` line above it: the Service and its MetalLB event both count.
    f = judge("svc-describe-pending-no-prompt.txt")

    assert (f.layer, f.reasons) == ("lb", ["ip_pending"])
    assert f.details["pending_reasons"] == {
        "default/web": [
            'AllocationFailed: Failed to allocate IP for "default/web": '
            "no available IPs"
        ]
    }


def test_a_service_both_described_and_listed_counts_once() -> None:
    f = judge("svc-pending-allocation-failed.txt")

    assert f.details["counts"] == {"services": 1}
    assert f.details["pending"] == ["default/web"]


def test_c10_table_followed_by_its_pool_fails_as_not_advertised() -> None:
    # Case C10 as written: the svc table, then the IPAddressPool, no `---` between.
    path = DATA / "metallb-config" / "c10-svc-table-then-pool-no-separator.txt"
    f = ko.judge(Evidence.from_path(path), Context())

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["pool_not_advertised"]
    assert f.details["counts"] == {"services": 1}
