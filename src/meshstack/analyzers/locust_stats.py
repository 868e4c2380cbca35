"""Locust's ``*_stats.csv``: how many requests the run sent, and how many failed.

The file is the run's final table, one row per endpoint and one total row
("Aggregated"; "Total" before Locust 0.12). Columns are found by header name:
``# requests`` / ``# failures`` up to 0.14, ``Request Count`` / ``Failure Count`` from
1.0. Failures are evidence for the layers above (an SLO on success rate), never a
verdict of the load on their own: a run in which every request failed keeps the
verdict of its sample and rate, with a hint (see locust_history for why).

The file has no time base, so the achieved rate is judged only when
``Context.extra["duration"]`` gives the steady window's length in seconds; the file's
``Requests/s`` column is never used (it reads a few per cent high on a paced load).
The stats history file is the better evidence for the rate.
"""

from __future__ import annotations

import math

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers.locust_history import (
    Table,
    all_failed,
    judge_rate,
    judge_sample,
    number,
    read_table,
    total_rows,
)
from meshstack.verdicts import Finding

NAME = "locust-stats"


def _is_stats(table: Table) -> bool:
    keys = table.columns.keys()
    return {"name", "requests", "type"} <= keys and "timestamp" not in keys


def detect(evidence: Evidence) -> float:
    head = evidence.text[:4096].lstrip("\ufeff").lstrip()
    if "Name" not in head[:400]:
        return 0.0
    table = read_table(head.split("\n", 1)[0])
    if table is None or not _is_stats(table):
        return 0.0
    return 0.9


def _duration(extra: dict[str, object]) -> float | None:
    value = extra.get("duration")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _note_failures(f: Finding, table: Table, failures: int) -> None:
    """Failures are recorded as evidence and details, not as a verdict."""
    f.details["failures"] = failures
    if failures <= 0:
        return
    f.hint(
        f"{failures} requests failed: evidence for the objectives above, "
        "not a verdict on the load"
    )
    for line, row in table.rows:
        name = (table.cell(row, "name") or "").strip('"')
        fails = number(table.cell(row, "failures")) or 0
        if fails > 0 and name not in ("Aggregated", "Total"):
            f.evidence.append(line)


def _judge_rate(f: Finding, requests: int, ctx: Context) -> None:
    duration = _duration(ctx.extra)
    if duration is None:
        f.hint(
            "the rate is not judged from a stats file (it has no time base): judge "
            "the *_stats_history.csv, or give the window's duration"
        )
        return
    achieved = requests / duration
    f.details.update(achieved_rps=round(achieved, 4), duration=duration)
    judge_rate(f, achieved, ctx)


def _last_total(table: Table) -> tuple[str, list[str]] | None:
    """The last total row whose request count can be read."""
    totals = [
        (line, row)
        for line, row in total_rows(table)
        if number(table.cell(row, "requests")) is not None
    ]
    return totals[-1] if totals else None


def judge(evidence: Evidence, ctx: Context) -> Finding:
    table = read_table(evidence.text)
    if table is None or not _is_stats(table):
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="load", kind=NAME)
    total = _last_total(table)
    if total is None:
        f.add(
            "min_sample",
            "the file has no readable total row (Aggregated): the run sent nothing "
            "or the file is cut off",
            requests=0,
            min_sample=ctx.min_sample,
        )
        return f
    line, row = total
    requests = int(number(table.cell(row, "requests")) or 0)
    f.evidence.append(line)
    f.details["requests"] = requests
    f.details["reported_rps_unused"] = number(table.cell(row, "reported_rps"))
    failures = int(number(table.cell(row, "failures")) or 0)
    _note_failures(f, table, failures)
    all_failed(f, requests, failures)
    judge_sample(f, requests, ctx.min_sample, where="in the run")
    _judge_rate(f, requests, ctx)
    return f


register(
    Kind(
        name=NAME,
        layer="load",
        summary="Locust *_stats.csv: request count, failures, rate given a duration",
        detect=detect,
        judge=judge,
    )
)
