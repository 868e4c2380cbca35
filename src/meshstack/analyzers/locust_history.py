"""Locust's ``*_stats_history.csv``: did the load reach its rate in the steady window?

The achieved rate is the change in the cumulative request count over the change in
timestamp across the steady window, read from the "Aggregated" rows. The file's own
``Requests/s`` column is never used: it is a short moving average that reads a few
per cent high on a paced load, and it is zero for the first seconds of every run.

Columns are found by header name, never by position, because Locust renamed them:

* 0.12 to 0.14: ``Type,Name,Timestamp,# requests,# failures,Requests/s,...``
  (no user count; the total row was called "Total" before 0.12);
* 1.0 betas: ``Timestamp,User count,Type,Name,# requests,# failures,...``;
* 1.0 onwards: ``Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,...,
  Total Request Count,Total Failure Count,Total Median Response Time,...``.

The steady window is, in order of preference: ``Context.extra["window_start"]`` /
``["window_end"]`` (epoch seconds as in the Timestamp column, or times with a UTC
offset: datetimes or RFC 3339 text); the rows from
``Context.extra["ramp"]`` seconds after the first row; else the rows where the user
count sits at its maximum (the plateau); else, with no user count, the whole file.

Failed requests are counted into ``details.failures`` and named in a hint, never
judged here: the load layer's claim is that the planned load was applied and
measured (rate, sample; verdicts.md), and failures are judged by the objectives above
it (a success-rate SLO). A window in which every request failed therefore keeps the
verdict of its rate and sample, with a hint that says so: INVALID-RUN would report a
stack that refuses every request as an invalid measurement, hiding its SLO failure.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "locust-history"

# Canonical column -> the header names Locust has used for it, normalised.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp",),
    "users": ("user count",),
    "type": ("type", "method"),
    "name": ("name",),
    "requests": ("total request count", "request count", "# requests"),
    "failures": ("total failure count", "failure count", "# failures"),
    "reported_rps": ("requests/s",),
}
# The name of the row that sums every endpoint: "Total" before Locust 0.12.
TOTAL_ROW_NAMES = ("Aggregated", "Total")


@dataclass
class Table:
    """A CSV file read by header name: canonical column -> index, and raw rows."""

    columns: dict[str, int]
    header: list[str]
    rows: list[tuple[str, list[str]]] = field(default_factory=list)

    def cell(self, row: list[str], column: str) -> str | None:
        idx = self.columns.get(column)
        if idx is None or idx >= len(row):
            return None
        return row[idx].strip()


def _normalise(name: str) -> str:
    return " ".join(name.strip().strip('"').lower().split())


def read_table(text: str) -> Table | None:
    """The first non-blank line as header, every later line as a row; None if empty."""
    lines = [ln for ln in text.replace("\x00", "").lstrip("\ufeff").splitlines()]
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return None
    try:
        parsed = list(csv.reader(lines))
    except csv.Error:
        return None
    header = parsed[0]
    columns: dict[str, int] = {}
    normalised = [_normalise(h) for h in header]
    for canonical, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in normalised:
                columns[canonical] = normalised.index(alias)
                break
    rows = list(zip(lines[1:], parsed[1:], strict=False))
    return Table(columns=columns, header=header, rows=rows)


def number(text: str | None) -> float | None:
    """A finite number from a cell, or None ("N/A", blanks, damage)."""
    if text is None:
        return None
    try:
        value = float(text.strip().strip('"'))
    except (ValueError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def total_rows(table: Table) -> list[tuple[str, list[str]]]:
    """The rows that sum every endpoint: "Aggregated", or "Total" before 0.12.

    "Total" is taken only where no row is "Aggregated", so an endpoint a newer
    locustfile names "Total" is never mistaken for the sum.
    """
    by_name: dict[str, list[tuple[str, list[str]]]] = {n: [] for n in TOTAL_ROW_NAMES}
    for line, row in table.rows:
        name = (table.cell(row, "name") or "").strip('"')
        if name in by_name:
            by_name[name].append((line, row))
    return next((rows for rows in by_name.values() if rows), [])


@dataclass
class Sample:
    line: str
    t: float
    requests: int
    failures: int | None
    users: int | None


def _is_history(table: Table) -> bool:
    return {"timestamp", "name", "requests"} <= table.columns.keys()


def detect(evidence: Evidence) -> float:
    head = evidence.text[:4096]
    if "Timestamp" not in head or "Name" not in head:
        return 0.0
    table = read_table(head.split("\n", 1)[0])
    if table is None or not _is_history(table):
        return 0.0
    return 0.95


def _samples(table: Table) -> tuple[list[Sample], int]:
    """Parsed total rows, and how many total rows could not be read."""
    out: list[Sample] = []
    bad = 0
    for line, row in total_rows(table):
        t = number(table.cell(row, "timestamp"))
        req = number(table.cell(row, "requests"))
        if t is None or req is None:
            bad += 1
            continue
        fails = number(table.cell(row, "failures"))
        users = number(table.cell(row, "users"))
        out.append(
            Sample(
                line=line,
                t=t,
                requests=int(req),
                failures=None if fails is None else int(fails),
                users=None if users is None else int(users),
            )
        )
    out.sort(key=lambda s: s.t)
    return out, bad


def _extra_seconds(extra: dict[str, object], *keys: str) -> float | None:
    """A number of seconds, or a time (datetime, RFC 3339 text) as epoch seconds."""
    for key in keys:
        value = extra.get(key)
        if isinstance(value, str):
            value = _parse_time(value)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
    return None


def _parse_time(text: str) -> datetime | float | None:
    try:
        return float(text)
    except (ValueError, RecursionError):
        pass
    try:
        return datetime.fromisoformat(text.strip())
    except (ValueError, RecursionError):
        return None


def steady_window(
    samples: list[Sample], extra: dict[str, object]
) -> tuple[list[Sample], str]:
    """The samples of the steady window, and how the window was chosen."""
    start = _extra_seconds(extra, "window_start")
    end = _extra_seconds(extra, "window_end")
    if start is not None or end is not None:
        lo = start if start is not None else -math.inf
        hi = end if end is not None else math.inf
        return [s for s in samples if lo <= s.t <= hi], "window given"
    ramp = _extra_seconds(extra, "ramp", "ramp_seconds")
    if ramp is not None and samples:
        return [s for s in samples if s.t >= samples[0].t + ramp], "after ramp given"
    users = [s.users for s in samples if s.users is not None]
    if users and len(users) == len(samples):
        top = max(users)
        idx = [i for i, s in enumerate(samples) if s.users == top]
        return samples[idx[0] : idx[-1] + 1], f"plateau at {top} users"
    return samples, "whole file (no user count to find the ramp by)"


def _after_last_reset(window: list[Sample]) -> tuple[list[Sample], bool]:
    """The samples after the last drop of the cumulative count (a stats reset)."""
    for i in range(len(window) - 1, 0, -1):
        if window[i].requests < window[i - 1].requests:
            return window[i:], True
    return window, False


def rate_of(window: list[Sample]) -> tuple[int, float, float | None]:
    """Requests in the window, its length in seconds, and the rate (None if 0 s)."""
    if len(window) < 2:
        return 0, 0.0, None
    requests = window[-1].requests - window[0].requests
    seconds = window[-1].t - window[0].t
    return requests, seconds, (requests / seconds if seconds > 0 else None)


def judge_sample(
    f: Finding, requests: int, minimum: int, where: str = "in the window"
) -> None:
    """INVALID-RUN min_sample for fewer requests than the minimum (zero included)."""
    if requests < minimum:
        f.add(
            "min_sample",
            f"{requests} requests {where}, the minimum is {minimum}: run "
            "longer or at a higher rate (or lower --min-sample if that is intended)",
            requests=requests,
            min_sample=minimum,
        )


def judge_rate(f: Finding, achieved: float | None, ctx: Context) -> None:
    """INVALID-RUN rate_out_of_tolerance, or context_missing without a target."""
    target = ctx.target_rps
    if target is None or target <= 0:
        f.add(
            "context_missing",
            "no positive target rate given: pass --target-rps N (and --tolerance) "
            "to judge the achieved rate",
        )
        return
    f.details.update(target_rps=target, tolerance=ctx.tolerance)
    if achieved is None:
        f.hint("the window spans no time, so no rate could be computed")
        return
    ratio = achieved / target
    f.details["ratio"] = round(ratio, 4)
    if abs(ratio - 1.0) > ctx.tolerance:
        direction = "over" if ratio > 1.0 else "under"
        hint = _rate_hint(achieved, target, ratio, ctx.tolerance, direction)
        f.add("rate_out_of_tolerance", hint, direction=direction)


def _rate_hint(
    achieved: float, target: float, ratio: float, tolerance: float, direction: str
) -> str:
    why = (
        "under-drive often means the server or the generator is the limit"
        if direction == "under"
        else "check the users' wait_time (constant_throughput is per user)"
    )
    return (
        f"achieved {achieved:.3f} rps against a target of {target:g} rps "
        f"({ratio:.4g}x, tolerance {tolerance:.0%}): the load is {direction}; {why}"
    )


def _window_details(window: list[Sample], how: str) -> dict[str, Any]:
    if not window:
        return {"window": {"chosen": how, "rows": 0}}
    return {
        "window": {
            "chosen": how,
            "rows": len(window),
            "start": window[0].t,
            "end": window[-1].t,
            "seconds": window[-1].t - window[0].t,
        }
    }


def judge(evidence: Evidence, ctx: Context) -> Finding:
    table = read_table(evidence.text)
    if table is None or not _is_history(table):
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="load", kind=NAME)
    samples, bad = _samples(table)
    if bad:
        f.hint(f"{bad} total rows could not be read (cut off?); judged the rest")
    window, how = steady_window(samples, ctx.extra)
    window, reset = _after_last_reset(window)
    if reset:
        f.hint("the request count dropped in the window (a reset); judged after it")
    requests, seconds, achieved = rate_of(window)
    f.details.update(_window_details(window, how))
    f.details.update(requests=requests, achieved_rps=_round(achieved))
    _note_failures(f, window, requests)
    f.evidence.extend(s.line for s in window[:1] + window[-1:] if len(window) > 1)
    judge_sample(f, requests, ctx.min_sample)
    judge_rate(f, achieved, ctx)
    log.debug("[%s] %d requests over %.1f s", evidence.name, requests, seconds)
    return f


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _note_failures(f: Finding, window: list[Sample], requests: int) -> None:
    known = [s.failures for s in window if s.failures is not None]
    if len(known) < 2:
        return
    failed = known[-1] - known[0]
    f.details["failures"] = failed
    if failed > 0:
        f.hint(f"{failed} requests failed in the window: see Locust's *_failures.csv")
    all_failed(f, requests, failed)


def all_failed(f: Finding, requests: int, failures: int, shown: str = "") -> None:
    """A hint (never a verdict of the load) when every request failed."""
    if requests > 0 and failures >= requests:
        f.details["all_failed"] = True
        f.hint(
            f"every request failed ({shown or f'{failures} of {requests}'}): the "
            "load was applied "
            "but nothing succeeded; the load layer judges only rate and sample, so "
            "judge the failures with a success-rate objective (slo), and check the "
            "target URL and the stack"
        )


register(
    Kind(
        name=NAME,
        layer="load",
        summary="Locust *_stats_history.csv: achieved rate and sample size",
        detect=detect,
        judge=judge,
    )
)
