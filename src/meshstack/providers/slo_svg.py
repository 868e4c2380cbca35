"""A small SVG line chart: throughput and latency over a load window, no plot library.

The harness runs without matplotlib; an SVG is text, attaches to Allure as
``image/svg+xml`` and opens in any browser.
"""

from __future__ import annotations

import math
from html import escape

WIDTH, PANEL_HEIGHT, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_Y = 720, 180, 64, 16, 28

Points = list[tuple[float, float]]


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _panel(
    title: str, unit: str, series: dict[str, Points], t0: float, t1: float, top: int,
    bound: float | None = None,
) -> list[str]:  # fmt: skip
    finite = [v for pts in series.values() for _, v in pts if math.isfinite(v)]
    ymax = _nice_max(max(finite + [bound or 0.0], default=1.0))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = PANEL_HEIGHT - 2 * MARGIN_Y
    span = max(t1 - t0, 1e-9)

    def xy(t: float, v: float) -> str:
        x = MARGIN_LEFT + (t - t0) / span * plot_w
        y = top + MARGIN_Y + plot_h - (v / ymax) * plot_h
        return f"{x:.1f},{y:.1f}"

    out = [
        f'<text x="{MARGIN_LEFT}" y="{top + 18}" font-size="13">{escape(title)}</text>',
        f'<rect x="{MARGIN_LEFT}" y="{top + MARGIN_Y}" width="{plot_w}" '
        f'height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        v = ymax * i / 4
        y = top + MARGIN_Y + plot_h - plot_h * i / 4
        out.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{v:g} {escape(unit)}</text>'
        )
    if bound is not None:
        out.append(
            f'<polyline points="{xy(t0, bound)} {xy(t1, bound)}" stroke="#c00" '
            'stroke-dasharray="4 3" fill="none"/>'
        )
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
    for row, ((name, pts), colour) in enumerate(
        zip(series.items(), colours, strict=False)
    ):
        good = [(t, v) for t, v in pts if math.isfinite(v)]
        if good:
            path = " ".join(xy(t, v) for t, v in good)
            out.append(f'<polyline points="{path}" stroke="{colour}" fill="none"/>')
        out.append(
            f'<text x="{WIDTH - MARGIN_RIGHT}" y="{top + 18 + 12 * row}"'
            f' font-size="10" text-anchor="end" fill="{colour}">{escape(name)}</text>'
        )
    return out


def window_chart(
    title: str,
    start: float,
    end: float,
    throughput: dict[str, Points],
    latency: dict[str, Points],
    latency_bound: float | None = None,
) -> str:
    """Two panels over [start, end]: requests per second, and latency in ms."""
    height = 2 * PANEL_HEIGHT + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif"><title>{escape(title)}</title>',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    parts += _panel(f"{title}: throughput", "rps", throughput, start, end, 0)
    parts += _panel(
        f"{title}: latency", "ms", latency, start, end, PANEL_HEIGHT, latency_bound
    )
    parts.append(
        f'<text x="{MARGIN_LEFT}" y="{height - 8}" font-size="10">window '
        f"{end - start:.0f} s, epoch {start:.0f} to {end:.0f}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
