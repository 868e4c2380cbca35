"""Measure the harness's own speed on the local stack, in one run.

    .venv/bin/python -m benchmarks.run

Steps: bring the local stack up (reused if up); build a stack and keep it; run the
non-load suites against it with external calls timed (wall time over time spent in
external calls; target 1.2 or less); measure how soon a watch-based and a poll-based
wait notice a condition (target under 0.5 s); remove the stack. Figures are printed
and written to benchmarks/results.json. Nothing here asserts a time: it measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".meshstack" / "bench-state.json"
PROFILE = REPO / "stacks" / "local.yaml"


def _run(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        argv, cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout
    )
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` exited {proc.returncode}")
    return time.monotonic() - t0


def main() -> int:
    py = sys.executable
    meshstack = str(Path(py).parent / "meshstack")
    results: dict[str, Any] = {}
    _run([meshstack, "local", "up"])
    results["build_seconds"] = round(
        _run([py, "-m", "pytest", "suites/cloud", "-q", "--stack=fresh", "--keep-stack",
              f"--stack-state={STATE}", "-p", "no:cacheprovider"]),
        2,
    )  # fmt: skip
    out = REPO / ".meshstack" / "bench-external.json"
    try:
        _run(
            [py, "-m", "pytest", "suites", "-q", "--stack=existing",
             f"--stack-state={STATE}", "--ignore=suites/load", "--ignore=suites/slo",
             "-p", "benchmarks.external_time", "-p", "no:cacheprovider"],
            env={"MESHSTACK_BENCH_OUT": str(out)},
        )  # fmt: skip
        results["non_load_suites"] = json.loads(out.read_text())
        results.update(_latencies())
    finally:
        _run([meshstack, "down", f"--stack-state={STATE}"])
    # Merged: the file also keeps other benchmarks' figures (pathological).
    target = REPO / "benchmarks" / "results.json"
    kept = json.loads(target.read_text()) if target.exists() else {}
    target.write_text(json.dumps({**kept, **results}, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


def _latencies() -> dict[str, Any]:
    from benchmarks import notice_latency
    from meshstack.profile import load_profile
    from meshstack.stack import Stack

    stack = Stack(load_profile(PROFILE), "existing", STATE)
    return {
        "watch_based_wait": notice_latency.watch_based(stack),
        "poll_based_wait": notice_latency.poll_based(stack),
    }


if __name__ == "__main__":
    sys.exit(main())
