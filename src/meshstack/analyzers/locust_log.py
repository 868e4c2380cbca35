"""Locust's console output or log file: was the load a valid measurement?

Locust's exit code is never a verdict: by default it exits 1 when any request
failed, whatever thresholds a plugin checked, and 0 in old versions despite errors.
The verdict comes from the printed statistics table (the last one, printed at
shutdown), read by its header so both layouts parse:

* up to 2.8: `` Name   # reqs   # fails  |  Avg  Min  Max  Median  |  req/s failures/s``
  (0.x has one ``|``; the total row is "Total" before 0.12, "Aggregated" after);
* 2.9 onwards: ``Type  Name  # reqs  # fails |  Avg  Min  Max  Med |  req/s ...``.

Lines may carry the logger's prefix (``[time] host/LEVEL/logger: ``, with --logfile).

Judged, most severe first: Locust refusing its own options (HARNESS-ERROR
``bad_cli_combination``); a non-zero exit, or a crash, with no statistics at all
(HARNESS-ERROR ``load_tool_failed``); the generator's CPU warning (INVALID-RUN
``generator_saturated``); fewer requests than the minimum (INVALID-RUN
``min_sample``). Failed requests, the exit code and locust-plugins' ``CHECK`` lines
are recorded as evidence and details. The rate is judged from the stats history file,
not from this log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers.locust_history import TOTAL_ROW_NAMES, judge_sample
from meshstack.verdicts import Finding

NAME = "locust-log"

# "[2023-02-15 10:00:00,123] host/INFO/locust.main: " in front of logged lines.
_PREFIX = re.compile(r"^\[\d{4}-\d\d-\d\d[^\]]*\]\s+\S*/[A-Z]+/[\w.]+:\s?")
_LOGGER_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d[^\]]*\]\s+\S*/[A-Z]+/locust[\w.]*:")
_EXIT = re.compile(r"Shutting down \(exit code (-?\d{1,6})\)")
_CHECK = re.compile(r"CHECK (SUCCESSFUL|FAILED):.*")
_CPU = re.compile(r"CPU usage (above \d+%|was too high)")
# Locust (or argparse on its behalf) refusing the options it was given.
_BAD_CLI = re.compile(
    r"(^usage: locust|locust: error:|error: argument |error: unrecognized arguments"
    r"|can only be used together with|cannot be combined with"
    r"|is only meaningful in combination with|should be specified on the master"
    r"|Valid --run-time formats|Invalid --\w|have been renamed|feature was removed"
    r"|Credentials supplied with --web-auth)",
    re.MULTILINE,
)
_CRASH = re.compile(
    r"^(Traceback \(most recent call last\)|.*No User class found|.*Unknown User\(s\)"
    r"|.*Gave up waiting for workers|.*Failed to connect to the Locust master"
    r"|Could not find '.*'|Could not find any locustfile)",
    re.MULTILINE,
)


@dataclass
class StatsRow:
    line: str
    name: str
    requests: int
    failures: int


def _strip(line: str) -> str:
    return _PREFIX.sub("", line, count=1)


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


def stats_tables(text: str) -> list[list[StatsRow]]:
    """Every printed stats table, as its parsed rows, in order."""
    tables: list[list[StatsRow]] = []
    columns: list[str] | None = None
    for raw in text.splitlines():
        line = _strip(raw)
        if _is_table_header(line):
            columns = _columns(line)
            tables.append([])
            continue
        if columns is None or re.match(r"^\s*-{3,}", line):
            continue
        if not line.strip():
            columns = None
            continue
        row = _parse_row(line, columns)
        if row is not None:
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
    text = evidence.text[:65536]
    if re.search(_LOGGER_LINE.pattern, text, re.MULTILINE):
        return 0.9
    if re.search(r"^(usage: locust|locust: error:)", text, re.MULTILINE):
        return 0.9
    if any(_is_table_header(_strip(ln)) for ln in text.splitlines()):
        return 0.85
    if "Traceback" in text and "/locust/" in text:
        return 0.7
    return 0.0


def _exit_code(text: str) -> tuple[int | None, str | None]:
    """The last "Shutting down (exit code N)" and its whole line."""
    found = list(_EXIT.finditer(text))
    if not found:
        return None, None
    m = found[-1]
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return int(m.group(1)), text[start : end if end >= 0 else len(text)].strip()


def _first_line(pattern: re.Pattern[str], text: str) -> str | None:
    m = pattern.search(text)
    if m is None:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.start())
    return text[start : end if end >= 0 else len(text)].strip()


def _record_checks(f: Finding, text: str) -> None:
    checks = [m.group(0).strip() for m in _CHECK.finditer(text)]
    if checks:
        f.details["checks"] = checks
        f.evidence.extend(checks)


def _judge_without_stats(f: Finding, text: str, code: int | None) -> None:
    crash = _first_line(_CRASH, text)
    if crash is not None or (code is not None and code != 0):
        if crash:
            f.evidence.append(crash)
            last = text.strip().splitlines()[-1].strip()
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
    judge_sample(f, total.requests, ctx.min_sample, where="in the run")
    if ctx.target_rps is not None:
        f.hint("the rate is not judged from a log: judge the *_stats_history.csv")


def _judge_bad_cli(f: Finding, text: str) -> bool:
    """HARNESS-ERROR bad_cli_combination when Locust refused its options."""
    bad_cli = _first_line(_BAD_CLI, text)
    if bad_cli is None:
        return False
    f.evidence.insert(0, bad_cli)
    f.add(
        "bad_cli_combination",
        f"Locust refused its options ({bad_cli[:160]}): fix the command line "
        "the harness builds for this load profile",
    )
    return True


def _judge_cpu(f: Finding, text: str) -> None:
    cpu = _first_line(_CPU, text)
    if cpu is not None:
        f.evidence.append(cpu)
        f.add(
            "generator_saturated",
            "the load generator ran out of CPU: spread the users over more "
            "worker processes (--processes) or machines",
        )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    text = evidence.text
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="load", kind=NAME)
    code, code_line = _exit_code(text)
    if code is not None:
        f.details["exit_code"] = code
        f.evidence.append(code_line or "")
    _record_checks(f, text)
    if _judge_bad_cli(f, text):
        return f
    _judge_cpu(f, text)
    total, earlier = _total(stats_tables(text))
    if total is None:
        _judge_without_stats(f, text, code)
    else:
        _judge_stats(f, total, earlier, ctx)
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
