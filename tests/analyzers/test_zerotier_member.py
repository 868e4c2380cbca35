"""Self-tests of the ``zerotier-member`` analyzer.

Fixtures in data/zerotier-member/: ``c15-central-member.json`` is case C15's artifact
(ZeroTier Central member JSON, zerotier/ZeroTierOne#1398) re-typed; the others are
variants in the shapes ZeroTier Central (``/api/v1/network/<nwid>/member``) and the
self-hosted controller (``/controller/network/<nwid>/member/<node>``) print, the
1.2-era controller's string booleans included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import zerotier_member as zm
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "zerotier-member"
OTHER_KINDS = ("zerotier-cli", "ip-link", "openstack-error", "microstack-log")

FOREIGN = {
    "linkerd check": (
        "kubernetes-api\n--------------\n√ can initialize the client\n"
        "√ can query the Kubernetes API\n\nlinkerd-existence\n-----------------\n"
        "× control plane pods are ready\n    pod/linkerd-destination-1 is not ready\n"
    ),
    "locust csv": (
        "Type,Name,Request Count,Failure Count,Median Response Time\n"
        "GET,/api/list,600,0,12\n,Aggregated,600,0,12\n"
    ),
    "yaml manifest": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
        "  namespace: emojivoto\nspec:\n  replicas: 1\n"
    ),
    "prometheus json": (
        '{"status":"success","data":{"resultType":"vector","result":[]}}'
    ),
    "kube status json": (
        '{"kind":"Status","apiVersion":"v1","status":"Failure",'
        '"message":"forbidden","reason":"Forbidden","code":403}'
    ),
}


def judged(name: str, **ctx: object):
    evidence = Evidence.from_path(HERE / name)
    return zm.judge(evidence, Context(**ctx))  # type: ignore[arg-type]


def test_case_c15_member_passes_inside_the_expected_overlay_range():
    f = judged("c15-central-member.json", overlay_cidr="198.51.100.0/24")

    assert f.verdict is Verdict.PASS
    assert f.reasons == []
    assert f.layer == "overlay"
    assert f.details["members"]["abcdef0123"]["ip_assignments"] == ["198.51.100.153"]


def test_case_c15_member_without_a_range_passes_with_a_hint_naming_the_option():
    f = judged("c15-central-member.json")

    assert f.verdict is Verdict.PASS
    assert any("--overlay-cidr" in h for h in f.hints)


def test_a_member_whose_addresses_lie_outside_the_range_fails_off_the_overlay():
    # It has an address, so it is not no_ip_assigned; the address k3s is to use
    # as --node-ip lies outside the overlay range (the fresh-user review, item 15).
    f = judged("c15-central-member.json", overlay_cidr="10.147.17.0/24")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["node_ip_not_on_overlay"]
    assert f.layer == "overlay"
    assert f.details["outside_overlay"] == {"abcdef0123": ["198.51.100.153"]}
    assert any("10.147.17.0/24" in h for h in f.hints)


def test_an_unauthorized_member_in_a_list_fails_and_the_hint_says_how_to_authorize():
    f = judged("central-list-one-unauthorized.json", overlay_cidr="198.51.100.0/24")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["member_not_authorized"]
    assert f.details["not_authorized"] == ["fedcba9876"]
    assert set(f.details["members"]) == {"abcdef0123", "fedcba9876"}
    hint = next(h for h in f.hints if "fedcba9876" in h)
    assert '{"config":{"authorized":true}}' in hint
    assert "/api/v1/network/0123456789abcdef/member/fedcba9876" in hint


def test_a_cut_off_list_still_fails_on_the_member_it_holds():
    f = judged("central-list-cut-off.json")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["member_not_authorized"]
    assert f.details["not_authorized"] == ["fedcba9876"]
    assert f.details["truncated"] is True


def test_a_member_deauthorized_after_its_authorization_fails_as_deauthorized():
    f = judged("controller-member-deauthorized.json")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["member_deauthorized"]
    assert f.details["deauthorized"] == ["abcdef0123"]
    assert any(
        "/controller/network/0123456789abcdef/member/abcdef0123" in h for h in f.hints
    )


def test_an_authorized_member_without_address_in_a_json_stream_is_warned_about():
    f = judged("controller-stream-no-ip.ndjson")

    assert f.verdict is Verdict.WARN
    assert f.reasons == ["no_ip_assigned"]
    assert f.details["no_ip"] == ["2222222222"]


def test_a_member_reauthorized_after_an_old_deauthorization_passes():
    f = judged("controller-stream-healthy.ndjson", overlay_cidr="198.51.100.0/24")

    assert f.verdict is Verdict.PASS
    assert set(f.details["members"]) == {"1111111111", "2222222222"}


def test_the_old_controllers_string_booleans_are_read_as_booleans():
    f = judged("controller-1.2-string-booleans.json", overlay_cidr="10.147.17.0/24")

    assert f.verdict is Verdict.PASS
    assert f.details["members"]["4ebbd51be0"]["authorized"] is True


def test_a_member_index_without_settings_is_inconclusive():
    f = judged("controller-member-index.json")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]


def test_an_offline_member_is_inconclusive_with_its_age_never_a_pass():
    text = (
        (HERE / "c15-central-member.json")
        .read_text()
        .replace('"online":true', '"online":false')
    )
    now = datetime.fromtimestamp(1620113745684 / 1000 + 600, tz=UTC)

    f = zm.judge(Evidence(text), Context(now=now))

    # Case C15 requires online=true for a PASS; offline to Central is not proof
    # that members cannot reach each other, so not a failure either.
    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])
    assert f.details["offline"] == ["abcdef0123"]
    assert any("10 min" in h for h in f.hints)


def test_a_member_cut_off_before_its_authorization_is_inconclusive():
    text = (HERE / "c15-central-member.json").read_text()
    text = text[: text.index('"authorized"')]

    f = zm.judge(Evidence(text), Context())

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]


def test_json_that_holds_no_member_is_unrecognised():
    f = zm.judge(Evidence('{"config": {"authorized": true}}'), Context())

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


def _other_inputs() -> list[tuple[str, str]]:
    files = [
        (f"{kind}/{p.name}", p.read_text())
        for kind in OTHER_KINDS
        for p in sorted((DATA / kind).glob("*"))
    ]
    return files + list(FOREIGN.items())


@pytest.mark.parametrize(("label", "text"), _other_inputs())
def test_detector_scores_zero_on_other_kinds(label: str, text: str):
    assert zm.detect(Evidence(text, name=label)) == 0.0


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
    assert zm.detect(Evidence.from_path(path)) < 0.5


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.iterdir()))
def test_judge_never_raises_on_any_prefix_of_a_fixture(name: str):
    text = (HERE / name).read_text()
    for end in range(0, len(text), max(1, len(text) // 60)):
        f = zm.judge(Evidence(text[:end]), Context(overlay_cidr="198.51.100.0/24"))
        assert f.verdict in Verdict


@pytest.mark.parametrize(
    "junk", ["", "{", "[[[[", '{"config": 5}', "\x00\xff", "null", '"authorized"']
)
def test_judge_never_raises_on_junk(junk: str):
    assert zm.judge(Evidence(junk), Context()).verdict is Verdict.HARNESS_ERROR


def test_no_address_with_auto_assign_off_is_not_no_ip_assigned_but_inconclusive():
    # no_ip_assigned is defined for auto-assign on; with noAutoAssignIps the
    # address is the operator's to give, and none will come by itself.
    text = (HERE / "c15-central-member.json").read_text()
    text = text.replace('"ipAssignments":["198.51.100.153"]', '"ipAssignments":[]')
    text = text.replace('"noAutoAssignIps":false', '"noAutoAssignIps":true')

    f = zm.judge(Evidence(text), Context(overlay_cidr="198.51.100.0/24"))

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])
    assert f.details["no_ip_manual"] == ["abcdef0123"]
    assert any("noAutoAssignIps" in h and "Assign one" in h for h in f.hints)


def test_an_online_member_with_an_address_in_range_passes():
    f = judged("c15-central-member.json", overlay_cidr="198.51.100.0/24")

    assert (f.verdict, f.reasons) == (Verdict.PASS, [])
