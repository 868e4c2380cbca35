"""The allure-results analyzer finds results the tooling collapsed or skipped.

Every directory in tests/analyzers/data/allure-results/ is real allure-pytest 2.16.2
output (pytest 9.2, pytest-xdist 3.8, pytest-dependency 0.6.1) on this machine:

* ``c27_dist_each_collapsed``: case C27, ``--dist=each -n 2`` over two tests: every
  test twice, same historyId, two workers;
* ``c27_dist_each_parametrized_collapsed``: the same with tests parametrized by site:
  parameters do not help when every worker runs every item;
* ``healthy_parametrized_by_site``: those tests under ``-n 2`` (load): each once;
* ``c28_dependency_on_other_worker``: case C28, ``-n 2``: the dependant skipped on
  one worker although its dependency passed on the other;
* ``c28_session_scope_other_worker``: the same with a session-scoped dependency named
  by node id;
* ``c28_loadgroup_split_on_pytest9``: both tests marked with one ``xdist_group`` and
  run with ``--dist loadgroup``: they still landed on two workers;
* ``c28_dependency_one_process_passes``: C28's two tests without xdist: both pass;
* ``dependency_failed_same_worker``: the dependency failed, so the skip is the
  plugin doing its job;
* ``healthy_with_blocked_skip``: one worker, one meshstack gate skip ("BLOCKED: ...").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import allure_results as allure
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data" / "allure-results"


def judge(path: Path, **extra: object) -> Finding:
    return allure.judge(Evidence.from_path(path), Context(extra=dict(extra)))


@pytest.mark.parametrize(
    "name", ["c27_dist_each_collapsed", "c27_dist_each_parametrized_collapsed"]
)
def test_the_same_test_from_two_workers_under_one_history_id_is_collapsed(
    name: str,
) -> None:
    f = judge(DATA / name)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["report_collapsed"]
    assert f.details["collapsed"] == 2
    assert f.details["results"] == 4
    assert f.details["distinct_tests"] == 2
    assert len(f.evidence) == 4


def test_tests_parametrized_by_site_and_run_once_each_pass() -> None:
    f = judge(DATA / "healthy_parametrized_by_site")

    assert f.verdict is Verdict.PASS
    assert f.details["distinct_tests"] == 2
    assert f.details["retries"] == 0


def test_fewer_distinct_tests_than_expected_is_collapsed() -> None:
    path = DATA / "healthy_parametrized_by_site"

    assert judge(path, expected_results=2).verdict is Verdict.PASS
    short = judge(path, expected_results=3)
    assert short.reasons == ["report_collapsed"]
    assert short.details["expected_results"] == 3


@pytest.mark.parametrize(
    "name",
    [
        "c28_dependency_on_other_worker",
        "c28_session_scope_other_worker",
        "c28_loadgroup_split_on_pytest9",
    ],
)
def test_a_dependency_skip_whose_dependency_passed_elsewhere_is_a_harness_error(
    name: str,
) -> None:
    f = judge(DATA / name)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["dependency_order_not_honoured"]
    assert f.details["skips"] == {"dependency_passed": 1}
    assert any("depends on" in line for line in f.evidence)
    assert any("passed" in line for line in f.evidence)


def test_the_same_dependency_chain_in_one_process_passes() -> None:
    f = judge(DATA / "c28_dependency_one_process_passes")

    assert f.verdict is Verdict.PASS
    assert f.details["statuses"] == {"passed": 2}
    assert f.details["skips"] == {}


def test_a_dependency_skip_after_its_dependency_failed_is_not_the_toolings_fault() -> (
    None
):
    f = judge(DATA / "dependency_failed_same_worker")

    assert f.verdict is Verdict.PASS
    assert f.details["skips"] == {"dependency_failed": 1}
    assert f.details["statuses"] == {"failed": 1, "skipped": 1}


def test_gate_skips_are_counted_apart_from_dependency_skips() -> None:
    f = judge(DATA / "healthy_with_blocked_skip")

    assert f.verdict is Verdict.PASS
    assert f.details["skips"] == {"blocked": 1}
    assert f.details["results"] == 6


def test_a_dependency_that_is_not_among_the_results_is_counted_as_not_run_here(
    tmp_path: Path,
) -> None:
    src = DATA / "c28_dependency_on_other_worker"
    for result in src.glob("*-result.json"):
        if json.loads(result.read_text())["status"] == "skipped":
            shutil.copy(result, tmp_path / result.name)

    f = judge(tmp_path)

    assert f.verdict is Verdict.PASS
    assert f.details["skips"] == {"dependency_not_run_here": 1}
    assert any("not among these results" in h for h in f.hints)


def test_reruns_by_one_worker_are_retries_not_a_collapse(tmp_path: Path) -> None:
    # Constructed from the real C27 results: both runs of one test given the same
    # worker, the first failed, as a rerun plugin would leave them.
    src = DATA / "c27_dist_each_collapsed"
    runs = [
        json.loads(p.read_text())
        for p in sorted(src.glob("*-result.json"))
        if json.loads(p.read_text())["name"] == "test_request_code"
    ]
    runs[1]["labels"] = runs[0]["labels"]
    runs[0]["status"], runs[0]["start"] = "failed", runs[1]["start"] - 1000
    for i, run in enumerate(runs):
        (tmp_path / f"run{i}-result.json").write_text(json.dumps(run))

    f = judge(tmp_path)

    assert f.verdict is Verdict.PASS
    assert f.details["retries"] == 1


def test_a_directory_without_result_files_is_unrecognised_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    containers = tmp_path / "containers"
    shutil.copytree(DATA / "c27_dist_each_collapsed", containers)
    for result in containers.glob("*-result.json"):
        result.unlink()

    assert allure.detect(Evidence.from_path(empty)) == 0.0
    assert 0 < allure.detect(Evidence.from_path(containers)) < 0.9
    for path in (empty, containers):
        f = judge(path)
        assert f.verdict is Verdict.HARNESS_ERROR
        assert f.reasons == ["unrecognised_input"]


@pytest.mark.parametrize(
    "name",
    [
        "c27_dist_each_collapsed",
        "c27_dist_each_parametrized_collapsed",
        "c28_dependency_on_other_worker",
    ],
)
@pytest.mark.parametrize("keep", [0.6, 0.8, 0.95])
def test_a_copy_with_a_result_file_cut_off_still_fails(
    name: str, keep: float, tmp_path: Path
) -> None:
    expected = judge(DATA / name).reasons
    for victim in sorted((DATA / name).glob("*-result.json")):
        copy = tmp_path / f"{victim.stem}-{keep}"
        shutil.copytree(DATA / name, copy)
        data = victim.read_bytes()
        (copy / victim.name).write_bytes(data[: int(len(data) * keep)])

        f = judge(copy)

        # Allure cannot parse the cut file, so the report loses it: never a pass.
        assert f.reasons == ["report_incomplete", *expected], f"{victim.name} cut"
        assert f.details["salvaged"] == [victim.name]


def test_a_result_file_with_nothing_readable_is_named_and_the_rest_judged(
    tmp_path: Path,
) -> None:
    shutil.copytree(DATA / "c28_dependency_on_other_worker", tmp_path / "r")
    (tmp_path / "r" / "broken-result.json").write_text('{"name": "test_x", "sta')
    (tmp_path / "r" / "cut-result.json").write_text('{"name": "test_y", "status": "pa')

    f = judge(tmp_path / "r")

    assert f.reasons == ["report_incomplete", "dependency_order_not_honoured"]
    assert f.details["unreadable"] == ["broken-result.json", "cut-result.json"]
    assert f.details["lost"] == 2


def _one_failed_test(directory: Path) -> Path:
    # The fresh user's input: one result written by hand, status failed.
    directory.mkdir()
    (directory / "1-result.json").write_text(
        '{"uuid":"1","historyId":"h","fullName":"t#a","status":"failed",'
        '"labels":[],"parameters":[]}\n'
    )
    return directory


def test_an_unreadable_result_beside_a_readable_one_is_report_incomplete(
    tmp_path: Path,
) -> None:
    results = _one_failed_test(tmp_path / "r")
    (results / "2-result.json").write_text("garbage{\n")

    f = judge(results)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["report_incomplete"]
    assert f.details["unreadable"] == ["2-result.json"]


def test_a_directory_whose_every_result_is_unreadable_is_report_incomplete(
    tmp_path: Path,
) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "1-result.json").write_text("garbage{\n")

    f = judge(tmp_path / "r")

    assert f.reasons == ["report_incomplete"]
    assert f.details["lost"] == 1


def test_failed_tests_are_named_but_do_not_decide_the_report_s_integrity(
    tmp_path: Path,
) -> None:
    f = judge(_one_failed_test(tmp_path / "r"))

    assert f.verdict is Verdict.PASS
    assert f.details["statuses"] == {"failed": 1}
    assert f.details["failed"] == ["1-result.json: t#a failed [unknown worker]"]
    assert any("1 tests failed or broke" in h for h in f.hints)


@pytest.mark.parametrize(
    "message",
    ["a" * 1_000_000, " " * 1_000_000, "x depends on " * 80_000, "\\" * 500_000],
    ids=["letters", "spaces", "depends", "backslashes"],
)
def test_a_megabyte_message_is_judged(message: str, tmp_path: Path) -> None:
    results = tmp_path / "r"
    shutil.copytree(DATA / "healthy_with_blocked_skip", results)
    doc = {
        "name": "test_x",
        "fullName": "t#x",
        "status": "skipped",
        "statusDetails": {"message": message},
        "labels": [],
        "parameters": [],
    }
    text = json.dumps(doc)
    (results / "big-result.json").write_text(text)
    (results / "cut-result.json").write_text(text[: len(text) // 2])

    allure.detect(Evidence.from_path(results))
    f = judge(results)

    assert f.details["salvaged"] == ["cut-result.json"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_result_file_with_a_byte_order_mark_is_read_not_lost(
    encoding: str, tmp_path: Path
) -> None:
    results = tmp_path / "r"
    shutil.copytree(DATA / "healthy_with_blocked_skip", results)
    victim = sorted(results.glob("*-result.json"))[0]
    victim.write_bytes(victim.read_text().encode(encoding))

    f = judge(results)

    assert f.verdict is Verdict.PASS
    assert "salvaged" not in f.details
    assert f.details["results"] == len(list(results.glob("*-result.json")))


def test_files_are_not_results_directories() -> None:
    result = next((DATA / "c28_dependency_on_other_worker").glob("*-result.json"))

    assert allure.detect(Evidence.from_path(result)) == 0.0
    assert allure.judge(Evidence.from_path(result), Context()).reasons == [
        "unrecognised_input"
    ]
