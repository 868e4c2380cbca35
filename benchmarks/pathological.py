"""How long the analyzers take on a megabyte of the input that hurts regexes most.

    .venv/bin/python -m benchmarks.pathological [--out FILE]

For every kind: one line of about 1 MB made by repeating a unit again and again,
where the units are each fixture's longest line (the kind's own vocabulary) and a
list of characters patterns tend to repeat over (spaces, brackets, quotes, dots,
separators, ANSI escapes). Each input is detected and judged as the kind, and the
CPU time of both is measured (process time: other programs on the machine do not
count). The target is linear time: at most 2 s of CPU for any one input. Figures
are printed and, with --out, merged into that JSON file under "pathological".
Nothing here asserts a time: it measures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "analyzers" / "data"
SIZE = 1_000_000
TARGET_SECONDS = 2.0
FIXTURE_UNITS_PER_KIND = 6
UNITS = {
    "spaces": " ",
    "tabs": "\t",
    "open brackets": "[",
    "open braces": "{",
    "colons": ": ",
    "equals": "a=",
    "dots": ".",
    "escaped quotes": '\\"',
    "commas": "a, ",
    "table cells": "| 1 ",
    "dashes": "-",
    "digits": "0",
    "ansi escapes": "\x1b[",
    "check glyphs": "√ ",
}


def _units(kind: str) -> dict[str, str]:
    units = dict(UNITS)
    folder = DATA / kind
    files = (
        sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    )
    for path in files[:FIXTURE_UNITS_PER_KIND]:
        text = path.read_text(encoding="utf-8", errors="replace")
        longest = max(text.splitlines() or [""], key=len)
        if longest.strip():
            units[f"{path.name} longest line"] = longest + " "
    return units


def _cpu(kind: str, text: str) -> float:
    evidence = Evidence(text=text, name="pathological")
    started = time.process_time()
    analyzers.get(kind).detect(evidence)
    analyzers.analyze(evidence, Context(), kind=kind)
    return time.process_time() - started


def _timed(kind: str, unit: str) -> tuple[float, float]:
    """CPU seconds at a tenth of the size and at the full size; an input already
    over the target at a tenth is not run at full size (a super-linear pattern
    would take minutes there): its full-size time is extrapolated as quadratic."""
    tenth = _cpu(kind, unit * (SIZE // 10 // len(unit)))
    if tenth > TARGET_SECONDS / 4:
        return tenth, tenth * 100
    return tenth, _cpu(kind, unit * (SIZE // len(unit)))


def measure() -> dict[str, Any]:
    per_kind: dict[str, Any] = {}
    for kind in sorted(analyzers.kinds()):
        if kind == "allure-results":  # a directory kind: its files are other kinds
            continue
        pairs = {name: _timed(kind, unit) for name, unit in _units(kind).items()}
        times = {name: full for name, (_, full) in pairs.items()}
        worst = max(times, key=lambda n: times[n])
        growth = [full / tenth for tenth, full in pairs.values() if tenth > 0.005]
        per_kind[kind] = {
            "inputs": len(times),
            "median_cpu_seconds": round(statistics.median(times.values()), 3),
            "max_cpu_seconds": round(times[worst], 3),
            "slowest_input": worst,
            # 10 is linear: ten times the input, ten times the time
            "max_growth_for_10x_input": round(max(growth), 1) if growth else None,
        }
        print(
            f"{kind:20} {len(times):3} inputs"
            f"  median {per_kind[kind]['median_cpu_seconds']:.3f}s"
            f"  max {times[worst]:.3f}s ({worst})",
            flush=True,
        )
    overall = max(v["max_cpu_seconds"] for v in per_kind.values())
    return {
        "input_bytes": SIZE,
        "target_cpu_seconds": TARGET_SECONDS,
        "max_cpu_seconds": overall,
        "max_over_target": round(overall / TARGET_SECONDS, 3),
        "by_kind": per_kind,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, help="merge the figures into this JSON file"
    )
    args = parser.parse_args()
    result = measure()
    print(
        f"slowest input over all kinds: {result['max_cpu_seconds']:.3f}s CPU "
        f"({result['max_over_target']:.2f} of the {TARGET_SECONDS:.0f}s target)"
    )
    if args.out:
        data = json.loads(args.out.read_text()) if args.out.exists() else {}
        data["pathological"] = result
        args.out.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
