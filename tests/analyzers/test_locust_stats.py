"""The locust-stats analyzer counts requests by header name, in every Locust layout.

Fixtures (tests/analyzers/data/locust-stats/), all from real Locust 2.47 runs on
loopback unless said otherwise:

* ``healthy_20rps.csv``: 10 users x 2 rps for 30 s; ``healthy_two_routes.csv``: the
  same rate over two routes;
* ``c24_unthrottled_3_workers.csv``: case C24 reproduced (about 125 rps for 100 s);
* ``c25_three_requests.csv``: case C25 reproduced (one user, 0.2 rps, half failing);
* ``healthy_cut_before_total.csv``: the healthy file cut inside its first data row;
* ``v0_14_layout_healthy_20rps.csv``, ``v0_11_layout_c25_three_requests.csv``: the
  same runs written in the headers of Locust 0.14 (``# requests``, ``Requests
  Failed/s``) and 0.11 (``Method``, total row named ``Total``), from Locust's source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import locust_stats as stats
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data" / "locust-stats"

# Real ``c25_failures.csv`` from the C25 reproduction: another Locust CSV, not stats.
FAILURES_CSV = (
    "Method,Name,Error,Occurrences\n"
    "GET,/missing,HTTPError('404 Client Error: File not found for url: /missing'),1\n"
)


def judge(name: str, **ctx: object) -> Finding:
    return stats.judge(Evidence.from_path(DATA / name), Context(**ctx))  # type: ignore[arg-type]


def test_a_healthy_run_passes_and_says_the_rate_is_not_judged_here() -> None:
    f = judge("healthy_20rps.csv", target_rps=20)

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] == 535
    assert any("history" in h for h in f.hints)
    assert "achieved_rps" not in f.details


def test_c25_three_requests_are_min_sample_and_failures_are_only_evidence() -> None:
    f = judge("c25_three_requests.csv")

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]
    assert f.details["requests"] == 3
    assert f.details["failures"] == 1
    assert any("/missing" in line for line in f.evidence)


def test_the_0_11_layout_with_a_total_row_gives_the_same_verdict() -> None:
    f = judge("v0_11_layout_c25_three_requests.csv")

    assert f.reasons == ["min_sample"]
    assert f.details["requests"] == 3
    assert f.details["failures"] == 1


def test_the_0_14_layout_of_a_healthy_run_passes() -> None:
    f = judge("v0_14_layout_healthy_20rps.csv")

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] == 535


def test_with_a_duration_c24_is_over_its_target() -> None:
    f = judge("c24_unthrottled_3_workers.csv", target_rps=0.1, extra={"duration": 100})

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["rate_out_of_tolerance"]
    assert f.details["direction"] == "over"
    assert f.details["achieved_rps"] == f.details["requests"] / 100


def test_the_rate_comes_from_the_count_never_from_requests_per_second() -> None:
    f = judge("healthy_20rps.csv", target_rps=20, extra={"duration": 535 / 20})

    assert f.verdict is Verdict.PASS
    assert f.details["achieved_rps"] == 20.0
    assert f.details["reported_rps_unused"] != 20.0


def test_failed_requests_with_enough_of_a_sample_still_pass_as_load() -> None:
    text = (DATA / "healthy_20rps.csv").read_text().replace(",535,0,", ",535,10,")

    f = stats.judge(Evidence(text=text), Context())

    assert f.verdict is Verdict.PASS
    assert f.details["failures"] == 10
    assert any("10 requests failed" in h for h in f.hints)


def test_a_file_cut_before_its_total_row_is_not_a_pass() -> None:
    f = judge("healthy_cut_before_total.csv")

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]


def test_only_stats_files_are_detected() -> None:
    history = DATA.parent / "locust-history" / "healthy_20rps_ramp_then_plateau.csv"

    assert (
        stats.detect(Evidence.from_path(DATA / "v0_11_layout_c25_three_requests.csv"))
        >= 0.9
    )
    assert stats.detect(Evidence.from_path(history)) == 0.0
    assert stats.detect(Evidence(text=FAILURES_CSV)) == 0.0


def test_a_failures_file_judged_as_stats_is_unrecognised_input() -> None:
    f = stats.judge(Evidence(text=FAILURES_CSV), Context())

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


def test_a_run_whose_every_request_failed_keeps_its_sample_verdict_with_a_hint() -> (
    None
):
    text = (DATA / "healthy_20rps.csv").read_text().replace(",535,0,", ",535,535,")

    f = stats.judge(Evidence(text=text), Context())

    assert f.verdict is Verdict.PASS
    assert f.details["failures"] == 535
    assert f.details["all_failed"] is True
    assert any("every request failed (535 of 535)" in h for h in f.hints)


@pytest.mark.parametrize(
    "line",
    ["." * 1_000_000, " " * 1_000_000, '"' * 1_000_000, ",Aggregated" * 90_000],
    ids=["dots", "spaces", "quotes", "cells"],
)
def test_a_megabyte_row_is_detected_and_judged(line: str) -> None:
    header = (DATA / "healthy_20rps.csv").read_text().splitlines()[0]
    evidence = Evidence(text=f"{header}\n{line}\n")

    stats.detect(Evidence(text=line))
    f = stats.judge(evidence, Context())

    assert f.kind == "locust-stats"
