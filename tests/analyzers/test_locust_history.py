"""The locust-history analyzer judges the achieved rate from counts, not Requests/s.

Fixtures (tests/analyzers/data/locust-history/):

* ``c24_unthrottled_3_workers.csv``: case C24 reproduced with real Locust 2.47 on
  loopback: 10 users with ``constant_throughput(12.6)`` (the rate an unthrottled
  fallback reached in the case), ``--processes 3``, 100 s; about 125 rps where the
  profile meant 10 users x 0.01 = 0.1 rps. ``c24_unthrottled_cut.csv`` is its first
  40 rows with the 41st cut mid-line.
* ``v1_0b_layout_c24_unthrottled.csv``: the same run re-laid out in the header Locust
  1.0's betas wrote (``User count``, ``# requests``; taken from Locust's source).
* ``healthy_20rps_ramp_then_plateau.csv``: real, 10 users x 2 rps, spawn rate 2/s.
* ``v0_14_layout_healthy_20rps.csv``: that run in Locust 0.14's layout (no user
  count, ``Type,Name,Timestamp,# requests,...``, all text quoted).
* ``healthy_full_history_two_routes.csv``: real, ``--csv-full-history``, two routes.
* ``c25_three_requests.csv``: real, one user at 0.2 rps for 15 s, half failing.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import locust_history as history
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data" / "locust-history"


def judge(name: str, **ctx: object) -> Finding:
    return history.judge(Evidence.from_path(DATA / name), Context(**ctx))  # type: ignore[arg-type]


def judge_text(text: str, **ctx: object) -> Finding:
    return history.judge(Evidence(text=text), Context(**ctx))  # type: ignore[arg-type]


def test_c24_unthrottled_load_is_an_invalid_run_over_by_about_1250_times() -> None:
    f = judge("c24_unthrottled_3_workers.csv", target_rps=0.1)

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "over"
    assert 1150 < f.details["ratio"] < 1350
    assert 120 < f.details["achieved_rps"] < 130
    assert f.details["requests"] > 10_000


def test_a_cut_copy_of_c24_still_reads_over_and_says_a_row_was_damaged() -> None:
    f = judge("c24_unthrottled_cut.csv", target_rps=0.1)

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "over"
    assert any("could not be read" in h for h in f.hints)


def test_the_1_0_beta_layout_of_c24_gives_the_same_verdict() -> None:
    f = judge("v1_0b_layout_c24_unthrottled.csv", target_rps=0.1)

    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "over"
    assert 1150 < f.details["ratio"] < 1350


def test_a_paced_run_at_its_target_passes_over_the_plateau() -> None:
    f = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=20)

    assert f.verdict is Verdict.PASS, f.hints
    assert f.details["window"]["chosen"] == "plateau at 10 users"
    assert 19.0 <= f.details["achieved_rps"] <= 21.0
    assert len(f.evidence) == 2


def test_the_requests_per_second_column_is_never_used_for_the_rate() -> None:
    text = (DATA / "healthy_20rps_ramp_then_plateau.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    col = rows[0].index("Requests/s")
    for row in rows[1:]:
        row[col] = str(float(row[col]) * 10)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)

    original = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=20)
    inflated = judge_text(out.getvalue(), target_rps=20)

    assert inflated.details["achieved_rps"] == original.details["achieved_rps"]
    assert inflated.verdict is Verdict.PASS


def test_a_target_twice_the_achieved_rate_is_under() -> None:
    f = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=40)

    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "under"
    assert 0.45 < f.details["ratio"] < 0.55


@pytest.mark.parametrize(
    ("tolerance", "verdict"), [(0.06, Verdict.PASS), (0.02, Verdict.INVALID_RUN)]
)
def test_the_tolerance_decides_a_rate_4_percent_off(
    tolerance: float, verdict: Verdict
) -> None:
    achieved = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=20)
    target = achieved.details["achieved_rps"] / 0.96

    f = judge(
        "healthy_20rps_ramp_then_plateau.csv", target_rps=target, tolerance=tolerance
    )

    assert f.verdict is verdict


def test_the_0_14_layout_without_user_count_judges_the_whole_file_with_its_ramp() -> (
    None
):
    f = judge("v0_14_layout_healthy_20rps.csv", target_rps=20)

    assert f.details["window"]["chosen"].startswith("whole file")
    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "under"


def test_a_ramp_given_in_the_context_cuts_it_off_the_window() -> None:
    f = judge("v0_14_layout_healthy_20rps.csv", target_rps=20, extra={"ramp": 5})

    assert f.verdict is Verdict.PASS, f.hints
    assert f.details["window"]["chosen"] == "after ramp given"
    assert 19.0 <= f.details["achieved_rps"] <= 21.0


def test_an_explicit_window_is_used_as_given() -> None:
    window = {"window_start": 1796400710, "window_end": 1796400720}

    f = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=20, extra=window)

    assert f.details["window"]["start"] == 1796400710
    assert f.details["window"]["end"] == 1796400720
    assert f.details["window"]["chosen"] == "window given"


def test_a_window_given_as_rfc3339_times_is_the_same_window() -> None:
    window = {
        "window_start": "2026-12-04T16:11:50+00:00",
        "window_end": datetime(2026, 12, 4, 16, 12, 0, tzinfo=UTC),
    }

    f = judge("healthy_20rps_ramp_then_plateau.csv", target_rps=20, extra=window)

    assert f.details["window"]["start"] == 1796400710
    assert f.details["window"]["end"] == 1796400720


def test_without_a_target_the_verdict_is_inconclusive_naming_the_option() -> None:
    f = judge("healthy_20rps_ramp_then_plateau.csv")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert any("--target-rps" in h for h in f.hints)


def test_without_a_target_a_tiny_sample_is_still_judged_invalid() -> None:
    f = judge("c25_three_requests.csv")

    assert f.verdict is Verdict.INVALID_RUN
    assert set(f.reasons) == {"min_sample", "context_missing"}
    assert f.details["requests"] == 2
    assert f.details["failures"] == 1


def test_a_lower_minimum_accepts_the_same_small_sample() -> None:
    f = judge("c25_three_requests.csv", min_sample=2, target_rps=0.15, tolerance=0.1)

    assert "min_sample" not in f.reasons
    assert f.verdict is Verdict.PASS


def test_a_run_that_sent_nothing_is_min_sample_not_no_data() -> None:
    header = (DATA / "healthy_20rps_ramp_then_plateau.csv").read_text().splitlines()[0]
    rows = [
        f"{1700000000 + i},10,,Aggregated,0,0,{'N/A,' * 11}0,0,0,0,0,0,0"
        for i in range(5)
    ]

    for text in (header + "\n", "\n".join([header, *rows]) + "\n"):
        f = judge_text(text, target_rps=20)
        assert "min_sample" in f.reasons
        assert f.verdict is Verdict.INVALID_RUN
        assert "no_data" not in f.reasons


def test_full_history_judges_only_the_aggregated_rows() -> None:
    f = judge("healthy_full_history_two_routes.csv", target_rps=20)

    assert f.verdict is Verdict.PASS, f.hints
    assert all(",Aggregated," in line for line in f.evidence)


def test_an_endpoint_named_total_is_not_taken_for_the_sum() -> None:
    text = (DATA / "healthy_full_history_two_routes.csv").read_text()
    renamed = text.replace(",GET,/,", ",GET,Total,")
    assert renamed != text

    f = judge_text(renamed, target_rps=20)

    assert (
        f.details == judge("healthy_full_history_two_routes.csv", target_rps=20).details
    )


def test_a_stats_reset_inside_the_window_is_judged_after_the_reset() -> None:
    lines = (DATA / "healthy_20rps_ramp_then_plateau.csv").read_text().splitlines()
    reset = 15
    rows = list(csv.reader(lines))
    col = rows[0].index("Total Request Count")
    base = int(rows[reset][col])
    for row in rows[reset:]:
        row[col] = str(int(row[col]) - base)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)

    f = judge_text(out.getvalue(), target_rps=20, min_sample=10)

    assert any("dropped" in h for h in f.hints)
    assert f.details["window"]["start"] == float(rows[reset][0])
    assert f.verdict is Verdict.PASS


def test_the_history_file_is_detected_and_a_stats_file_is_not() -> None:
    hist = Evidence.from_path(DATA / "c24_unthrottled_3_workers.csv")
    stats = Evidence.from_path(DATA.parent / "locust-stats" / "healthy_20rps.csv")

    assert history.detect(hist) >= 0.9
    assert history.detect(stats) == 0.0
    assert history.detect(Evidence(text="Timestamp,Name\n1,2\n")) == 0.0


def test_a_stats_file_judged_as_history_is_unrecognised_input() -> None:
    stats = Evidence.from_path(DATA.parent / "locust-stats" / "healthy_20rps.csv")

    f = history.judge(stats, Context(target_rps=20))

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


def _every_request_failed(text: str) -> str:
    """The same history with each row's failure count set to its request count."""
    rows = list(csv.reader(io.StringIO(text)))
    req = rows[0].index("Total Request Count")
    fail = rows[0].index("Total Failure Count")
    for row in rows[1:]:
        row[fail] = row[req]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_a_window_whose_every_request_failed_keeps_the_rate_verdict_with_a_hint() -> (
    None
):
    # Failures are the SLO layer's to judge; the load was applied at its rate.
    text = (DATA / "healthy_20rps_ramp_then_plateau.csv").read_text()

    f = judge_text(_every_request_failed(text), target_rps=20)

    assert f.verdict is Verdict.PASS
    assert f.details["failures"] == f.details["requests"] > 100
    assert f.details["all_failed"] is True
    assert any("every request failed" in h and "slo" in h for h in f.hints)


def test_a_window_with_some_failures_gets_no_all_failed_hint() -> None:
    f = judge("c25_three_requests.csv")

    assert "all_failed" not in f.details
    assert not any("every request failed" in h for h in f.hints)


@pytest.mark.parametrize(
    "line",
    ["." * 1_000_000, " " * 1_000_000, '"' * 1_000_000, "1," * 500_000],
    ids=["dots", "spaces", "quotes", "cells"],
)
def test_a_megabyte_row_is_detected_and_judged(line: str) -> None:
    header = (DATA / "c25_three_requests.csv").read_text().splitlines()[0]
    evidence = Evidence(text=f"{header}\n{line}\n")

    history.detect(Evidence(text=line))
    f = history.judge(evidence, Context())

    assert f.kind == "locust-history"
