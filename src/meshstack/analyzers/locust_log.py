"""Locust's console output or log file: was the load a valid measurement?

Locust's exit code is never a verdict: by default it exits 1 when any request
failed, whatever thresholds a plugin checked, and 0 in old versions despite errors.
The verdict comes from the printed statistics table (the last one, printed at
shutdown), read by its header so both layouts parse:

* up to 2.8: `` Name   # reqs   # fails  |  Avg  Min  Max  Median  |  req/s failures/s``
  (0.x has one ``|``; the total row is "Total" before 0.12, "Aggregated" after);
* 2.9 onwards: ``Type  Name  # reqs  # fails |  Avg  Min  Max  Med |  req/s ...``.

Every line is read without the prefixes a logger or a CI system puts in front of it
(see :func:`plain`): Locust's own ``[time] host/LEVEL/logger: `` (with --logfile),
the ``[…]`` a person pastes instead of the time, CI timestamps (GitHub Actions,
Azure, GitLab, ``docker logs -t``, ``kubectl logs --timestamps``), ``kubectl logs
--prefix``'s ``[pod/name/container]``, docker compose's ``locust-1  | ``, syslog and
journald, ``> `` quoting and ANSI colours; in any order and combination.

Judged, most severe first: Locust refusing its own options (HARNESS-ERROR
``bad_cli_combination``); a non-zero exit, or a crash, with no statistics at all
(HARNESS-ERROR ``load_tool_failed``); the generator's CPU warning (INVALID-RUN
``generator_saturated``); fewer requests than the minimum (INVALID-RUN
``min_sample``). The rate is judged from the stats history file, not from this log.

Statistics are the table, or else locust-plugins' ``CHECK`` lines (a --logfile
never holds the table: Locust prints it to the console only). A non-zero exit with
either is evidence, not ``load_tool_failed``. From ``CHECK ...: total rps was R``
the run's request count is estimated as R x its run time (``Context.extra
["duration"]``, else Locust's "Run time limit set to N seconds", else ``--run-time``
/ ``-t`` on a command line in the log); without a run time the count cannot be
judged: INCONCLUSIVE ``context_missing``. Case C25 (0.2 rps for 15 s, about 3
requests) is ``min_sample`` so, whatever the exit code.

Failed requests, the exit code and the ``CHECK`` lines are recorded as evidence and
details, never as the load's verdict: the load layer judges whether the planned load
was applied and measured (verdicts.md: rate, sample, shape, generator), and failures
are judged by the objectives above it (an SLO on the success rate). A run in which
every request failed therefore keeps the verdict of its rate and sample, with a hint
that names the failures: making it INVALID-RUN would report a stack that refuses
every request as "measurement invalid" instead of letting its SLO fail.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._line_prefix import plain
from meshstack.analyzers.locust_history import (
    TOTAL_ROW_NAMES,
    all_failed,
    judge_sample,
)
from meshstack.verdicts import Finding

NAME = "locust-log"

# A line Locust's own loggers wrote ("INFO/locust.main:"), or its own messages.
_LOCUST_LOGGER = re.compile(
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)/locust[\w.]{0,100}:"
)
_LOCUST_MESSAGE = re.compile(
    r"^(?:Shutting down \(exit code|CHECK (?:SUCCESSFUL|FAILED): |Starting Locust \d"
    r"|Run time limit set to \d|--run-time limit reached|Ramping to \d"
    r"|All users spawned|usage: locust|locust: error:)"
)
_EXIT = re.compile(r"Shutting down \(exit code (-?\d{1,6})\)")
_CHECK = re.compile(r"CHECK (SUCCESSFUL|FAILED):.*")
_CHECK_RPS = re.compile(
    r"CHECK (?:SUCCESSFUL|FAILED): total rps was (\d{1,12}(?:\.\d{1,6})?)"
)
_CHECK_FAIL_RATIO = re.compile(
    r"CHECK (?:SUCCESSFUL|FAILED): fail ratio was (\d{1,3}(?:\.\d{1,6})?)%"
)
_RUN_TIME_LOGGED = re.compile(r"Run time limit set to (\d{1,9}) seconds")
_RUN_TIME_OPTION = re.compile(r"(?:--run-time|\s-t)[= ]?(\S{1,40})")
_TIMESPAN = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?")
_CPU = re.compile(r"CPU usage (above \d+%|was too high)")
# Locust (or argparse on its behalf) refusing the options it was given.
_BAD_CLI = re.compile(
    r"(^usage: locust|locust: error:|error: argument |error: unrecognized arguments"
    r"|can only be used together with|cannot be combined with"
    r"|is only meaningful in combination with|should be specified on the master"
    r"|Valid --run-time formats|Invalid --\w|have been renamed|feature was removed"
    r"|Credentials supplied with --web-auth)"
)
_CRASH = re.compile(
    r"^(Traceback \(most recent call last\)|.*No User class found|.*Unknown User\(s\)"
    r"|.*Gave up waiting for workers|.*Failed to connect to the Locust master"
    r"|Could not find '.*'|Could not find any locustfile)"
)


@dataclass
class Lines:
    """The text's lines as printed (for evidence) and as read (for judging)."""

    raw: list[str]
    plain: list[str]

    @classmethod
    def of(cls, text: str) -> Lines:
        raw = text.splitlines()
        return cls(raw=raw, plain=[plain(line) for line in raw])

    def first(self, pattern: re.Pattern[str]) -> str | None:
        """The first line (as printed) whose text matches, or None."""
        for raw, line in zip(self.raw, self.plain, strict=True):
            if pattern.search(line):
                return raw.strip()
        return None

    def last_match(self, pattern: re.Pattern[str]) -> tuple[re.Match[str], str] | None:
        for raw, line in zip(reversed(self.raw), reversed(self.plain), strict=True):
            if m := pattern.search(line):
                return m, raw.strip()
        return None


