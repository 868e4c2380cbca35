"""The report a reviewer opens: every verdict, per layer, in real Allure and Chromium.

The harness (see ``harness.py``) runs twice with ``--alluredir``, each run followed
by ``meshstack report`` into the same history file; the second report is opened in
headless Chromium and what its scripts drew is checked: the tree by layer, the
categories, the environment, and the first run carried as history.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.report import browser, pictures
from tests.report.harness import (
    EXPECTED_VERDICTS,
    LAYER_VERSION,
    PROBE_REASONS,
    VERDICT_SUITES,
    allure_installed,
    labels,
    read_results,
    run_pytest,
    run_report,
    write_harness,
)
from tests.report.pictures import nonuniform_fraction

pytestmark = [
    pytest.mark.skipif(
        not allure_installed(),
        reason="the Allure 3 CLI is missing: run `npm install` in the checkout",
    ),
    pytest.mark.skipif(
        not browser.available(), reason="no chromium: apt-get install chromium"
    ),
]

# The largest single-file report accepted for 8 results.
MAX_REPORT_BYTES = 15 * 1024 * 1024


@dataclass
class Run:
    """One pytest run of the harness and the report built from it."""

    pytest: subprocess.CompletedProcess[str]
    results: Path
    page: Path
    history_lines: int


@dataclass
class Built:
    root: Path
    history: Path
    runs: list[Run] = field(default_factory=list)

    @property
    def last(self) -> Run:
        return self.runs[-1]


def _run_and_report(root: Path, history: Path, n: int) -> Run:
    results, out = root / f"results-{n}", root / f"report-{n}"
    ran = run_pytest(root, "suites", "--stack=fresh", f"--alluredir={results}")
    # Checks fail by design (see harness.py); anything else means the run broke.
    assert ran.returncode == pytest.ExitCode.TESTS_FAILED, ran.stdout + ran.stderr
    made = run_report(
        root, "--results", str(results), "--output", str(out),
        "--history", str(history),
    )  # fmt: skip
    assert made.returncode == 0, f"meshstack report failed:\n{made.stderr}"
    assert "network" not in made.stderr, made.stderr
    lines = len(history.read_text().splitlines())
    return Run(ran, results, out / "index.html", lines)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The harness run twice, each run reported into one history file."""
    root = write_harness(
        tmp_path_factory.mktemp("report"), VERDICT_SUITES, PROBE_REASONS
    )
    built = Built(root, root / "history" / "history.jsonl")
    for n in (1, 2):
        built.runs.append(_run_and_report(root, built.history, n))
    return built


@pytest.fixture(scope="module")
def page(built: Built) -> browser.Dom:
    """The second report's front page, as Chromium rendered it."""
    html = built.last.page.read_text(encoding="utf-8")
    browser.assert_self_contained(html, built.last.page)
    return browser.dump_dom(built.last.page)


def _by_name(results: Path) -> dict[str, dict[str, object]]:
    return {str(r["name"]): r for r in read_results(results)}


def test_the_harness_run_ends_in_every_verdict_with_its_pytest_outcome(
    built: Built,
) -> None:
    out = built.last.pytest.stdout
    assert built.last.pytest.returncode == pytest.ExitCode.TESTS_FAILED, out
    summary = out.strip().splitlines()[-1]
    for part in ("4 failed", "2 passed", "1 skipped", "1 error"):
        assert part in summary, f"expected {part!r} in the summary line: {summary}"
    statuses = {n: r["status"] for n, r in _by_name(built.last.results).items()}
    assert statuses == {
        "test_servers_answer": "passed",
        "test_overlay_path_is_direct": "passed",
        "test_nodes_are_ready": "failed",
        "test_node_metrics_exist": "failed",
        "test_address_load_reached_its_rate": "broken",
        "test_credentials_are_readable": "broken",
        "test_control_plane_is_ready": "failed",
        "test_emojivoto_answers": "skipped",
    }


def test_each_result_carries_its_layer_as_suite_and_its_verdict_as_tag(
    built: Built,
) -> None:
    layer_of = {t: layer for layer, ts in VERDICT_SUITES.items() for t in ts}
    results = _by_name(built.last.results)
    assert set(results) == set(EXPECTED_VERDICTS)
    for name, result in results.items():
        layer = layer_of[name]
        assert labels(result, "parentSuite") == [layer], name
        assert labels(result, "layer") == [layer], name
        assert EXPECTED_VERDICTS[name] in labels(result, "tag"), name


def test_the_results_environment_names_profile_versions_and_run_id(
    built: Built,
) -> None:
    props = (built.last.results / "environment.properties").read_text()
    env = dict(line.split("=", 1) for line in props.splitlines() if "=" in line)
    assert env["profile"] == str(built.root / "stacks" / "local.yaml")
    assert env["profile.name"] == "report-selftest"
    assert re.fullmatch(r"ms-\d{8}-\d{6}-[0-9a-f]{4}", env["run.id"]), env["run.id"]
    assert env["meshstack"] and env["python"]
    assert env["cloud.version"] == LAYER_VERSION
    assert env["health.mesh"] == "FAIL control_plane_not_ready"
    assert "harness.problems" not in env


def test_the_report_is_one_self_contained_html_file_of_bounded_size(
    built: Built,
) -> None:
    page = built.last.page
    assert sorted(p.name for p in page.parent.glob("*.html")) == ["index.html"]
    size = page.stat().st_size
    assert 100_000 < size < MAX_REPORT_BYTES, f"{page}: {size} bytes"
    html = page.read_text(encoding="utf-8")
    browser.assert_self_contained(html, page)
    assert "googletagmanager" not in html


