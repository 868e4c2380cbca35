"""`meshstack report`: one self-contained HTML file from a run's Allure results.

It runs the Allure 3 command line (npm package ``allure``, installed beside the
checkout by the setup script) with a generated configuration that asks for a
single-file report and carries history from run to run in one JSONL file.

Exit status: 0 the report was written; 2 Allure failed or is missing (the message
says how to install it); 3 the results are not a usable allure-results directory;
4 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from meshstack.cli.main import EXIT_HARNESS, EXIT_OK, EXIT_OPERATION, UsageError

GENERATE_TIMEOUT = 300.0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="build the single-file HTML report")
    p.add_argument("--results", type=Path, default=Path("reports/allure-results"))
    p.add_argument("--output", type=Path, default=Path("reports/out"))
    p.add_argument(
        "--history",
        type=Path,
        default=Path("reports/history/history.jsonl"),
        help="history carried between runs (created if absent)",
    )
    p.add_argument("--name", default="meshstack conformance")
    p.set_defaults(run=run)


def allure_command() -> list[str]:
    """The Allure 3 CLI: $MESHSTACK_ALLURE, ./node_modules, or `allure` on PATH."""
    env = os.environ.get("MESHSTACK_ALLURE")
    if env:
        return [env]
    local = Path("node_modules/.bin/allure")
    if local.exists():
        return [str(local.resolve())]
    found = shutil.which("allure")
    if found:
        return [found]
    raise FileNotFoundError(
        "the Allure 3 command line is not installed: run `npm install` in the "
        "checkout (package.json names it), or set MESHSTACK_ALLURE"
    )


def build(results: Path, output: Path, history: Path, name: str) -> Path:
    """Generate the report; return the path of its single HTML file."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise NotADirectoryError(f"{results}: no Allure results (*-result.json) here")
    history.parent.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    config = {
        "name": name,
        "output": str(output.resolve()),
        "historyPath": str(history.resolve()),
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name}}},
    }
    with tempfile.TemporaryDirectory(prefix="meshstack-allure-") as tmp:
        rc = Path(tmp) / "allurerc.json"
        rc.write_text(json.dumps(config))
        argv = [*allure_command(), "generate", "--config", str(rc), str(results.resolve())]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=GENERATE_TIMEOUT,
            env={**os.environ, "NO_COLOR": "1", "CI": "true"},
        )
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(argv)}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    index = output / "index.html"
    if not index.exists():
        raise RuntimeError(f"allure generate succeeded but wrote no {index}")
    return index


def run(args: argparse.Namespace) -> int:
    if args.output.resolve() == args.results.resolve():
        raise UsageError("--output must differ from --results")
    try:
        index = build(args.results, args.output, args.history, args.name)
    except NotADirectoryError as exc:
        print(f"meshstack report: {exc}; run the suites with --alluredir first", file=sys.stderr)
        return EXIT_HARNESS
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"meshstack report: {exc}", file=sys.stderr)
        return EXIT_OPERATION
    print(f"report: {index.resolve()}")
    return EXIT_OK
