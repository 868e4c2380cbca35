"""The linkerd-stat analyzer reads stat tables by header and judges them as C21 says.

Fixture sources (public machine output, re-typed):
- c21_stat_deploy: `linkerd stat deploy` from a comment in linkerd/linkerd2#5298.
- c21_viz_stat_srv_wide: `linkerd viz stat srv -A -o wide` (columns trimmed) from
  linkerd/linkerd2 PR#6785; c21_both_commands is the case's artifact as one file.
- multi_type_tables, healthy_wide_all_namespaces, not_meshed_zero_of_two: layouts
  of linkerd2's viz/cmd/testdata/stat_*_output.golden (prefixed names when several
  resource types are asked for, `-A`, `-o wide` byte-rate columns).
- stat_json: the `-o json` shape of viz/cmd/testdata/stat_one_output_json.golden.
- stat_2018_old_headers: the 2018 column names of cli/cmd/testdata/
  stat_one_output.golden (REQUEST_RATE, SUCCESS_RATE, P50_LATENCY).
- no_traffic: the line `linkerd stat` prints when nothing matched.
- zero_success_with_traffic: a user's defect report (re-typed): C21's layout with
  one row at 0.00% success while it carries 2.0rps.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import linkerd_stat as ls
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data" / "linkerd-stat"


def judge(name: str, **extra: object):
    return ls.judge(Evidence.from_path(DATA / name), Context(extra=dict(extra)))


EXPECTED = [
    ("c21_stat_deploy.txt", "apps", Verdict.WARN, ["partial_success"]),
    ("c21_viz_stat_srv_wide.txt", "apps", Verdict.WARN, ["partial_success"]),
    ("c21_both_commands.txt", "apps", Verdict.WARN, ["partial_success"]),
    ("multi_type_tables.txt", "apps", Verdict.WARN, ["partial_success"]),
    ("stat_json.json", "apps", Verdict.WARN, ["partial_success"]),
    ("stat_2018_old_headers.txt", "apps", Verdict.WARN, ["partial_success"]),
    ("not_meshed_zero_of_two.txt", "mesh", Verdict.FAIL, ["not_meshed"]),
    ("healthy_wide_all_namespaces.txt", "apps", Verdict.PASS, []),
    ("all_rows_without_data.txt", "apps", Verdict.INCONCLUSIVE, ["no_data"]),
    ("no_traffic.txt", "apps", Verdict.INCONCLUSIVE, ["no_data"]),
    ("zero_success_with_traffic.txt", "apps", Verdict.FAIL, ["endpoint_unhealthy"]),
]


@pytest.mark.parametrize(("name", "layer", "verdict", "reasons"), EXPECTED)
def test_each_fixture_gets_its_expected_verdict_and_codes(
    name, layer, verdict, reasons
):
    finding = judge(name)

    assert (finding.layer, finding.verdict, finding.reasons) == (
        layer,
        verdict,
        reasons,
    )


def test_every_fixture_is_listed_in_the_expectations():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(e[0] for e in EXPECTED)


def test_c21_names_the_voting_and_web_rows_and_only_them():
    finding = judge("c21_both_commands.txt")

    assert [r["name"] for r in finding.details["partial_success"]] == [
        "voting",
        "emojivoto/voting-grpc",
        "emojivoto/web-http",
    ]
    assert finding.details["partial_success"][0]["success"] == pytest.approx(0.8667)


def test_vote_bot_without_traffic_is_a_hint_not_a_warning():
    finding = judge("c21_stat_deploy.txt")

    assert finding.details["no_data"] == ["vote-bot"]
    assert any("vote-bot" in h and "no inbound traffic" in h for h in finding.hints)
    assert all("vote-bot" not in line for line in finding.evidence)


def test_evidence_is_the_header_and_the_rows_that_decided():
    finding = judge("c21_stat_deploy.txt")

    assert finding.evidence[0].split()[:3] == ["NAME", "MESHED", "SUCCESS"]
    assert finding.evidence[1].startswith("voting")
    assert len(finding.evidence) == 2


def test_a_success_objective_turns_the_warning_into_objective_missed():
    finding = judge("c21_viz_stat_srv_wide.txt", objectives={"success_rate": 0.85})

    assert (finding.verdict, finding.reasons) == (Verdict.FAIL, ["objective_missed"])
    assert [r["name"] for r in finding.details["success_missed"]] == [
        "emojivoto/voting-grpc"
    ]


def test_rows_within_the_success_objective_pass():
    finding = judge("c21_viz_stat_srv_wide.txt", objectives={"success_rate": 0.8})

    assert finding.verdict is Verdict.PASS


def test_a_success_objective_given_in_percent_is_read_as_a_fraction():
    finding = judge("c21_viz_stat_srv_wide.txt", objectives={"success_rate": 85})

    assert finding.details["success_objective"] == pytest.approx(0.85)


def test_latency_in_seconds_is_compared_in_milliseconds():
    finding = judge("multi_type_tables.txt", objectives={"latency_p99_ms": 500})

    assert "objective_missed" in finding.reasons
    missed = finding.details["latency_missed"]
    assert {(m["name"], m["ms"]) for m in missed} == {
        ("deployment/web", 1200.0),
        ("service/web-svc", 1200.0),
    }


def test_meshed_zero_of_n_reports_the_count_on_the_mesh_layer():
    finding = judge("not_meshed_zero_of_two.txt")

    assert finding.details["not_meshed"] == [{"name": "web", "meshed": "0/2"}]
    assert any("linkerd.io/inject" in h for h in finding.hints)


def test_columns_are_found_by_name_whatever_their_order_and_width():
    text = (
        "SUCCESS   NAME  RPS     MESHED LATENCY_P50\n"
        "97.50%    api   10.0rps 0/3    7ms\n"
    )

    rows, unread = ls.read(text)

    assert unread == []
    assert (rows[0].name, rows[0].success, rows[0].meshed) == ("api", 0.975, (0, 3))
    assert rows[0].rps == 10.0 and rows[0].latency_ms["p50"] == 7.0


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("86.67%", 0.8667),
        ("2.0rps", 2.0),
        ("28ms", 28.0),
        ("1.2s", 1200.0),
        ("-", None),
    ],
)
def test_values_are_read_by_their_unit(token, value):
    if value is None:
        assert ls.number(token) is None
    else:
        assert ls.number(token) == pytest.approx(value)


def test_a_row_that_does_not_fit_its_header_is_reported_not_guessed():
    text = (DATA / "c21_stat_deploy.txt").read_text() + "broken row\n"

    finding = ls.judge(Evidence(text), Context())

    assert any("did not match their header" in h for h in finding.hints)


OTHER_KINDS = {
    "yaml manifest": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n",
    "locust csv": "Type,Name,Request Count,Failure Count\nGET,/,1200,3\n",
    "prometheus json": '{"status":"success","data":{"result":[]}}',
    "prometheus list": '[{"metric": {}, "value": [1, "2"]}]',
    "check output": "linkerd-version\n---------------\n√ cli is up-to-date\n",
    "kubectl get pods": "NAME READY STATUS RESTARTS AGE\nweb-1 1/1 Running 0 5m\n",
    "proxy log": "[ 0.1s]  INFO ThreadId(01) linkerd2_proxy: Admin interface\n",
    "empty": "",
}


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_other_kinds_typical_inputs_score_zero(text):
    assert ls.detect(Evidence(text)) == 0.0


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_judging_input_of_another_kind_is_unrecognised(text):
    assert ls.judge(Evidence(text), Context()).reasons == ["unrecognised_input"]


def test_judge_never_raises_on_cut_or_garbled_text():
    rng = random.Random(11)
    for path in sorted(DATA.iterdir()):
        text = path.read_text(encoding="utf-8")
        for cut in range(0, len(text), max(1, len(text) // 20)):
            piece = "".join(
                c if rng.random() > 0.05 else rng.choice("-%/ \n[]{}0")
                for c in text[:cut]
            )
            finding = ls.judge(Evidence(piece), Context(extra={"objectives": "x"}))
            assert finding.layer in ("apps", "mesh", "unknown")


def test_every_fixture_is_picked_by_the_registry_when_all_analyzers_exist():
    from meshstack import analyzers

    try:
        analyzers.kinds()
    except ImportError as exc:
        pytest.skip(f"not every analyzer module exists yet: {exc}")
    for name, *_ in EXPECTED:
        text = (DATA / name).read_text(encoding="utf-8")
        kind = analyzers.detect(Evidence(text, name="renamed"))
        assert kind is not None and kind.name == "linkerd-stat", name


def test_a_large_table_is_judged_whole_and_cites_a_bounded_evidence():
    text = "NAME MESHED SUCCESS RPS\n" + "".join(
        f"w{i} 1/1 99.00% 1.0rps\n" for i in range(4_000)
    )

    finding = ls.judge(Evidence(text), Context())

    assert len(finding.details["partial_success"]) == 4_000
    assert len(finding.evidence) <= 24
    assert "and 3992 more" in finding.hints[0]


def test_a_table_cut_mid_row_judges_the_whole_rows_and_reports_the_rest():
    text = (DATA / "c21_both_commands.txt").read_text(encoding="utf-8")
    cut = text[: text.index("90.68%")]

    finding = ls.judge(Evidence(cut), Context())

    assert finding.reasons == ["partial_success"]
    assert [r["name"] for r in finding.details["partial_success"]] == [
        "voting",
        "emojivoto/voting-grpc",
    ]
    assert any("did not match their header" in h for h in finding.hints)


# --- defect report: total failure, the CLI's objective form -----------------------


def test_zero_success_with_traffic_is_a_failure_not_a_partial_success():
    finding = judge("zero_success_with_traffic.txt")

    assert finding.reasons == ["endpoint_unhealthy"]
    assert finding.details["no_success"] == [{"name": "web", "rps": 2.0}]
    assert "web           1/1     0.00%   2.0rps" in finding.evidence[1]


def test_zero_success_fails_even_under_a_lenient_objective():
    finding = judge("zero_success_with_traffic.txt", objectives={"success_rate": 0})

    assert finding.verdict is Verdict.FAIL
    assert "endpoint_unhealthy" in finding.reasons


def test_zero_success_without_any_request_rate_is_not_judged_a_total_failure():
    text = "NAME MESHED SUCCESS RPS LATENCY_P50 LATENCY_P95\nweb 1/1 0.00% - - -\n"

    finding = ls.judge(Evidence(text), Context())

    assert "endpoint_unhealthy" not in finding.reasons
    assert finding.reasons == ["partial_success"]


@pytest.mark.parametrize(
    ("objective", "reasons"),
    [
        ({"op": ">=", "bound": 0.99}, ["objective_missed"]),
        ({"op": ">", "bound": 85}, ["objective_missed"]),
        ({"op": ">=", "bound": 0.8}, []),
    ],
)
def test_the_objective_form_of_the_cli_help_judges_the_success_rate(objective, reasons):
    finding = judge("c21_viz_stat_srv_wide.txt", objective=objective)

    assert finding.reasons == reasons


@pytest.mark.parametrize(
    "objective", [{"op": "<=", "bound": 0.99}, {"op": ">="}, "0.99", {"bound": 1}]
)
def test_an_objective_that_cannot_bound_a_success_rate_is_reported(objective):
    finding = judge("c21_viz_stat_srv_wide.txt", objective=objective)

    assert finding.verdict is Verdict.INCONCLUSIVE
    assert finding.reasons[0] == "context_missing"
    assert any("cannot bound a success rate" in h for h in finding.hints)


# --- a line prefix on every line (CI timestamps, kubectl --prefix, quoting) ------

LINE_PREFIXES = {
    "github actions": "2026-12-04T10:00:00.0000000Z ",
    "kubectl --prefix": "[pod/web-abc/linkerd-proxy] ",
    "quoted": "> ",
    "syslog": "Dec  4 10:00:00 ci-runner-1 ci-job[4242]: ",
}


@pytest.mark.parametrize("prefix", LINE_PREFIXES.values(), ids=LINE_PREFIXES.keys())
@pytest.mark.parametrize("name", [e[0] for e in EXPECTED])
def test_a_prefix_on_every_line_judges_like_the_bare_capture(name, prefix):
    text = (DATA / name).read_text(encoding="utf-8")
    prefixed = "".join(prefix + line for line in text.splitlines(keepends=True))
    bare = ls.judge(Evidence(text), Context())

    finding = ls.judge(Evidence(prefixed), Context())

    assert ls.detect(Evidence(prefixed)) >= 0.5
    assert (finding.verdict, finding.reasons) == (bare.verdict, bare.reasons)
    assert bare.verdict is not Verdict.HARNESS_ERROR


def test_an_objectives_key_that_is_not_known_is_named_in_a_hint_not_dropped():
    finding = judge("c21_stat_deploy.txt", objectives={"success": 0.99})

    assert finding.reasons == ["partial_success"]
    assert any("success=0.99 ignored" in h for h in finding.hints)
