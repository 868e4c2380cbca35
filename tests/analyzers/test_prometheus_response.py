"""The prometheus-response analyzer never passes an empty answer and judges bounds.

Every fixture in tests/analyzers/data/prometheus-response/ is a real answer of
Prometheus 2.42 (Debian) run on 127.0.0.1, scraping itself every second:
``up_vector`` / ``up_matrix`` (``up``), ``empty_vector`` (a job that does not exist),
``nan_ratio`` (a rate over a counter that never moves divided by itself: 0/0),
``bad_data`` (a query with an unclosed parenthesis), ``scalar``, ``string``,
``success_ratio`` / ``success_ratio_matrix`` (the share of the query API's answers
that were 200 after three bad queries: 8 of 11), ``by_code`` (the same by code) and
``rate_2s_window`` (a rate over 2 s). ``success_ratio_pretty`` is the same answer
indented as ``jq`` prints it; ``success_ratio_cut`` is cut inside the value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import prometheus_response as prom
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data" / "prometheus-response"
SLO = {"objective": {"op": ">=", "bound": 0.99}}


def judge(name: str, **extra: object) -> Finding:
    evidence = Evidence.from_path(DATA / f"{name}.json")
    return prom.judge(evidence, Context(extra=dict(extra)))


def test_a_series_with_values_and_no_objective_is_context_missing_never_a_pass() -> (
    None
):
    f = judge("up_vector")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert f.details["result_type"] == "vector"
    assert f.details["values"][0]["values"] == ["1"]
    assert 'job="prometheus"' in f.details["values"][0]["metric"]
    assert any("--extra objective=" in h for h in f.hints)


@pytest.mark.parametrize("value", ["0", "0.5", "1"])
def test_any_value_without_an_objective_is_not_judged_even_zero(value: str) -> None:
    # The fresh user's input: a vector of one sample, value 0, and no objective.
    text = (
        '{"status":"success","data":{"resultType":"vector","result":'
        f'[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}'
    )

    f = prom.judge(Evidence(text=text), Context())

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert f.details["min"] == float(value)


@pytest.mark.parametrize("name", ["empty_vector", "nan_ratio"])
def test_no_series_or_a_nan_sample_is_inconclusive_never_a_pass(name: str) -> None:
    f = judge(name, **SLO)

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["no_data"]


def test_a_rejected_query_is_the_harness_s_fault_not_missing_data() -> None:
    f = judge("bad_data", **SLO)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["query_rejected"]
    assert f.details["error_type"] == "bad_data"
    assert any("harness's query" in h for h in f.hints)
    assert "unclosed left parenthesis" in f.evidence[0]


@pytest.mark.parametrize("name", ["success_ratio", "success_ratio_pretty"])
def test_a_success_ratio_below_its_objective_fails(name: str) -> None:
    f = judge(name, **SLO)

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["objective_missed"]
    assert f.details["violations"] == 1
    assert f.details["min"] == pytest.approx(8 / 11)


def test_every_sample_of_a_matrix_is_held_to_the_objective() -> None:
    f = judge("success_ratio_matrix", **SLO)

    assert f.reasons == ["objective_missed"]
    assert f.details["violations"] == 3
    assert f.details["samples"] == 3


def test_the_same_ratio_passes_a_looser_objective() -> None:
    f = judge("success_ratio", objective={"op": ">=", "bound": 0.7})

    assert f.verdict is Verdict.PASS


def _vector(value: str) -> Evidence:
    # The shape of a real instant-vector answer (see success_ratio.json), with the
    # value Prometheus prints for an infinite sample.
    return Evidence(
        text=json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {}, "value": [1733300000.0, value]}],
                },
            }
        )
    )


@pytest.mark.parametrize(
    ("value", "op"), [("+Inf", ">="), ("+Inf", ">"), ("-Inf", "<="), ("-Inf", "<")]
)
def test_an_infinite_sample_that_would_meet_the_bound_is_no_data(
    value: str, op: str
) -> None:
    f = prom.judge(
        _vector(value), Context(extra={"objective": {"op": op, "bound": 0.5}})
    )

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["no_data"])


def test_an_infinite_latency_against_an_upper_bound_is_a_miss() -> None:
    # histogram_quantile answers +Inf when the quantile lies beyond the last bucket
    f = prom.judge(
        _vector("+Inf"), Context(extra={"objective": {"op": "<=", "bound": 0.5}})
    )

    assert (f.verdict, f.reasons) == (Verdict.FAIL, ["objective_missed"])


def test_an_upper_bound_is_judged_per_series() -> None:
    f = judge("by_code", objective={"op": "<=", "bound": 5})

    assert f.reasons == ["objective_missed"]
    assert f.details["violations"] == 1
    assert f.details["series"] == 2


def test_a_nan_beside_a_miss_fails_and_a_nan_beside_a_pass_is_inconclusive() -> None:
    # Constructed from the real by_code answer: one series' value made NaN.
    doc = json.loads((DATA / "by_code.json").read_text())
    doc["data"]["result"][1]["value"][1] = "NaN"
    doc["warnings"] = ["PromQL info: metric might not be a counter"]
    evidence = Evidence(text=json.dumps(doc))

    missed = prom.judge(
        evidence, Context(extra={"objective": {"op": "<=", "bound": 5}})
    )
    held = prom.judge(evidence, Context(extra={"objective": {"op": "<=", "bound": 9}}))

    assert set(missed.reasons) == {"no_data", "objective_missed"}
    assert missed.verdict is Verdict.FAIL
    assert held.reasons == ["no_data"]
    assert held.verdict is Verdict.INCONCLUSIVE
    assert any("might not be a counter" in h for h in held.hints)


def test_a_cut_answer_is_not_a_pass() -> None:
    f = judge("success_ratio_cut", **SLO)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


@pytest.mark.parametrize(
    ("window", "scrape", "short"),
    [("2s", "1s", True), ("4s", "1s", False), ("1m", 15, False), (30, "15s", True)],
)
def test_a_rate_window_under_four_scrape_intervals_is_a_harness_error(
    window: object, scrape: object, short: bool
) -> None:
    f = judge("rate_2s_window", window=window, scrape_interval=scrape)

    assert ("window_too_short" in f.reasons) is short
    assert (f.verdict is Verdict.HARNESS_ERROR) is short


def test_a_scalar_is_judged_and_a_string_is_no_data() -> None:
    assert judge("scalar", objective={"op": "==", "bound": 1}).verdict is Verdict.PASS
    assert judge("string", **SLO).reasons == ["no_data"]


def test_an_error_answer_other_than_bad_data_is_no_data() -> None:
    text = '{"status":"error","errorType":"timeout","error":"query timed out"}'

    f = prom.judge(Evidence(text=text), Context(extra=dict(SLO)))

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["no_data"]
    assert f.details["error_type"] == "timeout"


@pytest.mark.parametrize(
    "objective",
    [
        {"op": "about", "bound": "high"},
        {"op": ">=", "bound": "0.99"},
        "0.99",
        {"op": "<=", "bound": math.nan},
        {"op": "!=", "bound": math.nan},
        {"op": ">=", "bound": -math.inf},
    ],
)
def test_an_objective_that_cannot_be_used_is_a_harness_error(objective: object) -> None:
    f = judge("up_vector", objective=objective)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["objective_invalid"]
    assert "objective" not in f.details  # nothing was compared with the bound


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("15", 15), (60, 60)],
)
def test_durations_read_as_prometheus_writes_them(text: object, seconds: float) -> None:
    assert prom.seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1x", "s30", -5, True, "0s"])
def test_durations_that_are_not_durations_are_refused(text: object) -> None:
    assert prom.seconds(text) is None


def test_prometheus_answers_are_detected_and_other_json_is_not() -> None:
    assert prom.detect(Evidence.from_path(DATA / "up_matrix.json")) >= 0.9
    assert prom.detect(Evidence.from_path(DATA / "success_ratio_cut.json")) > 0
    assert prom.detect(Evidence(text='{"status": "success", "items": []}')) == 0.0
    assert prom.detect(Evidence(text='{"apiVersion": "v1", "kind": "List"}')) == 0.0


@pytest.mark.parametrize("text", ["1" * 1_000_000, "1s" * 500_000, "1." * 500_000])
def test_a_megabyte_long_window_is_refused(text: str) -> None:

    assert prom.seconds(text) is None


LONG_LINES = {
    "dots": "." * 1_000_000,
    "spaces": " " * 1_000_000,
    "status keys": '"status": "success", ' * 45_000,
    "open objects": '{"resultType":' * 70_000,
    "a vector of a megabyte": (
        '{"status":"success","data":{"resultType":"vector","result":['
        + ",".join(['{"metric":{},"value":[1,"1"]}'] * 33_000)
        + "]}}"
    ),
}


@pytest.mark.parametrize("text", LONG_LINES.values(), ids=LONG_LINES.keys())
def test_a_megabyte_line_is_detected_and_judged(text: str) -> None:

    prom.detect(Evidence(text=text))
    f = prom.judge(Evidence(text=text), Context(extra=dict(SLO)))

    assert f.reasons or f.details["series"] == 33_000  # only the vector passes


def test_a_caller_that_judges_the_values_itself_gets_them_as_a_pass() -> None:
    f = judge("up_vector", values_only=True)

    assert f.verdict is Verdict.PASS
    assert f.details["max"] == 1.0


def test_values_only_never_turns_an_empty_answer_into_a_pass() -> None:
    assert judge("empty_vector", values_only=True).reasons == ["no_data"]
    assert judge("nan_ratio", values_only=True).reasons == ["no_data"]