@dataclass
class StatsRow:
    line: str
    name: str
    requests: int
    failures: int


def _is_table_header(line: str) -> bool:
    return "# reqs" in line and "# fails" in line and "Name" in line


def _columns(header: str) -> list[str]:
    after = header.split("Name", 1)[1]
    return re.findall(r"#\s\w+|[^\s|]+", after)


def _int_prefix(token: str) -> int | None:
    m = re.match(r"\d{1,15}", token)
    return int(m.group()) if m else None


def _parse_row(line: str, columns: list[str]) -> StatsRow | None:
    tokens = re.findall(r"[^\s|]+", line)
    if len(tokens) <= len(columns):
        return None
    values = dict(zip(columns, tokens[-len(columns) :], strict=True))
    name_tokens = tokens[: -len(columns)]
    reqs = _int_prefix(values.get("# reqs", ""))
    fails = _int_prefix(values.get("# fails", ""))
    if reqs is None or fails is None:
        return None
    return StatsRow(line.rstrip(), name_tokens[-1], requests=reqs, failures=fails)


def stats_tables(lines: Lines) -> list[list[StatsRow]]:
    """Every printed stats table, as its parsed rows (lines as printed), in order."""
    tables: list[list[StatsRow]] = []
    columns: list[str] | None = None
    for raw, line in zip(lines.raw, lines.plain, strict=True):
        if _is_table_header(line):
            columns = _columns(line)
            tables.append([])
            continue
        if columns is None or re.match(r"\s*-{3,}", line):
            continue
        if not line.strip():
            columns = None
            continue
        row = _parse_row(line, columns)
        if row is not None:
            row.line = raw.rstrip()
            tables[-1].append(row)
    return tables


def _total(tables: list[list[StatsRow]]) -> tuple[StatsRow | None, bool]:
    """The last table's total row; else an earlier one's (True when it is earlier).

    The total row is the last of its table, so an endpoint that happens to be
    named "Total" above it is not taken for it.
    """
    for i in range(len(tables) - 1, -1, -1):
        rows = tables[i]
        if rows and rows[-1].name in TOTAL_ROW_NAMES:
            return rows[-1], i != len(tables) - 1
    return None, False


def detect(evidence: Evidence) -> float:
    raw = evidence.text[:65536].splitlines()
    if any(_LOCUST_LOGGER.search(line) for line in raw):
        return 0.9
    lines = [plain(line) for line in raw]
    if any(_LOCUST_MESSAGE.match(line) for line in lines):
        return 0.9
    if any(_is_table_header(line) for line in lines):
        return 0.85
    text = evidence.text[:65536]
    if "Traceback" in text and "/locust/" in text:
        return 0.7
    return 0.0


def _exit_code(lines: Lines) -> tuple[int | None, str | None]:
    """The last "Shutting down (exit code N)" and its whole line."""
    found = lines.last_match(_EXIT)
    if found is None:
        return None, None
    return int(found[0].group(1)), found[1]


def _record_checks(f: Finding, lines: Lines) -> list[str]:
    checks = [m.group(0).strip() for ln in lines.plain if (m := _CHECK.search(ln))]
    if checks:
        f.details["checks"] = checks
        f.evidence.extend(checks)
    return checks


def _logfile_hint(f: Finding, lines: Lines) -> None:
    if any(_LOCUST_LOGGER.search(line) for line in lines.raw):
        f.hint(
            "these are Locust's logger lines (--logfile, or stderr alone), which "
            "never hold the statistics table: Locust prints it on stdout; judge the "
            "whole console output or the *_stats.csv"
        )


def _judge_without_stats(f: Finding, lines: Lines, code: int | None) -> None:
    _logfile_hint(f, lines)
    crash = lines.first(_CRASH)
    if crash is not None or (code is not None and code != 0):
        if crash:
            f.evidence.append(crash)
            last = next((r.strip() for r in reversed(lines.raw) if r.strip()), "")
            if last != crash:
                f.evidence.append(last)
        f.add(
            "load_tool_failed",
            "Locust stopped without printing any statistics: read its output above "
            "the failure, fix the locustfile or options, and run the load again",
        )
        return
    f.add(
        "min_sample",
        "no statistics table in the output: the run sent nothing, or the log is cut "
        "off before Locust printed its summary",
        requests=0,
    )


