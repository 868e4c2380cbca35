"""Reading Locust's ``*_stats_history.csv`` for the load and SLO providers.

The window and the per-request-name counts in it come from the file's own rows,
read by header name through the ``locust-history`` analyzer's table reader.
"""

from __future__ import annotations

from meshstack.analyzers.locust_history import number, read_table


def _rows(text: str) -> list[tuple[float, str, int, int]]:
    """(timestamp, name, cumulative requests, cumulative failures) per row."""
    table = read_table(text)
    if table is None:
        return []
    out = []
    for _line, row in table.rows:
        t = number(table.cell(row, "timestamp"))
        req = number(table.cell(row, "requests"))
        if t is None or req is None:
            continue
        fails = number(table.cell(row, "failures")) or 0
        out.append(
            (t, (table.cell(row, "name") or "").strip('"'), int(req), int(fails))
        )
    return out


def window_of(text: str, ramp: float, steady: float) -> tuple[float, float] | None:
    """The steady window (epoch seconds): ``ramp`` s after the first row, ``steady``
    s long, cut at the last row; None when the file has no rows at all."""
    times = sorted({t for t, *_ in _rows(text)})
    if not times:
        return None
    start = times[0] + ramp
    end = min(start + steady, times[-1])
    return (start, end) if end > start else (times[0], times[-1])


def counts_at(text: str, window: tuple[float, float]) -> dict[str, dict[str, int]]:
    """Per request name (and "Aggregated"): requests and failures inside the window.

    Each count is the cumulative value at the last row at or before the window's
    end, minus the value at the last row at or before its start.
    """
    start, end = window
    first: dict[str, tuple[int, int]] = {}
    last: dict[str, tuple[int, int]] = {}
    for t, name, req, fails in sorted(_rows(text)):
        if t <= start:
            first[name] = (req, fails)
        if t <= end:
            last[name] = (req, fails)
    return {
        name: {
            "requests": req - first.get(name, (0, 0))[0],
            "failures": fails - first.get(name, (0, 0))[1],
        }
        for name, (req, fails) in last.items()
    }
