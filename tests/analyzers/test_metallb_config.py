"""Self-tests of the ``metallb-config`` analyzer.

Fixtures in data/metallb-config/: ``c09-legacy-and-crs.yaml`` and
``c10-pool-without-advertisement.yaml`` re-type the artifacts of cases C09
(metallb/metallb#1473) and C10 (metallb/metallb#1561); ``c08-*`` carry case C08's
condition (k3s-io/k3s#1969) in the shapes this kind reads (the ``k3s.io/node-args``
annotation k3s writes on its nodes, svclb DaemonSets, a k3s config.yaml). The rest
are other layouts (Helm values, a Flux HelmRelease, a ``kubectl get -o yaml`` List,
JSON), truncated copies and healthy counterparts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import metallb_config as mc
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "metallb-config"
NEW, OLD = "0.13.10", "v0.12.1"


def judge(name: str, version: str | None = NEW) -> Finding:
    evidence = Evidence.from_path(HERE / name)
    return mc.judge(evidence, Context(metallb_version=version))


# --- C09: legacy ConfigMap vs CRDs --------------------------------------------------


def test_c09_whole_artifact_on_013_passes_with_a_hint_to_delete_the_configmap() -> None:
    f = judge("c09-legacy-and-crs.yaml", NEW)

    assert f.verdict is Verdict.PASS
    assert f.reasons == []
    assert any("delete the leftover ConfigMap" in h for h in f.hints)


def test_legacy_pools_alone_on_013_are_ignored() -> None:
    f = judge("c09-legacy-configmap-only.yaml", NEW)

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["legacy_configmap_ignored"]
    assert f.details["ignored_pools"] == ["default", "bgp-pool"]


def test_legacy_pools_alone_on_012_pass() -> None:
    f = judge("c09-legacy-configmap-only.yaml", OLD)

    assert f.verdict is Verdict.PASS


def test_legacy_pools_without_a_version_are_inconclusive_and_name_the_option() -> None:
    f = judge("c09-legacy-configmap-only.yaml", None)

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert any("--metallb-version" in h for h in f.hints)


def test_a_truncated_legacy_configmap_still_fails_on_013() -> None:
    f = judge("c09-legacy-configmap-truncated.yaml", NEW)

    assert f.reasons == ["legacy_configmap_ignored"]


@pytest.mark.parametrize(
    "name", ["c09-helm-values-configinline.yaml", "c09-flux-helmrelease.yaml"]
)
def test_configinline_pools_on_013_are_ignored(name: str) -> None:
    f = judge(name, "0.13.4")

    assert f.reasons == ["legacy_configmap_ignored"]
    assert f.details["pools"][0]["source"] == "configInline"


def test_configmap_pools_the_crs_do_not_cover_are_reported_as_ignored() -> None:
    f = judge("c09-crs-partial-conversion.yaml", NEW)

    assert f.reasons == ["legacy_configmap_ignored"]
    assert f.details["ignored_pools"] == ["extra"]


def test_crs_only_on_012_are_unsupported() -> None:
    f = judge("c09-crs-only.yaml", OLD)

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["crds_unsupported_by_version"]


def test_crs_only_on_013_pass() -> None:
    f = judge("c09-crs-only.yaml", NEW)

    assert f.verdict is Verdict.PASS


def test_crs_without_a_version_are_judged_as_crs_with_a_hint() -> None:
    f = judge("c09-crs-only.yaml", None)

    assert f.verdict is Verdict.PASS
    assert any("--metallb-version" in h for h in f.hints)


def test_both_forms_normalise_to_the_same_pool() -> None:
    f = judge("c09-legacy-and-crs.yaml")
    pools = {p["source"]: p for p in f.details["pools"]}

    assert pools["crd"]["ranges"] == pools["configmap"]["ranges"]
    assert pools["crd"]["protocol"] == pools["configmap"]["protocol"] == "layer2"
    assert pools["crd"]["pool"] == pools["configmap"]["pool"] == "default"


def test_an_unreadable_version_is_ignored_with_a_hint() -> None:
    f = judge("c09-crs-only.yaml", "latest")

    assert f.verdict is Verdict.PASS
    assert any("'latest'" in h for h in f.hints)


_ADDRESSPOOL = """\
apiVersion: metallb.io/v1beta1
kind: AddressPool
metadata: {name: old-style, namespace: metallb-system}
spec:
  protocol: layer2
  addresses: [192.0.2.210-192.0.2.220]