def test_the_rendered_report_groups_the_tests_by_layer(page: browser.Dom) -> None:
    sections = browser.sections(page)
    assert {"apps", "cloud", "cluster", "lb", "mesh"} <= set(sections)
    counts = {layer: browser.status_counts(sections[layer]) for layer in VERDICT_SUITES}
    assert counts == {
        "cloud": {"passed": 2},
        "cluster": {"failed": 2},
        "lb": {"broken": 2},
        "mesh": {"failed": 1},
        "apps": {"skipped": 1},
    }
    # Groups holding failures open by themselves: their tests are on the page.
    leaves = set(page.texts("tree-leaf-title"))
    assert {"test_nodes_are_ready", "test_control_plane_is_ready"} <= leaves
    assert page.texts("nav-tab-results") == ["Results 8"]


def test_the_rendered_categories_file_each_verdict_under_its_own(
    built: Built,
) -> None:
    dom = browser.dump_dom(built.last.page, "#categories")
    sections = browser.sections(dom)
    expected = {
        "warnings": {"test_overlay_path_is_direct"},
        "inconclusive": {"test_node_metrics_exist"},
        "invalid runs": {"test_address_load_reached_its_rate"},
        "harness errors": {"test_credentials_are_readable"},
        "blocked by a lower layer": {"test_emojivoto_answers"},
        "stack failures": {"test_nodes_are_ready", "test_control_plane_is_ready"},
    }
    layer_of = {t: layer for layer, ts in VERDICT_SUITES.items() for t in ts}
    for category, tests in expected.items():
        assert category in sections, f"no category {category!r} in {list(sections)}"
        assert set(browser.leaf_titles(sections[category])) == tests, category
        # Within a category, the tests are grouped by layer.
        inner = browser.sections(sections[category])
        for test in tests:
            group = inner.get(f"Layer {layer_of[test]}")
            assert group is not None, f"{category}: no group for {test} in {inner}"
            assert test in browser.leaf_titles(group)
    assert "test_servers_answer" not in browser.leaf_titles(dom)


def test_the_rendered_environment_shows_profile_versions_and_run_id(
    built: Built, page: browser.Dom
) -> None:
    keys = page.texts("metadata-item-key")
    values = page.texts("metadata-item-value")
    shown = dict(zip(keys, values, strict=True))
    props = (built.last.results / "environment.properties").read_text()
    run_id = re.search(r"^run\.id=(.+)$", props, re.M)
    assert run_id is not None
    assert shown["run.id"] == run_id.group(1)
    assert shown["profile"] == str(built.root / "stacks" / "local.yaml")
    assert shown["profile.name"] == "report-selftest"
    assert shown["cloud.version"] == LAYER_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", shown["meshstack"]), shown


def _test_id(run: Run, name: str) -> str:
    """The report's id for test ``name`` (its page is ``#<id>``)."""
    index = json.loads((run.page.parent / "test-results.json").read_text())
    ids = [i for i, tr in index["byId"].items() if tr["name"] == name]
    assert len(ids) == 1, f"{name}: {ids} in {run.page.parent}/test-results.json"
    return ids[0]


def test_each_report_appends_one_run_to_the_history_file(built: Built) -> None:
    assert [run.history_lines for run in built.runs] == [1, 2]
    entries = [json.loads(line) for line in built.history.read_text().splitlines()]
    for entry in entries:
        names = {tr["name"] for tr in entry["testResults"].values()}
        assert names == set(EXPECTED_VERDICTS)


def test_the_second_report_draws_the_first_run_in_its_trend(built: Built) -> None:
    first = browser.trend_points(browser.dump_dom(built.runs[0].page, "#charts"))
    second = browser.trend_points(browser.dump_dom(built.last.page, "#charts"))
    assert first == [], first  # no past run: nothing to draw a trend from
    assert len(second) == 2 and second[-1] == "Latest", second
    assert re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", second[0]), second


def test_the_second_report_lists_the_first_run_in_a_tests_history(
    built: Built,
) -> None:
    name = "test_overlay_path_is_direct"
    pages = [
        browser.dump_dom(run.page, f"#{_test_id(run, name)}/history")
        for run in built.runs
    ]
    for dom in pages:
        assert dom.find_all("test-result-tab-history"), "no History tab drawn"
        assert name in dom.texts("test-result-info-title")
    assert [len(d.find_all("test-result-history-item")) for d in pages] == [0, 1]
    assert pages[1].find_all("tree-leaf-status-passed")


def test_the_report_really_draws_in_chromium(
    built: Built, tmp_path: pytest.TempPathFactory
) -> None:
    out = Path(str(tmp_path)) / "report.png"
    shot = browser.screenshot(built.last.page, out, "#categories")
    blank_page = Path(str(tmp_path)) / "blank.html"
    blank_page.write_text("<!DOCTYPE html><html><body></body></html>")
    blank = browser.screenshot(blank_page, Path(str(tmp_path)) / "blank.png")
    assert pictures.size(shot) == pictures.size(blank)
    drawn, empty = pictures.nonuniform_fraction(shot), nonuniform_fraction(blank)
    assert drawn > 0.01 > empty, f"report {drawn:.4f} vs blank page {empty:.4f}"
