"""Self-tests of the ``openstack-error`` analyzer.

Fixtures in data/openstack-error/: ``c19-horizon-nginx-413.txt`` is case C19's
artifact (CanonicalLtd/microstack#86) re-typed. The others are re-typed in the
shapes the services and clients print: nova's ``{"<class>": {"message", "code"}}``,
Neutron's ``NeutronError``, Keystone's ``{"error": ...}``, Placement's
``{"errors": [...]}``, Glance's WebOb plain-text 413 (its ``image_size_cap``
message), openstackclient's ``(HTTP 403) (Request-ID: req-...)`` lines,
openstacksdk's ``HttpException: 413: Client Error for url``, keystoneauth's
connection errors, and ``openstack image/server show`` tables and JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import openstack_error as oe
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "openstack-error"
OTHER_KINDS = ("zerotier-member", "zerotier-cli", "ip-link", "microstack-log")

FOREIGN = {
    "linkerd check": (
        "linkerd-webhooks-and-apisvc-tls\n-------------------------------\n"
        "× proxy-injector webhook has valid cert\n"
    ),
    "locust csv": "Type,Name,Request Count,Failure Count\nGET,/,600,0\n",
    "yaml manifest": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n"
        "  namespace: metallb-system\ndata:\n  config: |\n    address-pools: []\n"
    ),
    "kubectl error": (
        'Error from server (Forbidden): pods is forbidden: User "dev" cannot list '
        'resource "pods" in API group "" in the namespace "default"\n'
    ),
    "prometheus error": (
        '{"status":"error","errorType":"bad_data","error":"parse error at char 5"}'
    ),
}


def judged(name: str):
    return oe.judge(Evidence.from_path(HERE / name), Context())


def test_case_c19_nginx_413_page_fails_as_the_front_ends_body_limit():
    f = judged("c19-horizon-nginx-413.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["proxy_body_limit"]
    assert f.details["http_status"] == 413
    assert f.details["origin"] == "nginx/1.19.0"
    assert any("Glance API" in h for h in f.hints)


def test_a_413_page_cut_off_before_its_server_name_still_fails_as_body_limit():
    f = judged("nginx-413-cut-off.html")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["proxy_body_limit"]
    assert f.details["origin"] is None


def test_an_sdk_http_exception_413_fails_as_body_limit():
    f = judged("sdk-httpexception-413.txt")

    assert f.reasons == ["proxy_body_limit"]
    assert f.details["http_status"] == 413


def test_glances_own_413_for_its_size_cap_is_a_quota_not_a_proxy():
    f = judged("glance-413-size-cap.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["quota_exceeded"]
    assert f.details["http_status"] == 413


def test_novas_over_limit_413_is_a_quota_not_a_proxy():
    f = judged("nova-overlimit.json")

    assert f.reasons == ["quota_exceeded"]
    assert f.details["error"] == "overLimit"


def test_a_quota_line_from_the_client_fails_with_status_and_request_id():
    f = judged("nova-quota-cli.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["quota_exceeded"]
    assert f.details["http_status"] == 403
    assert f.details["request_id"] == "req-7f0c2a9e-3b1d-4c55-9e2f-0a8b6c4d2e11"
    assert f.details["quota"] == (
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
    )


def test_neutrons_over_quota_fails_as_quota():
    f = judged("neutron-overquota.json")

    assert f.reasons == ["quota_exceeded"]
    assert f.details["error"] == "NeutronError/OverQuota"


@pytest.mark.parametrize("name", ["keystone-401.json", "cli-401.txt"])
def test_refused_credentials_are_a_harness_error(name: str):
    f = judged(name)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["credentials_missing"]
    assert f.details["http_status"] == 401
    # the hint names what the harness reads: the profile's clouds.yaml, never OS_*
    assert "refused the credentials" in f.hints[0]
    assert "cloud.clouds_yaml" in f.hints[0] and "OS_" not in f.hints[0]


def test_a_refused_connection_fails_as_unreachable_naming_the_url():
    f = judged("connection-refused.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["api_unreachable"]
    assert f.details["url"] == "https://192.0.2.71:5000/v3/auth/tokens"


def test_no_valid_host_fails_as_no_capacity_and_not_as_a_plain_error_state():
    f = judged("server-show-no-valid-host.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["scheduler_no_capacity"]


def test_a_server_in_error_fails_with_its_fault():
    f = judged("server-error-fault.json")

    assert f.reasons == ["server_error_state"]
    assert f.details["status"] == "ERROR"
    assert "Failed to allocate the network(s)" in f.details["fault"]


def test_a_fault_that_timed_out_is_the_servers_state_not_an_unreachable_api():
    text = (
        (HERE / "server-error-fault.json")
        .read_text()
        .replace("Failed to allocate the network(s)", "Timed out waiting for a reply")
    )

    f = oe.judge(Evidence(text), Context())

    assert f.reasons == ["server_error_state"]


def test_an_active_server_passes():
    assert judged("server-active.json").verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("name", "status"),
    [("image-show-queued.txt", "queued"), ("image-list-killed.txt", "killed")],
)
def test_an_image_that_is_not_active_fails(name: str, status: str):
    f = judged(name)

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["image_not_active"]
    assert f.details["status"] == status


def test_an_active_image_passes():
    f = judged("image-active.json")

    assert f.verdict is Verdict.PASS
    assert any('"status": "active"' in e for e in f.evidence)


def test_a_policy_refusal_fails_as_forbidden():
    f = judged("policy-403.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["rbac_forbidden"]


@pytest.mark.parametrize(
    ("name", "status"), [("item-not-found.json", 404), ("placement-conflict.json", 409)]
)
def test_other_api_errors_fail_as_check_failed_with_their_message(name: str, status):
    f = judged(name)

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["check_failed"]
    assert f.details["http_status"] == status
    assert f.details["message"]


def _other_inputs() -> list[tuple[str, str]]:
    files = [
        (f"{kind}/{p.name}", p.read_text())
        for kind in OTHER_KINDS
        for p in sorted((DATA / kind).glob("*"))
    ]
    return files + list(FOREIGN.items())


@pytest.mark.parametrize(("label", "text"), _other_inputs())
def test_detector_scores_zero_on_other_kinds(label: str, text: str):
    assert oe.detect(Evidence(text, name=label)) == 0.0


def _other_teams_fixtures() -> list[Path]:
    mine = {HERE.name, *OTHER_KINDS}
    return [
        p
        for d in sorted(DATA.iterdir())
        if d.is_dir() and d.name not in mine
        for p in sorted(d.rglob("*"))
        if p.is_file()
    ]


@pytest.mark.parametrize(
    "path", _other_teams_fixtures(), ids=lambda p: str(p.relative_to(DATA))
)
def test_detector_never_claims_another_kinds_fixture(path: Path):
    assert oe.detect(Evidence.from_path(path)) < 0.5


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.iterdir()))
def test_judge_never_raises_on_any_prefix_of_a_fixture(name: str):
    text = (HERE / name).read_text()
    for end in range(0, len(text), max(1, len(text) // 60)):
        assert oe.judge(Evidence(text[:end]), Context()).verdict


@pytest.mark.parametrize(
    "junk", ["", "(HTTP 999)", '{"errors": [1]}', '{"server": {"status": 5}}', "| |"]
)
def test_judge_never_raises_on_junk(junk: str):
    assert oe.judge(Evidence(junk), Context()).verdict


# Each a megabyte on one line, alone and after a real 413 CLI error line (which sends
# the text through every rule). "Maximum number of " without "exceeded" once made
# the quota rule quadratic.
LONG_LINES = {
    "dots": "." * 1_000_000,
    "spaces": " " * 1_000_000,
    "slashes": "/" * 1_000_000,
    "table cells": "| status | " * 90_000,
    "quota words": "Maximum number of " * 55_000,
    "exceptions": "aException: 413: " * 58_000,
    "http statuses": "(HTTP 413) " * 90_000,
    "connections": "Unable to establish connection to " * 29_000,
}


@pytest.mark.parametrize("line", LONG_LINES.values(), ids=LONG_LINES.keys())
@pytest.mark.parametrize("head", ["", "ERROR (HTTPException): 413\n"], ids=["", "413"])
def test_a_megabyte_line_is_detected_and_judged(line: str, head: str) -> None:
    evidence = Evidence(text=head + line + "\n")

    oe.detect(evidence)
    f = oe.judge(evidence, Context())

    assert f.reasons


def test_keystoneauth_connection_errors_are_an_unreachable_api_with_its_url() -> None:
    """openstacksdk raises keystoneauth's ConnectTimeout/ConnectFailure as they are
    (seen live: a loaded nova-api not answering a server create within the timeout)."""
    from meshstack.analyzers import Context, Evidence
    from meshstack.analyzers.openstack_error import detect, judge

    for text in (
        "ConnectTimeout: Request to http://127.0.0.1:8774/v2.1/servers timed out",
        "ConnectFailure: Request to http://127.0.0.1:9696/v2.0/ports failed",
    ):
        assert detect(Evidence(text)) > 0.5
        f = judge(Evidence(text), Context())
        assert f.reasons == ["api_unreachable"], f.to_json()
        assert f.details["url"].startswith("http://127.0.0.1:")