"""


def test_the_013_addresspool_kind_counts_as_an_advertised_pool() -> None:
    f = mc.judge(Evidence(_ADDRESSPOOL), Context(metallb_version="0.13.7"))

    assert f.verdict is Verdict.PASS
    assert f.details["pools"][0]["source"] == "addresspool"
    assert f.details["pools"][0]["protocol"] == "layer2"


def test_the_addresspool_kind_on_014_is_dropped_with_a_hint() -> None:
    f = mc.judge(Evidence(_ADDRESSPOOL), Context(metallb_version="v0.14.8"))

    assert any("removed the AddressPool kind" in h for h in f.hints)


# --- C10: pool with no advertisement ------------------------------------------------


def test_c10_address_from_a_pool_nobody_advertises_fails() -> None:
    f = judge("c10-pool-without-advertisement.yaml", NEW)

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["pool_not_advertised"]
    assert f.details["unadvertised_pools"] == ["primary-pool"]
    assert f.details["unannounced_services"] == ["default/web"]
    assert any("L2Advertisement" in h for h in f.hints)


def test_c10_truncated_copy_still_fails() -> None:
    f = judge("c10-pool-without-advertisement-truncated.yaml", NEW)

    assert f.reasons == ["pool_not_advertised"]
    assert f.details["unannounced_services"] == ["default/web"]


def test_an_auto_assigning_pool_nobody_advertises_fails_before_any_service() -> None:
    f = judge("c10-pool-only.yaml", NEW)

    assert f.reasons == ["pool_not_advertised"]
    assert "unannounced_services" not in f.details


def test_a_pool_with_autoassign_off_and_no_service_only_gets_a_hint() -> None:
    text = (
        (HERE / "c10-pool-only.yaml")
        .read_text()
        .replace("autoAssign: true", "autoAssign: false")
    )
    f = mc.judge(Evidence(text), Context(metallb_version=NEW))

    assert f.verdict is Verdict.PASS
    assert any("autoAssign: false" in h for h in f.hints)


def test_a_label_selector_that_misses_the_pool_fails_json_list() -> None:
    f = judge("c10-selector-mismatch.json", NEW)

    assert f.reasons == ["pool_not_advertised"]
    assert f.details["unannounced_services"] == ["fc-demo/web-svc"]


def test_a_selector_expression_and_a_ready_node_pass() -> None:
    f = judge("c10-selector-healthy.yaml", NEW)

    assert f.verdict is Verdict.PASS
    assert f.details["pools"][0]["protocol"] == "layer2"


def test_an_advertisement_whose_nodes_are_not_ready_announces_nothing() -> None:
    f = judge("c10-nodeselector-no-ready-node.yaml", NEW)

    assert f.reasons == ["pool_not_advertised"]


def test_advertisements_in_another_namespace_do_not_select_the_pool() -> None:
    text = (HERE / "c09-crs-only.yaml").read_text()
    text = text.rsplit("namespace: metallb-system", 1)[0] + "namespace: other\n"
    f = mc.judge(Evidence(text), Context(metallb_version=NEW))

    assert f.reasons == ["pool_not_advertised"]


# --- services -----------------------------------------------------------------------


def test_an_address_outside_every_pool_and_a_pending_service_fail() -> None:
    f = judge("services-outside-and-pending.yaml", NEW)

    assert f.reasons == ["ip_outside_pool", "ip_pending"]
    assert f.details["outside_pool"] == ["default/web=198.51.100.10"]
    assert f.details["pending"] == ["emojivoto/vote"]


# --- C08: k3s servicelb beside MetalLB ----------------------------------------------


def test_c08_svclb_daemonset_and_server_args_without_disable_fail() -> None:
    f = judge("c08-svclb-beside-metallb.yaml", NEW)

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["k3s_servicelb_active_with_metallb"]
    assert f.details["svclb"] == ["daemonset/svclb-web-2f1c8a3e"]
    assert f.details["servers_without_disable"] == 1
    assert any("--disable servicelb" in h for h in f.hints)


def test_c08_k3s_config_yaml_without_disable_fails() -> None:
    f = judge("c08-k3s-config-without-disable.yaml", NEW)

    assert f.reasons == ["k3s_servicelb_active_with_metallb"]
    assert f.details["svclb"] == []


def test_c08_servers_with_disable_or_no_deploy_pass() -> None:
    f = judge("c08-servicelb-disabled.yaml", NEW)

    assert f.verdict is Verdict.PASS
    assert f.details["pools"] == [
        {
            "pool": "lan",
            "ranges": ["192.0.2.210-192.0.2.220"],
            "protocol": "layer2",
            "source": "crd",
        }
    ]


# --- helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "disabled"),
    [
        (["server", "--disable", "servicelb"], True),
        (["server", "--disable=traefik,servicelb"], True),
        (["server", "--no-deploy", "servicelb"], True),
        (["server", "--no-deploy=servicelb"], True),
        (["server", "--disable", "traefik"], False),
        (["server", "--disable"], False),
        (["server"], False),
    ],
)
def test_servicelb_disabled_reads_every_spelling(
    args: list[str], disabled: bool
) -> None:
    assert mc.servicelb_disabled(args) is disabled


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {"a": "b"}, True),
        ({"matchLabels": {"zone": "edge"}}, {"zone": "edge"}, True),
        ({"matchLabels": {"zone": "edge"}}, {"zone": "core"}, False),
        ({"matchExpressions": [{"key": "z", "operator": "Exists"}]}, {"z": ""}, True),
        ({"matchExpressions": [{"key": "z", "operator": "DoesNotExist"}]}, {}, True),
        (
            {"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["a"]}]},
            {"z": "a"},
            False,
        ),
        ({"matchExpressions": [{"key": "z", "operator": "Bogus"}]}, {"z": "a"}, False),
        ("not a selector", {}, False),
    ],
)
def test_label_selectors_follow_kubernetes_semantics(
    selector: object, labels: dict[str, str], matches: bool
) -> None:
    assert mc.selector_matches(selector, labels) is matches


@pytest.mark.parametrize(
    ("text", "version"),
    [("0.13.10", (0, 13)), ("v0.12.1", (0, 12)), ("v0.14", (0, 14)), ("x", None)],
)
def test_versions_are_read_with_or_without_v(
    text: str, version: tuple[int, int] | None
) -> None:
    assert mc.parse_version(text) == version


# --- detection and robustness -------------------------------------------------------

FOREIGN = {
    "linkerd check": "kubernetes-api\n--------------\n√ can initialize the client\n",
    "locust csv": "Type,Name,Request Count\nGET,/api/list,600\n",
    "zerotier member json": '{"id": "8056c2e21c", "config": {"authorized": true}}',
    "plain deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n",
    "apply error naming the kind": (
        'error: unable to recognize "p.yaml": no matches for kind "IPAddressPool" '
        'in version "metallb.io/v1beta1"\n'
    ),
}


@pytest.mark.parametrize("text", FOREIGN.values(), ids=list(FOREIGN))
def test_other_inputs_score_zero(text: str) -> None:
    assert mc.detect(Evidence(text)) == 0.0


def test_foreign_input_judged_as_this_kind_is_unrecognised() -> None:
    f = mc.judge(Evidence(FOREIGN["locust csv"]), Context())

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


@pytest.mark.parametrize("path", sorted(HERE.iterdir()), ids=lambda p: p.name)
def test_every_prefix_of_a_fixture_is_judged_without_raising(path: Path) -> None:
    text = path.read_text()
    for end in range(0, len(text), 53):
        f = mc.judge(Evidence(text[:end]), Context(metallb_version=NEW))
        assert f.verdict in Verdict


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\xff garbage",
        "address-pools: [",
        "configInline: 7",
        "metallb.io/\n- - - [[{",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nspec: [1, 2]\n",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nspec:\n  addresses: 5\n",
        "kind: List\napiVersion: v1\nitems: {a: b}\nconfigInline: {address-pools: 3}",
        '[1, 2, {"address-pools": null}]',
    ],
)
def test_arbitrary_text_never_raises(text: str) -> None:
    f = mc.judge(Evidence(text), Context(metallb_version=NEW))

    assert f.verdict in Verdict


# --- fresh-user review --------------------------------------------------------------


def test_c10_as_written_table_then_pool_without_separator_fails() -> None:
    # Case C10's two blocks pasted into one file: `$ kubectl get svc web`, its
    # table and a comment, then the IPAddressPool YAML with no `---` between.
    f = judge("c10-svc-table-then-pool-no-separator.txt", None)

    assert (f.verdict, f.reasons) == (Verdict.FAIL, ["pool_not_advertised"])
    assert f.details["services"] == 1
    assert f.details["unannounced_services"] == ["default/web"]


def test_c10_as_written_is_detected_as_metallb_config_not_a_kubectl_table() -> None:
    path = HERE / "c10-svc-table-then-pool-no-separator.txt"
    kind = analyzers.detect(Evidence.from_path(path, name="capture.txt"))

    assert kind is not None and kind.name == mc.NAME


def test_yaml_after_a_shell_line_and_between_tables_is_read() -> None:
    text = (
        "$ kubectl -n metallb-system get ipaddresspools -o yaml\n"
        "apiVersion: metallb.io/v1beta1\n"
        "kind: IPAddressPool\n"
        "metadata: {name: a, namespace: metallb-system}\n"
        "spec: {addresses: [192.0.2.0/28]}\n"
        "$ kubectl -n metallb-system get l2advertisements -o yaml\n"
        "apiVersion: metallb.io/v1beta1\n"
        "kind: L2Advertisement\n"
        "metadata: {name: a, namespace: metallb-system}\n"
    )
    f = mc.judge(Evidence(text), Context(metallb_version=NEW))

    assert f.verdict is Verdict.PASS
    assert [p["protocol"] for p in f.details["pools"]] == ["layer2"]


def test_a_lone_metallb_api_version_line_is_not_a_pass() -> None:
    f = mc.judge(Evidence("apiVersion: metallb.io/v1beta1\n"), Context())

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])


def test_c09_whole_artifact_without_a_version_still_says_delete_the_configmap() -> None:
    f = judge("c09-legacy-and-crs.yaml", None)

    assert f.verdict is Verdict.PASS
    assert any("delete the leftover ConfigMap" in h for h in f.hints)


# --- why a Service is pending -----------------------------------------------------

_ADVERT = """\
- apiVersion: metallb.io/v1beta1
  kind: L2Advertisement
  metadata: {name: default, namespace: metallb-system}
  spec: {}
