"""``meshstack report`` when it cannot build a report: clear messages, distinct exits.

Each case runs the real command in its own process. Exit status 3 means the results
are not usable, 2 that Allure is missing or failed, 4 a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meshstack.cli import report
from meshstack.pytest import reporting
from tests.report.harness import allure_installed, clean_env, run_report

EXIT_OPERATION, EXIT_HARNESS, EXIT_USAGE = 2, 3, 4


def _args(tmp_path: Path, results: Path) -> list[str]:
    return [
        "--results", str(results), "--output", str(tmp_path / "out"),
        "--history", str(tmp_path / "history" / "history.jsonl"),
    ]  # fmt: skip


def _one_result(directory: Path, uuid: str = "1") -> Path:
    """A minimal allure-results directory: one passed result."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = {"uuid": uuid, "name": "test_x", "fullName": "t#test_x", "status": "passed"}
    (directory / f"{uuid}-result.json").write_text(json.dumps(doc))
    return directory


def test_an_empty_results_directory_exits_3_saying_to_run_with_alluredir(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "results"
    empty.mkdir()
    made = run_report(tmp_path, *_args(tmp_path, empty))
    assert made.returncode == EXIT_HARNESS, made.stderr
    assert f"{empty}: no Allure results (*-result.json) here" in made.stderr
    assert "run the suites with --alluredir first" in made.stderr
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "history").exists()


def test_a_missing_results_directory_exits_3(tmp_path: Path) -> None:
    made = run_report(tmp_path, *_args(tmp_path, tmp_path / "nowhere"))
    assert made.returncode == EXIT_HARNESS, made.stderr
    assert "nowhere: no Allure results" in made.stderr


def test_allure_named_but_absent_exits_2_with_the_install_hint(
    tmp_path: Path,
) -> None:
    absent = tmp_path / "no" / "allure"
    env = clean_env(MESHSTACK_ALLURE=str(absent))
    made = run_report(tmp_path, *_args(tmp_path, _one_result(tmp_path / "r")), env=env)
    assert made.returncode == EXIT_OPERATION, made.stderr
    assert f"MESHSTACK_ALLURE={absent} is not an executable file" in made.stderr
    assert "npm install --no-audit --no-fund" in made.stderr
    assert not (tmp_path / "out").exists()


def test_allure_that_fails_exits_2_quoting_its_command_and_output(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "allure"
    broken.write_text("#!/bin/sh\necho 'config rejected: bad key' >&2\nexit 7\n")
    broken.chmod(0o755)
    env = clean_env(MESHSTACK_ALLURE=str(broken))
    made = run_report(tmp_path, *_args(tmp_path, _one_result(tmp_path / "r")), env=env)
    assert made.returncode == EXIT_OPERATION, made.stderr
    assert f"`{broken} generate --config" in made.stderr
    assert "exited 7" in made.stderr and "config rejected: bad key" in made.stderr


def test_the_same_directory_for_results_and_output_is_a_usage_error(
    tmp_path: Path,
) -> None:
    results = _one_result(tmp_path / "r")
    made = run_report(
        tmp_path, "--results", str(results), "--output", str(results),
        "--history", str(tmp_path / "h.jsonl"),
    )  # fmt: skip
    assert made.returncode == EXIT_USAGE, made.stderr
    assert "--output must differ from --results" in made.stderr


def test_the_runs_categories_reach_allure_3_in_its_own_form(tmp_path: Path) -> None:
    (tmp_path / "categories.json").write_text(json.dumps(reporting.CATEGORIES))
    rules = report.categories(tmp_path)
    assert [r["name"] for r in rules] == [c["name"] for c in reporting.CATEGORIES]
    for rule, source in zip(rules, reporting.CATEGORIES, strict=True):
        assert rule["matchers"]["statuses"] == source["matchedStatuses"]
        assert not rule["matchers"]["message"].startswith("(?s)")
        assert rule["groupBy"] == ["layer"]
    warnings = rules[0]["matchers"]["message"]
    assert warnings == ".*WARN.*"


def test_results_without_categories_leave_allure_its_defaults(
    tmp_path: Path,
) -> None:
    assert report.categories(tmp_path) == []


# The tag as Allure 3.18's awesome template writes it, re-typed from its output.
ANALYTICS = (
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>\n'
    "    <script>\n  window.dataLayer = [];\n"
    "  function gtag(){dataLayer.push(arguments);}\n  gtag('js', new Date());\n"
    "</script>"
)


def test_the_analytics_tag_is_cut_from_the_report(tmp_path: Path) -> None:
    index = tmp_path / "index.html"
    keep = "<script>window.allure = {};</script>"
    index.write_text(f"<html><body>{keep}\n{ANALYTICS}\n{keep}</body></html>")
    report._strip_analytics(index)
    text = index.read_text()
    assert "googletagmanager" not in text and "gtag" not in text
    assert text.count(keep) == 2


@pytest.mark.skipif(not allure_installed(), reason="run `npm install` in the checkout")
def test_the_history_file_keeps_only_the_last_runs_it_is_limited_to(
    tmp_path: Path,
) -> None:
    history = tmp_path / "h.jsonl"
    runs: list[str] = []
    for n in range(3):
        results = _one_result(tmp_path / f"r{n}", uuid=str(n))  # a run of its own
        made = run_report(
            tmp_path, "--results", str(results), "--output", str(tmp_path / f"o{n}"),
            "--history", str(history), "--history-limit", "2",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        kept = [json.loads(line)["uuid"] for line in history.read_text().splitlines()]
        runs.append(kept[-1])
        assert kept == runs[-2:], f"after report {n + 1}: {kept}, all runs {runs}"


@pytest.mark.skipif(not allure_installed(), reason="run `npm install` in the checkout")
def test_a_report_built_again_from_the_same_results_is_one_run_in_the_history(
    tmp_path: Path,
) -> None:
    history = tmp_path / "h.jsonl"
    for n, results in enumerate(
        [_one_result(tmp_path / "a", uuid="a")] * 2
        + [_one_result(tmp_path / "b", uuid="b")]
    ):
        made = run_report(
            tmp_path, "--results", str(results), "--output", str(tmp_path / f"o{n}"),
            "--history", str(history),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(entries) == 2, [e["uuid"] for e in entries]


def test_a_history_limit_below_one_is_a_usage_error(tmp_path: Path) -> None:
    made = run_report(
        tmp_path, *_args(tmp_path, _one_result(tmp_path / "r")), "--history-limit", "0"
    )
    assert made.returncode == EXIT_USAGE, made.stderr
    assert "--history-limit=0: expected a whole number of runs" in made.stderr
