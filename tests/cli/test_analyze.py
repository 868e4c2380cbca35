"""`meshstack analyze` run as users run it: the installed command, in a subprocess.

The inputs are the analyzer fixtures under tests/analyzers/data/ (their sources are
described in the analyzer tests beside them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parents[1] / "analyzers" / "data"
COMMAND = Path(sys.executable).parent / "meshstack"
C24_HISTORY = DATA / "locust-history" / "c24_unthrottled_3_workers.csv"
HEALTHY_HISTORY = DATA / "locust-history" / "healthy_20rps_ramp_then_plateau.csv"
HEALTHY_LOG = DATA / "locust-log" / "healthy_20rps.log"
C25_LOG = DATA / "locust-log" / "c25_check_fail_ratio_exit_1.log"
BAD_CLI_LOG = DATA / "locust-log" / "bad_cli_invalid_users.log"
SUCCESS_RATIO = DATA / "prometheus-response" / "success_ratio.json"
ALLURE_C28 = DATA / "allure-results" / "c28_dependency_on_other_worker"
SLOW_MODULES = ("kubernetes", "openstack", "locust", "pytest", "gevent", "hypothesis")


def meshstack(
    *args: str | Path, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed command; its output is kept whatever the exit status."""
    return subprocess.run(
        [str(COMMAND), "analyze", *map(str, args)],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    lines = result.stdout.splitlines()
    assert lines, f"no output; stderr: {result.stderr}"
    return [json.loads(line) for line in lines]


def test_list_kinds_names_every_kind_with_its_layer() -> None:
    result = meshstack("--list-kinds", "--json")

    assert result.returncode == 0, result.stderr
    rows = {row["kind"]: row for row in json_lines(result)}
    assert rows["locust-history"]["layer"] == "load"
    assert rows["prometheus-response"]["layer"] == "slo"
    assert rows["allure-results"]["directory"] is True
    assert len(rows) >= 18
    human = meshstack("--list-kinds")
    assert human.returncode == 0
    assert all(name in human.stdout for name in rows)


def test_c24_history_is_detected_and_judged_over_its_target() -> None:
    result = meshstack(C24_HISTORY, "--target-rps", "0.1", "--json")

    assert result.returncode == 1, result.stderr
    [row] = json_lines(result)
    assert row["file"] == str(C24_HISTORY)
    assert row["kind"] == "locust-history"
    assert row["verdict"] == "INVALID-RUN"
    assert row["reasons"] == ["rate_out_of_tolerance"]
    assert row["details"]["direction"] == "over"
    assert row["schema"] == 1


def test_a_renamed_file_is_detected_from_its_content(tmp_path: Path) -> None:
    renamed = tmp_path / "notes.txt"
    shutil.copy(C24_HISTORY, renamed)

    [row] = json_lines(meshstack(renamed, "--target-rps", "0.1", "--json"))

    assert row["kind"] == "locust-history"
    assert row["file"] == str(renamed)


def test_standard_input_is_read_for_a_dash() -> None:
    result = meshstack(
        "-",
        "--json",
        "--extra",
        'objective={"op": ">=", "bound": 0.99}',
        stdin=SUCCESS_RATIO.read_bytes(),
    )

    assert result.returncode == 1, result.stderr
    [row] = json_lines(result)
    assert row["file"] == "-"
    assert row["kind"] == "prometheus-response"
    assert row["reasons"] == ["objective_missed"]


def test_a_directory_is_judged_file_by_file_in_sorted_order(tmp_path: Path) -> None:
    shutil.copy(HEALTHY_LOG, tmp_path / "b.log")
    (tmp_path / "a").mkdir()
    shutil.copy(C25_LOG, tmp_path / "a" / "z.log")
    shutil.copy(SUCCESS_RATIO, tmp_path / "c.json")

    result = meshstack(".", "--json", cwd=tmp_path)

    rows = json_lines(result)
    assert [r["file"] for r in rows] == ["./a/z.log", "./b.log", "./c.json"]
    # c.json holds values but no objective was given: nothing judged, never a pass.
    assert [r["verdict"] for r in rows] == ["INVALID-RUN", "PASS", "INCONCLUSIVE"]
    assert result.returncode == 1


def test_an_allure_results_directory_is_judged_as_a_whole(tmp_path: Path) -> None:
    shutil.copytree(ALLURE_C28, tmp_path / "allure-results")
    shutil.copy(HEALTHY_LOG, tmp_path / "locust.log")

    detected = json_lines(meshstack(tmp_path, "--json"))
    named = meshstack(tmp_path / "allure-results", "--kind", "allure-results", "--json")

    assert [r["kind"] for r in detected] == ["allure-results", "locust-log"]
    assert detected[0]["reasons"] == ["dependency_order_not_honoured"]
    assert named.returncode == 3
    assert json_lines(named)[0]["file"] == str(tmp_path / "allure-results")


@pytest.mark.parametrize(
    ("path", "status"),
    [(HEALTHY_LOG, 0), (C25_LOG, 1), (BAD_CLI_LOG, 3)],
)
def test_the_exit_status_follows_the_verdict(path: Path, status: int) -> None:
    result = meshstack(path)

    assert result.returncode == status, result.stdout + result.stderr


def test_a_harness_error_outranks_a_failure_among_many_inputs() -> None:
    result = meshstack(C25_LOG, BAD_CLI_LOG, HEALTHY_LOG, "--json")

    assert result.returncode == 3
    assert len(json_lines(result)) == 3


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["missing.log"], "missing.log"),
        ([str(HEALTHY_LOG), "--now", "yesterday"], "--now"),
        ([str(HEALTHY_LOG), "--now", "2025-01-31T12:00:00"], "offset"),
        ([str(HEALTHY_LOG), "--kind", "locust-diary"], "locust-history"),
        ([str(HEALTHY_LOG), "--tolerance", "five"], "--tolerance"),
        ([], "no input"),
        (["-", "-"], "stdin"),
    ],
)
def test_usage_errors_exit_4_and_say_what_was_wrong(
    args: list[str], named: str
) -> None:
    result = meshstack(*args, "--json")

    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stdout == ""
    assert named in result.stderr