"""


def _service(name: str, ip: str | None = None) -> str:
    status = f"{{ingress: [{{ip: {ip}}}]}}" if ip else "{}"
    return f"""\
- apiVersion: v1
  kind: Service
  metadata: {{name: {name}, namespace: demo}}
  spec: {{type: LoadBalancer}}
  status: {{loadBalancer: {status}}}
"""


def _pool(addresses: str, auto: bool = True) -> str:
    return f"""\
- apiVersion: metallb.io/v1beta1
  kind: IPAddressPool
  metadata: {{name: p, namespace: metallb-system}}
  spec: {{addresses: [{addresses}], autoAssign: {str(auto).lower()}}}
"""


@pytest.mark.parametrize(
    ("items", "said"),
    [
        ([_ADVERT, _service("web")], "no address pool exists"),
        (
            [_ADVERT, _pool("198.19.0.200-198.19.0.201", auto=False), _service("web")],
            "every pool has autoAssign: false",
        ),
        (
            [
                _ADVERT,
                _pool("198.19.0.200/32"),
                _service("a", "198.19.0.200"),
                _service("web"),
            ],
            "every address of the auto-assigned pools is in use",
        ),  # fmt: skip
        (
            [_ADVERT, _pool("198.19.0.200-198.19.0.210"), _service("web")],
            "nothing in this configuration explains it",
        ),
    ],
    ids=["no-pool", "no-auto-assign", "exhausted", "unexplained"],
)
def test_a_pending_service_is_explained_by_what_the_configuration_lacks(
    items: list[str], said: str
) -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join(items)
    f = mc.judge(Evidence(text), Context(metallb_version="v0.14.8"))

    assert "ip_pending" in f.reasons, f.to_json()
    pending = [h for h in f.hints if h.startswith("pending:")]
    assert len(pending) == 1 and said in pending[0], f.hints


def test_pools_the_profile_wants_are_compared_when_the_context_names_them():
    text = (
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\n"
        "metadata: {name: edge, namespace: metallb-system}\n"
        "spec: {addresses: [198.51.100.10-198.51.100.20]}\n"
    )
    kind = analyzers.get("metallb-config")

    def judged(expected: dict) -> Finding:
        ctx = Context(metallb_version="v0.14.5", extra={"expected_pools": expected})
        return kind.judge(Evidence(text, "pools.yaml"), ctx)

    same = judged({"edge": ["198.51.100.10-198.51.100.20"]})
    other = judged({"edge": ["198.51.100.10-198.51.100.30"]})
    absent = judged({"core": ["198.51.100.40/30"]})

    assert "pool_mismatch" not in same.reasons
    assert "pool_mismatch" in other.reasons and "pool_mismatch" in absent.reasons
    assert "has no such pool" in " ".join(absent.hints)
    no_context = kind.judge(Evidence(text, "pools.yaml"), Context())
    assert "pool_mismatch" not in no_context.reasons