def _judge_stats(f: Finding, total: StatsRow, earlier: bool, ctx: Context) -> None:
    f.evidence.append(total.line)
    f.details.update(requests=total.requests, failures=total.failures)
    if earlier:
        f.hint("the final table is cut off: judged the last complete total row")
    if total.failures:
        f.hint(
            f"{total.failures} of {total.requests} requests failed: evidence for the "
            "objectives above, not a verdict on the load"
        )
    all_failed(f, total.requests, total.failures)
    judge_sample(f, total.requests, ctx.min_sample, where="in the run")
    if ctx.target_rps is not None:
        f.hint("the rate is not judged from a log: judge the *_stats_history.csv")


def _timespan(text: str) -> float | None:
    """Seconds from Locust's --run-time ("15", "15s", "1h30m"), else None."""
    if text.isdigit():
        return float(text)
    m = _TIMESPAN.fullmatch(text)
    if m is None or not any(m.groups()):
        return None
    h, mins, secs = (int(g or 0) for g in m.groups())
    return float(h * 3600 + mins * 60 + secs)


def _run_time(lines: Lines, ctx: Context) -> tuple[float | None, str]:
    """The run's length in seconds and where it was read, or (None, "")."""
    given = ctx.extra.get("duration")
    if isinstance(given, int | float) and not isinstance(given, bool):
        if math.isfinite(given) and given > 0:
            return float(given), "the duration given"
    if found := lines.last_match(_RUN_TIME_LOGGED):
        return float(found[0].group(1)), "Locust's run time limit"
    for line in lines.plain:
        if "locust" in line and (m := _RUN_TIME_OPTION.search(line)):
            if (seconds := _timespan(m.group(1).strip("'\"")) or None) is not None:
                return seconds, "the command's --run-time"
    return None, ""


def _judge_checks(f: Finding, lines: Lines, ctx: Context) -> None:
    """Judge the sample from locust-plugins' CHECK lines: rate x run time."""
    if ratio := lines.last_match(_CHECK_FAIL_RATIO):
        f.details["fail_ratio"] = float(ratio[0].group(1)) / 100
        if f.details["fail_ratio"] >= 1.0:
            all_failed(f, 1, 1, shown="fail ratio 100%")
    rps_found = lines.last_match(_CHECK_RPS)
    if rps_found is None:
        f.add(
            "min_sample",
            "the CHECK lines give neither a request count nor a rate and there is "
            "no statistics table: the sample cannot be shown to reach the minimum",
        )
        return
    rps = float(rps_found[0].group(1))
    seconds, source = _run_time(lines, ctx)
    f.details["total_rps"] = rps
    if seconds is None:
        f.add(
            "context_missing",
            f"the CHECK line gives {rps:g} rps but no run time to count requests by: "
            "give the run's length with --extra duration=SECONDS",
        )
        return
    _judge_estimate(f, rps, seconds, source, ctx.min_sample)


def _judge_estimate(
    f: Finding, rps: float, seconds: float, source: str, minimum: int
) -> None:
    estimate = round(rps * seconds)
    f.details.update(requests_estimated=estimate, run_seconds=seconds)
    f.hint(
        f"about {estimate} requests: the CHECK line's total rps ({rps:g}) x "
        f"{seconds:g} s ({source}); the *_stats.csv has the exact count"
    )
    if estimate < minimum:
        f.add(
            "min_sample",
            f"about {estimate} requests in the run, the minimum is {minimum}: run "
            "longer or at a higher rate (or lower --min-sample if that is intended)",
            min_sample=minimum,
        )


def _judge_bad_cli(f: Finding, lines: Lines) -> bool:
    """HARNESS-ERROR bad_cli_combination when Locust refused its options."""
    bad_cli = lines.first(_BAD_CLI)
    if bad_cli is None:
        return False
    f.evidence.insert(0, bad_cli)
    f.add(
        "bad_cli_combination",
        f"Locust refused its options ({bad_cli[:160]}): fix the command line "
        "the harness builds for this load profile",
    )
    return True


def _judge_cpu(f: Finding, lines: Lines) -> None:
    cpu = lines.first(_CPU)
    if cpu is not None:
        f.evidence.append(cpu)
        f.add(
            "generator_saturated",
            "the load generator ran out of CPU: spread the users over more "
            "worker processes (--processes) or machines",
        )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    lines = Lines.of(evidence.text)
    f = Finding(layer="load", kind=NAME)
    code, code_line = _exit_code(lines)
    if code is not None:
        f.details["exit_code"] = code
        f.evidence.append(code_line or "")
    checks = _record_checks(f, lines)
    if _judge_bad_cli(f, lines):
        return f
    _judge_cpu(f, lines)
    total, earlier = _total(stats_tables(lines))
    if total is not None:
        _judge_stats(f, total, earlier, ctx)
    elif checks:
        _judge_checks(f, lines, ctx)
    else:
        _judge_without_stats(f, lines, code)
    if code not in (None, 0):
        f.hint(f"Locust exited {code}: a process signal, not a verdict on its own")
    return f


register(
    Kind(
        name=NAME,
        layer="load",
        summary="Locust console output or log: statistics, exit, option errors",
        detect=detect,
        judge=judge,
    )
)
