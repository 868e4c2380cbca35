"""C27: results that Allure would merge are a harness problem of the run, not a pass.

Allure shows one test per historyId (built from the full name and parameters) and
files the others as retries; the same test run by two xdist workers (``--dist
each``) therefore shows once. The plugin checks the allure-results after the run:
such a run prints a harness problem in its summary and exits non-zero, while an
ordinary ``-n 2`` run (each layer's checks on one worker) keeps one result per
collected item and passes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.verdicts import Verdict
from tests.report.harness import (
    REPO,
    allure_installed,
    labels,
    read_results,
    run_report,
    write_harness,
)

ALL_PASS: dict[str, dict[str, str | None]] = {
    layer: {f"test_{layer}_holds": ""} for layer in ("cloud", "cluster", "mesh")
}


@pytest.fixture
def harness(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A harness checkout of three passing layers in pytester's directory."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    for name in ("MESHSTACK_STACK", "MESHSTACK_KEEP_STACK", "MESHSTACK_STACK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return write_harness(pytester.path, ALL_PASS)


def _distinct(results: list[dict[str, object]]) -> set[tuple[str, str]]:
    return {
        (str(r["fullName"]), json.dumps(r.get("parameters", []), sort_keys=True))
        for r in results
    }


def _workers(results: list[dict[str, object]]) -> set[str]:
    return {value for r in results for value in labels(r, "thread")}


def test_a_test_run_on_two_workers_is_reported_collapsed_and_fails_the_run(
    pytester: pytest.Pytester, harness: Path
) -> None:
    results_dir = harness / "results"
    result = pytester.runpytest_subprocess(
        "suites", "--stack=fresh", "-n", "2", "--dist", "each",
        f"--alluredir={results_dir}",
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*harness problem: allure results: report HARNESS-ERROR (report_collapsed)*"]
    )
    results = read_results(results_dir)
    assert len(results) == 6 and len(_distinct(results)) == 3
    assert len(_workers(results)) == 2
    props = (results_dir / "environment.properties").read_text()
    assert re.search(r"^harness\.problems=.*report_collapsed", props, re.M), props


@pytest.mark.skipif(not allure_installed(), reason="run `npm install` in the checkout")
def test_allure_itself_shows_each_collapsed_test_once(
    pytester: pytest.Pytester, harness: Path
) -> None:
    """Why the check exists: the real Allure turns the second runs into retries."""
    results_dir = harness / "results"
    pytester.runpytest_subprocess(
        "suites", "--stack=fresh", "-n", "2", "--dist", "each",
        f"--alluredir={results_dir}",
    )  # fmt: skip
    assert len(read_results(results_dir)) == 6
    made = run_report(
        harness, "--results", str(results_dir), "--output", str(harness / "out"),
        "--history", str(harness / "history.jsonl"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    summary = json.loads((harness / "out" / "summary.json").read_text())
    assert summary["stats"]["total"] == 3, summary["stats"]


def test_an_ordinary_two_worker_run_keeps_one_result_per_collected_item(
    pytester: pytest.Pytester, harness: Path
) -> None:
    results_dir = harness / "results"
    result = pytester.runpytest_subprocess(
        "suites", "--stack=fresh", "-n", "2", f"--alluredir={results_dir}"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "harness problem" not in result.stdout.str()
    collected = re.search(r"\[(\d+) items?\]", result.stdout.str())
    assert collected is not None, result.stdout.str()
    results = read_results(results_dir)
    assert len(_distinct(results)) == len(results) == int(collected.group(1)) == 3
    # Both workers ran checks, so the run could have collapsed and did not.
    assert len(_workers(results)) == 2
    # Results written by either worker are labelled with their layer and verdict.
    for r in results:
        layer = str(r["fullName"]).split(".")[1]
        assert labels(r, "parentSuite") == [layer] and "PASS" in labels(r, "tag")
    finding = analyzers.get("allure-results").judge(
        Evidence(text="", name=str(results_dir), path=results_dir),
        Context(extra={"expected_results": 3}),
    )
    assert finding.verdict is Verdict.PASS, finding.summary()
    props = (results_dir / "environment.properties").read_text()
    assert "harness.problems" not in props