def test_now_is_the_judging_time_and_defaults_to_the_clock() -> None:
    # The issuer in this linkerd-check fixture expires on 2024-01-05T00:00:00Z.
    issuer = DATA / "linkerd-check" / "issuer_expiring_warning_short.txt"

    before = json_lines(meshstack(issuer, "--now", "2020-01-01T00:00:00Z", "--json"))
    after = json_lines(meshstack(issuer, "--now", "2024-01-04T00:00:00Z", "--json"))
    clock = json_lines(meshstack(issuer, "--json"))

    assert "identity_issuer_expiring" not in before[0]["reasons"]
    assert after[0]["reasons"] == ["identity_issuer_expiring"]
    assert clock[0]["reasons"] == ["identity_issuer_expiring"]


def test_a_missing_file_among_good_ones_judges_none_of_them() -> None:
    result = meshstack(HEALTHY_LOG, "does-not-exist.csv", "--json")

    assert result.returncode == 4
    assert result.stdout == ""
    assert "does-not-exist.csv" in result.stderr


def test_input_not_of_the_named_kind_is_unrecognised() -> None:
    result = meshstack(SUCCESS_RATIO, "--kind", "locust-log", "--json")

    assert result.returncode == 3
    [row] = json_lines(result)
    assert row["reasons"] == ["unrecognised_input"]
    assert row["layer"] == "load"  # the layer of the kind named


def test_a_named_kind_applies_to_every_file_of_a_directory(tmp_path: Path) -> None:
    shutil.copy(HEALTHY_HISTORY, tmp_path / "a.csv")
    shutil.copy(HEALTHY_LOG, tmp_path / "b.log")

    result = meshstack(tmp_path, "--kind", "locust-history", "--json")

    history, log = json_lines(result)
    assert history["kind"] == "locust-history"
    assert history["reasons"] == ["context_missing"]
    assert log["reasons"] == ["unrecognised_input"]
    assert result.returncode == 3


def test_an_empty_directory_is_reported_not_skipped(tmp_path: Path) -> None:
    result = meshstack(tmp_path, "--json")

    assert result.returncode == 3
    [row] = json_lines(result)
    assert row["verdict"] == "HARNESS-ERROR"


def test_a_special_file_in_a_directory_is_reported_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    shutil.copy(HEALTHY_LOG, tmp_path / "run.log")

    result = meshstack(tmp_path, "--json")

    assert result.returncode == 3
    pipe, log = json_lines(result)
    assert pipe["verdict"] == "HARNESS-ERROR"
    assert "not a regular file" in pipe["hints"][0]
    assert log["verdict"] == "PASS"


@pytest.mark.parametrize(
    ("tolerance", "status"), [("5%", 0), ("0.05", 0), ("3%", 1), ("0.03", 1)]
)
def test_tolerance_reads_as_a_fraction_or_a_percentage(
    tolerance: str, status: int
) -> None:
    # The healthy run achieves 19.79 rps: 4.9% under a 20.8 rps target.
    result = meshstack(
        HEALTHY_HISTORY, "--target-rps", "20.8", "--tolerance", tolerance
    )

    assert result.returncode == status, result.stdout


def test_min_sample_is_taken_from_the_command_line() -> None:
    c25 = DATA / "locust-history" / "c25_three_requests.csv"

    strict = meshstack(c25, "--target-rps", "0.15", "--tolerance", "10%", "--json")
    lenient = meshstack(
        c25, "--target-rps", "0.15", "--tolerance", "10%", "--min-sample", "2"
    )

    assert json_lines(strict)[0]["reasons"] == ["min_sample"]
    assert lenient.returncode == 0, lenient.stdout


def test_human_output_shows_verdict_reasons_hints_and_evidence() -> None:
    result = meshstack(C25_LOG)

    assert result.stdout.startswith(f"{C25_LOG}: INVALID-RUN locust-log [load]")
    assert "  reasons: min_sample" in result.stdout
    assert "  hint: 2 requests in the run" in result.stdout
    assert "  evidence: " in result.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout.splitlines()[0])


def test_start_up_imports_no_client_library_or_test_tool() -> None:
    code = (
        "import json, sys\n"
        "from meshstack.cli.main import main\n"
        "status = main(['analyze', '--list-kinds'])\n"
        f"slow = [m for m in sys.modules if m.split('.')[0] in {SLOW_MODULES!r}]\n"
        "print(json.dumps({'status': status, 'slow': sorted(slow)}), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {"status": 0, "slow": []}


def test_importtime_shows_none_of_the_slow_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "meshstack.cli.main"]
        + ["analyze", "--list-kinds"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    imported = [
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    # Modules loaded by importlib.import_module (the dispatcher's sub-commands, the
    # registry's analyzers) are not timed; what they import with `import` is.
    assert "meshstack.analyzers" in imported
    assert "csv" in imported
    assert not [m for m in imported if m.split(".")[0] in SLOW_MODULES]
