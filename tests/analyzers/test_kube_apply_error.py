"""Self-tests of the ``kube-apply-error`` analyzer.

Fixtures in data/kube-apply-error/ re-type errors printed by ``kubectl apply`` and the
Kubernetes client as reported in public threads: metallb/metallb#1597 (connection
refused; x509 unknown authority), #1669 (no endpoints, 0.13.7), #1612 (Service
Unavailable), #1547 (context deadline exceeded), #1563 (x509 valid for localhost),
bitnami/charts#15094 (k3s API server proxy error, wrapped by a terminal) and #13524
(the Python client's ``Failed to patch object``), cert-manager/cert-manager#6522
(another project's webhook). The CRD, RBAC, AlreadyExists and success outputs are
kubectl's usual wordings with this project's names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import kube_apply_error as kae
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "kube-apply-error"


def judge(name: str, version: str | None = None) -> Finding:
    return kae.judge(Evidence.from_path(HERE / name), Context(metallb_version=version))


# --- MetalLB's webhook --------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "webhook-connection-refused.txt",
        "webhook-no-endpoints-0.13.7.txt",
        "webhook-service-unavailable.txt",
        "webhook-python-client-refused.txt",
    ],
)
def test_webhook_errors_that_clear_after_install_are_transient(name: str) -> None:
    f = judge(name)

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["webhook_unavailable"]
    assert f.details["transient"] is True
    assert "ipaddresspoolvalidationwebhook.metallb.io" in f.details["webhooks"]


def test_both_webhooks_of_one_apply_are_named() -> None:
    f = judge("webhook-service-unavailable.txt")

    assert f.details["webhooks"] == [
        "ipaddresspoolvalidationwebhook.metallb.io",
        "l2advertisementvalidationwebhook.metallb.io",
    ]
    assert len(f.evidence) == 2


def test_a_webhook_timeout_is_unavailable_but_not_transient() -> None:
    f = judge("webhook-deadline-exceeded.txt")

    assert f.reasons == ["webhook_unavailable"]
    assert f.details["transient"] is False


def test_a_webhook_error_cut_before_its_cause_still_fails() -> None:
    f = judge("webhook-refused-truncated.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["webhook_unavailable"]
    assert f.details["applied"] == 1


@pytest.mark.parametrize(
    "name",
    [
        "webhook-x509-unknown-authority.txt",
        "webhook-x509-valid-for-localhost.txt",
        "webhook-python-client-x509.txt",
    ],
)
def test_untrusted_webhook_certificates_are_a_ca_mismatch_never_transient(
    name: str,
) -> None:
    f = judge(name)

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["webhook_ca_mismatch"]
    assert f.details["transient"] is False


def test_a_proxy_dial_error_beats_service_unavailable_in_the_same_message() -> None:
    f = judge("webhook-proxy-error-k3s-wrapped.txt")

    assert f.reasons == ["apiserver_cannot_reach_pod"]
    assert f.details["transient"] is False
    assert "while dialing 10.42.3.16:9443" in f.evidence[0]


def test_error_trying_to_reach_service_is_the_api_server_proxy_too() -> None:
    text = (
        "Error from server (InternalError): Internal error occurred: failed calling "
        'webhook "l2advertisementvalidationwebhook.metallb.io": failed to call '
        'webhook: Post "https://webhook-service.metallb-system.svc:443/validate": '
        "error trying to reach service: dial tcp 10.42.1.5:9443: i/o timeout\n"
    )
    f = kae.judge(Evidence(text), Context())

    assert f.reasons == ["apiserver_cannot_reach_pod"]


def test_a_transient_error_beside_a_ca_mismatch_is_not_transient() -> None:
    text = (HERE / "webhook-connection-refused.txt").read_text() + (
        HERE / "webhook-x509-unknown-authority.txt"
    ).read_text()
    f = kae.judge(Evidence(text), Context())

    assert f.reasons == ["webhook_unavailable", "webhook_ca_mismatch"]
    assert f.details["transient"] is False


def test_another_projects_webhook_is_not_reported_as_metallbs() -> None:
    f = judge("webhook-other-project.txt")

    assert (f.layer, f.reasons) == ("cluster", ["api_unreachable"])
    assert f.details["webhooks"] == ["webhook.cert-manager.io"]


def test_a_webhook_that_denies_the_pool_is_a_failed_check_with_the_denial() -> None:
    f = judge("webhook-denied-overlap.txt")

    assert (f.layer, f.reasons) == ("lb", ["check_failed"])
    assert "overlaps with already defined CIDR" in f.details["denied"][0]


# --- CRDs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["crd-no-matches-resource-mapping.txt", "crd-unable-to-recognize-old-kubectl.txt"],
)
def test_metallb_kinds_the_cluster_does_not_serve_are_unsupported(name: str) -> None:
    f = judge(name, "v0.12.1")

    assert (f.layer, f.verdict) == ("lb", Verdict.FAIL)
    assert f.reasons == ["crds_unsupported_by_version"]
    assert f.details["missing_kinds"][0] == "IPAddressPool"
    assert f.details["transient"] is False


def test_missing_crds_despite_a_new_version_say_so() -> None:
    f = judge("crd-no-matches-resource-mapping.txt", "0.13.10")

    assert f.reasons == ["crds_unsupported_by_version"]
    assert any("CRDs" in h and "0.13.10" in h for h in f.hints)


def test_crs_applied_with_their_crds_in_one_go_are_a_transient_race() -> None:
    f = judge("crd-race-same-apply.txt", "0.13.10")

    assert f.reasons == ["crds_unsupported_by_version"]
    assert f.details["transient"] is True
    assert f.details["applied"] == 7


def test_another_projects_missing_kind_is_a_failed_check() -> None:
    text = (
        'error: resource mapping not found for name: "web" namespace: "emojivoto" '
        'from "s.yaml": no matches for kind "Server" in version '
        '"policy.linkerd.io/v1beta1"\nensure CRDs are installed first\n'
    )
    f = kae.judge(Evidence(text), Context())

    assert (f.layer, f.reasons) == ("mesh", ["check_failed"])
    assert f.details["missing_kinds"] == ["Server"]


# --- RBAC, AlreadyExists, success ---------------------------------------------------


def test_forbidden_metallb_resources_are_an_lb_rbac_failure() -> None:
    f = judge("rbac-forbidden.txt")

    assert (f.layer, f.verdict, f.reasons) == ("lb", Verdict.FAIL, ["rbac_forbidden"])
    assert any("system:serviceaccount:ci:deployer" in h for h in f.hints)


def test_forbidden_cluster_resources_are_a_cluster_rbac_failure() -> None:
    f = judge("rbac-forbidden-cluster.txt")

    assert (f.layer, f.reasons) == ("cluster", ["rbac_forbidden"])


def test_already_exists_passes_with_a_hint() -> None:
    f = judge("already-exists.txt")

    assert f.verdict is Verdict.PASS
    assert any("kubectl apply" in h for h in f.hints)


def test_a_clean_apply_passes_and_counts_what_it_applied() -> None:
    f = judge("apply-success.txt")

    assert f.verdict is Verdict.PASS
    assert f.details["applied"] == 3


def test_an_unknown_error_from_server_is_a_failed_check() -> None:
    text = 'Error from server (BadRequest): error when creating "x.yaml": bad thing\n'
    f = kae.judge(Evidence(text), Context())

    assert (f.verdict, f.reasons) == (Verdict.FAIL, ["check_failed"])
    assert f.details["errors"] == [text.strip()]


def test_a_client_exception_without_its_body_is_still_a_failure() -> None:
    text = (
        "kubernetes.client.exceptions.ApiException: (500)\n"
        "Reason: Internal Server Error\n"
    )
    f = kae.judge(Evidence(text), Context())

    assert (f.verdict, f.reasons) == (Verdict.FAIL, ["check_failed"])


# --- detection and robustness -------------------------------------------------------

FOREIGN = {
    "linkerd check": (
        "pre-kubernetes-setup\n--------------------\n"
        "× control plane namespace does not already exist\n"
        '    namespaces "linkerd" is forbidden: User "u" cannot get resource '
        '"namespaces" in API group "" in the namespace "linkerd"\n'
    ),
    "locust csv": "Type,Name,Request Count\nGET,/api/list,600\n",
    "zerotier member json": '{"id": "8056c2e21c", "config": {"authorized": true}}',
    "kubectl get table": (
        "NAME     STATUS   ROLES    AGE   VERSION\n"
        "node-1   Ready    master   4d    v1.27.4\n"
    ),
    "metallb manifest": (
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: x\n"
    ),
}


@pytest.mark.parametrize("text", FOREIGN.values(), ids=list(FOREIGN))
def test_other_inputs_score_zero(text: str) -> None:
    assert kae.detect(Evidence(text)) == 0.0


def test_foreign_input_judged_as_this_kind_is_unrecognised() -> None:
    f = kae.judge(Evidence(FOREIGN["locust csv"]), Context())

    assert (f.verdict, f.reasons) == (Verdict.HARNESS_ERROR, ["unrecognised_input"])


@pytest.mark.parametrize("path", sorted(HERE.iterdir()), ids=lambda p: p.name)
def test_every_prefix_of_a_fixture_is_judged_without_raising(path: Path) -> None:
    text = path.read_text()
    for end in range(0, len(text), 41):
        assert kae.judge(Evidence(text[:end]), Context()).verdict in Verdict


@pytest.mark.parametrize(
    "text",
    ["", "\x00\xff", "Error from server", 'failed calling webhook "', "error:\n│ │ │"],
)
def test_arbitrary_text_never_raises(text: str) -> None:
    assert (
        kae.judge(Evidence(text), Context(metallb_version="bogus")).verdict in Verdict
    )


# --- linear detection (fresh-user review, item 11) -----------------------------------

# The kinds whose modules were audited for nested or overlapping quantifiers; each
# must detect and judge a one-megabyte line of a repeated unit in under 2 s of CPU
# time (so a busy machine cannot fail it). The
# units are those that drove a quadratic path before: dot leaders (27 s for 100 kB
# here), blanks and newlines under \s*, JSON openers and nesting, long k3s lines.
_AUDITED = (
    "metallb-config",
    "kube-apply-error",
    "kube-output",
    "k3s-log",
    "zerotier-member",
    "zerotier-cli",
    "ip-link",
)
_UNITS = (
    ".",
    " ",
    "\n",
    "{",
    "[",
    '["x',
    "[1,",
    ".[",
    "k3s server ",
    "a: ",
    "10.0.0.1 ",
)


@pytest.mark.parametrize("unit", _UNITS, ids=repr)
@pytest.mark.parametrize("kind", _AUDITED)
def test_a_megabyte_of_one_repeated_unit_is_detected_and_judged(
    kind: str, unit: str
) -> None:
    text = unit * (1_000_000 // len(unit))
    analyzer = analyzers.kinds()[kind]
    ctx = Context(overlay_cidr="10.0.0.0/8", metallb_version="0.14.3")

    analyzer.detect(Evidence(text))
    finding = analyzer.judge(Evidence(text), ctx)

    # One unit said a million times is not evidence of health (how long this takes
    # is measured by benchmarks/pathological.py, not asserted here).
    assert finding.verdict is not Verdict.PASS, (kind, unit, finding.hints)
