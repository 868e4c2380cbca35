"""The locust-log analyzer decides from printed statistics, never from the exit code.

Fixtures (tests/analyzers/data/locust-log/):

* real Locust 2.47 output on loopback: ``healthy_20rps.log``,
  ``c24_unthrottled_3_workers.log`` (C24 reproduced), ``c25_half_failing_exit_1.log``
  (C25 reproduced: three requests, exit code 1), ``bad_cli_invalid_users.log``
  (``-u abc``), ``crash_before_stats.log`` (a locustfile importing a missing module),
  ``generator_cpu_saturated.log`` (users burning CPU between requests);
* ``c25_half_failing_cut.log``: the real C25 log cut before Locust shut down;
* ``c25_check_fail_ratio_exit_1.log``: case C25's artifact re-typed (the command and
  the ``CHECK SUCCESSFUL`` / ``Shutting down (exit code 1)`` lines), with the
  surrounding log lines and the stats table [reconstructed] in Locust 2.14's format;
* ``v1_4_layout_healthy_20rps.log``: the healthy run in Locust 1.4's table layout
  (no Type column, ``Median``, ``, bye.``) [reconstructed from Locust's source];
* ``v1_4_layout_c25_two_requests_exit_1.log``: C25's numbers in Locust 1.4's
  layout (``Shutting down (exit code 1), bye.``) [reconstructed];
* ``bad_cli_run_time_without_headless.log``: Locust 1.x's refusal of ``--run-time``
  without ``--headless`` [reconstructed from Locust's source];
* ``c25_as_written.log``: case C25's artifact exactly as the case prints it, with
  ``[…]`` where the times were;
* ``c25_logfile_checks_exit_1.log``: the same with Locust's real logger prefix
  (``[time] host/LEVEL/logger: ``), as a fresh user typed it; a --logfile holds no
  statistics table, only locust-plugins' ``CHECK`` lines.

CI prefixes in the tests below are re-typed from the formats the tools print:
GitHub Actions' raw log timestamps, ``kubectl logs --prefix``, docker compose's
service column, syslog, Jenkins' timestamper, GitLab's timestamped log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence, analyze, locust_log
from meshstack.analyzers._line_prefix import plain
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data" / "locust-log"


def judge(name: str, **ctx: object) -> Finding:
    return locust_log.judge(Evidence.from_path(DATA / name), Context(**ctx))  # type: ignore[arg-type]


def judge_text(text: str, **ctx: object) -> Finding:
    return locust_log.judge(Evidence(text=text), Context(**ctx))  # type: ignore[arg-type]


def test_c25_passed_checks_with_exit_1_over_two_requests_is_min_sample() -> None:
    f = judge("c25_check_fail_ratio_exit_1.log")

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]
    assert f.details["exit_code"] == 1
    assert f.details["requests"] == 2
    assert f.details["failures"] == 1
    assert len(f.details["checks"]) == 2
    assert any("CHECK SUCCESSFUL: fail ratio" in line for line in f.evidence)


def test_c25_in_the_1_4_layout_is_min_sample_whatever_the_exit_code() -> None:
    f = judge("v1_4_layout_c25_two_requests_exit_1.log")

    assert f.reasons == ["min_sample"]
    assert f.details == {
        "exit_code": 1,
        "requests": 2,
        "failures": 1,
        "min_sample": 100,
    }


@pytest.mark.parametrize(
    "name", ["c25_half_failing_exit_1.log", "c25_half_failing_cut.log"]
)
def test_the_real_c25_reproduction_and_its_cut_copy_are_min_sample(name: str) -> None:
    f = judge(name)

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]
    assert f.details["requests"] == 3


def test_the_cut_copy_is_judged_from_the_last_table_printed_before_the_cut() -> None:
    f = judge("c25_half_failing_cut.log")

    assert "exit_code" not in f.details
    assert f.details["failures"] == 1


def test_a_healthy_run_passes_from_its_final_table() -> None:
    f = judge("healthy_20rps.log")

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] == 545
    assert f.details["exit_code"] == 0


def test_an_endpoint_named_total_is_not_taken_for_the_sum() -> None:
    text = (DATA / "c25_half_failing_exit_1.log").read_text()
    renamed = text.replace("GET      /missing", "GET      Total   ")
    assert renamed != text

    f = judge_text(renamed)

    assert f.details["requests"] == 3


def test_the_1_4_layout_is_read_from_its_last_table() -> None:
    f = judge("v1_4_layout_healthy_20rps.log")

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] == 535
    assert f.details["exit_code"] == 0


def test_the_c24_log_passes_as_a_log_and_leaves_the_rate_to_the_history() -> None:
    f = judge("c24_unthrottled_3_workers.log", target_rps=0.1)

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] > 10_000
    assert any("history" in h for h in f.hints)


@pytest.mark.parametrize(
    "name", ["bad_cli_invalid_users.log", "bad_cli_run_time_without_headless.log"]
)
def test_locust_refusing_its_options_is_a_harness_error(name: str) -> None:
    f = judge(name)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["bad_cli_combination"]
    assert f.evidence


def test_a_crash_before_any_statistics_is_load_tool_failed() -> None:
    f = judge("crash_before_stats.log")

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["load_tool_failed"]
    assert any("ModuleNotFoundError" in line for line in f.evidence)


def test_a_non_zero_exit_without_statistics_is_load_tool_failed() -> None:
    text = "[2024-05-01 10:00:00,000] n/INFO/locust.main: Shutting down (exit code 2)\n"

    f = judge_text(text)

    assert f.reasons == ["load_tool_failed"]
    assert f.details["exit_code"] == 2


def test_exit_code_1_with_a_sound_sample_is_not_a_verdict() -> None:
    text = (DATA / "healthy_20rps.log").read_text()
    text = text.replace("(exit code 0)", "(exit code 1)")

    f = judge_text(text)

    assert f.verdict is Verdict.PASS
    assert f.details["exit_code"] == 1
    assert any("exited 1" in h for h in f.hints)


def test_a_generator_out_of_cpu_is_an_invalid_run() -> None:
    f = judge("generator_cpu_saturated.log")

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["generator_saturated"]
    assert any("CPU usage above" in line for line in f.evidence)


def test_a_log_without_any_table_or_exit_is_min_sample() -> None:
    text = "[2024-05-01 10:00:00,000] node-1/INFO/locust.main: Starting Locust 2.20.0\n"

    f = judge_text(text)

    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]


def test_locust_logs_are_detected_and_other_text_is_not() -> None:
    assert locust_log.detect(Evidence.from_path(DATA / "healthy_20rps.log")) >= 0.9
    assert (
        locust_log.detect(Evidence.from_path(DATA / "bad_cli_invalid_users.log")) >= 0.9
    )
    assert locust_log.detect(Evidence(text='{"status":"success","data":{}}')) == 0.0
    assert (
        locust_log.detect(Evidence(text="Traceback (most recent call last):\n")) == 0.0
    )


def test_other_text_judged_as_a_locust_log_is_unrecognised_input() -> None:
    f = judge_text("NAME STATUS ROLES\nnode-1 Ready control-plane\n")

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["unrecognised_input"]


# --- C25 as written, and any prefix a logger or CI system adds ----------------------


@pytest.mark.parametrize(
    "name", ["c25_as_written.log", "c25_logfile_checks_exit_1.log"]
)
@pytest.mark.parametrize("kind", [None, "locust-log"])
def test_c25_check_lines_with_exit_1_are_min_sample_from_rate_and_run_time(
    name: str, kind: str | None
) -> None:
    f = analyze(Evidence.from_path(DATA / name), Context(), kind=kind)

    assert f.kind == "locust-log"
    assert f.verdict is Verdict.INVALID_RUN
    assert f.reasons == ["min_sample"]
    assert f.details["exit_code"] == 1
    assert f.details["total_rps"] == 0.2
    assert f.details["run_seconds"] == 15
    assert f.details["requests_estimated"] == 3
    assert f.details["fail_ratio"] == 0.5
    assert len(f.details["checks"]) == 2


def test_check_lines_are_statistics_so_a_non_zero_exit_is_not_load_tool_failed() -> (
    None
):
    text = (DATA / "c25_logfile_checks_exit_1.log").read_text()
    text = text.replace("total rps was 0.2", "total rps was 20.1")

    f = judge_text(text.replace("(exit code 1)", "(exit code 3)"))

    assert f.verdict is Verdict.PASS
    assert f.details["requests_estimated"] == 302
    assert "load_tool_failed" not in f.reasons


def test_check_lines_without_a_run_time_need_the_duration_and_use_it() -> None:
    lines = (DATA / "c25_logfile_checks_exit_1.log").read_text().splitlines()[1:]
    text = "\n".join(lines) + "\n"

    missing = judge_text(text)
    given = judge_text(text, extra={"duration": 15})

    assert missing.verdict is Verdict.INCONCLUSIVE
    assert missing.reasons == ["context_missing"]
    assert any("--extra duration=" in h for h in missing.hints)
    assert given.reasons == ["min_sample"]
    assert given.details["requests_estimated"] == 3


def test_locust_s_logged_run_time_limit_is_read_before_the_command_line() -> None:
    text = (
        (DATA / "c25_logfile_checks_exit_1.log")
        .read_text()
        .replace(
            "$ python",
            "[2023-02-15 10:00:00,000] host/INFO/locust.main: Run time limit "
            "set to 600 seconds\n$ python",
        )
    )

    f = judge_text(text)

    assert f.details["run_seconds"] == 600
    assert f.details["requests_estimated"] == 120
    assert f.verdict is Verdict.PASS


def _prefixed(text: str, prefix: str) -> str:
    return "".join(prefix + line + "\n" for line in text.splitlines())


CI_PREFIXES = {
    "github actions": "2026-12-04T10:00:00.1234567Z ",
    "kubectl --prefix": "[pod/locust-7d9f/locust] ",
    "kubectl --timestamps": "2026-12-04T10:00:00.123456789+00:00 ",
    "docker compose": "locust-1  | ",
    "syslog": "Dec  4 10:00:00 node-1 locust[4242]: ",
    "jenkins timestamper": "10:00:00  ",
    "gitlab": "2026-12-04T10:00:00.123456Z 00O ",
    "quoted paste": "> ",
    "ansi colour": "\x1b[32m",
    "two at once": "2026-12-04T10:00:00.1234567Z [pod/locust-7d9f/locust] ",
}


@pytest.mark.parametrize("prefix", CI_PREFIXES.values(), ids=CI_PREFIXES.keys())
def test_a_ci_prefix_on_every_line_changes_nothing(prefix: str) -> None:
    table = (DATA / "c25_check_fail_ratio_exit_1.log").read_text()
    checks = (DATA / "c25_as_written.log").read_text()

    from_table = judge_text(_prefixed(table, prefix))
    from_checks = analyze(Evidence(_prefixed(checks, prefix)), Context())

    assert from_table.reasons == ["min_sample"]
    assert from_table.details["requests"] == 2
    assert from_table.details["exit_code"] == 1
    assert from_checks.kind == "locust-log"
    assert from_checks.reasons == ["min_sample"]
    assert from_checks.details["requests_estimated"] == 3


def test_a_ci_prefix_ends_the_table_at_a_blank_line_as_without_it() -> None:
    # The percentile table after the stats table has its own "Aggregated" row; a
    # prefixed blank line must still end the stats table, or that row is read.
    text = (DATA / "healthy_20rps.log").read_text()

    f = judge_text(_prefixed(text, CI_PREFIXES["github actions"]))

    assert f.verdict is Verdict.PASS
    assert f.details["requests"] == 545


@pytest.mark.parametrize(
    "line",
    [
        "Type     Name      # reqs      # fails |    Avg     Min",
        "GET      /api/status        2    1(50.00%) |     41      12",
        "         Aggregated         2    1(50.00%) |     41      12",
        "--------|--------------|-------|-------------|-------",
        "Traceback (most recent call last):",
        "usage: locust [options] [UserClass ...]",
    ],
)
def test_locust_s_own_lines_are_not_taken_for_prefixes(line: str) -> None:
    assert plain(line) == line


# --- failures ---------------------------------------------------------------------


def test_a_run_whose_every_request_failed_keeps_its_sample_verdict_with_a_hint() -> (
    None
):
    text = (DATA / "healthy_20rps.log").read_text()
    assert "545     0(0.00%)" in text
    f = judge_text(text.replace("545     0(0.00%)", "545 545(100.00%)"))

    assert f.verdict is Verdict.PASS
    assert f.details["failures"] == 545
    assert any("every request failed" in h for h in f.hints)


# --- time on long lines --------------------------------------------------------------

LONG_LINES = {
    "dots": "." * 1_000_000,
    "spaces": " " * 1_000_000,
    "brackets": "[" * 1_000_000,
    "logger prefixes": "host/INFO/locust.main: " * 45_000,
    "bracketed times": "[2023-02-15 10:00:00,000] " * 40_000,
    "timestamps": "2026-12-04T10:00:00.1234567Z " * 35_000,
    "check lines": "CHECK FAILED: total rps was 1 " * 35_000,
    "table cells": "| 1(50.00%) " * 90_000,
    "ansi escapes": "\x1b[" * 250_000,
}


@pytest.mark.parametrize("line", LONG_LINES.values(), ids=LONG_LINES.keys())
def test_a_megabyte_line_is_detected_and_judged(line: str) -> None:
    evidence = Evidence(
        text="[2023-02-15 10:00:00,000] host/INFO/locust.main: Starting Locust 2.47\n"
        + line
        + "\n"
    )

    locust_log.detect(Evidence(text=line))
    f = locust_log.judge(evidence, Context())

    assert f.kind == "locust-log"
