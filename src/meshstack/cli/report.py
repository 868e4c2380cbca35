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
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from meshstack.cli.main import EXIT_HARNESS, EXIT_OK, EXIT_OPERATION, UsageError

log = logging.getLogger(__name__)

GENERATE_TIMEOUT = 300.0
# A nightly run of ~300 checks adds ~250 KB to the history file: keep a month.
HISTORY_LIMIT = 30
# Allure 3's awesome template: an async gtag.js loader, then its inline config.
_ANALYTICS = re.compile(
    r'<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*'
    r"<script>(?:(?!</script>).)*?gtag\((?:(?!</script>).)*</script>",
    re.DOTALL,
)
# What a browser fetches by itself when the page opens (not links a reader clicks).
_REMOTE_LOAD = re.compile(
    r"<(?:script|img|iframe|link)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//",
    re.IGNORECASE,
)
# The report's tree: layer (the plugin sets parentSuite to it), then module.
_GROUP_BY = ["parentSuite", "suite", "subSuite"]


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
    p.add_argument(
        "--history-limit",
        type=int,
        default=HISTORY_LIMIT,
        help=f"runs kept in the history file, oldest dropped (default {HISTORY_LIMIT})",
    )
    p.add_argument("--name", default="meshstack conformance")
    p.set_defaults(run=run)


_INSTALL_HINT = (
    "run `npm install --no-audit --no-fund` in the checkout (its package.json names "
    "allure 3), or set MESHSTACK_ALLURE to the allure executable"
)
# The checkout this module was installed from (editable installs): src/meshstack/cli
_CHECKOUT = Path(__file__).resolve().parents[3]


def allure_command() -> list[str]:
    """Allure 3: $MESHSTACK_ALLURE, node_modules here or in the checkout, PATH."""
    env = os.environ.get("MESHSTACK_ALLURE")
    if env:
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            raise FileNotFoundError(
                f"MESHSTACK_ALLURE={env} is not an executable file: point it at the "
                f"allure executable or unset it; to install Allure, {_INSTALL_HINT}"
            )
        return [env]
    for base in (Path.cwd(), _CHECKOUT):
        local = base / "node_modules" / ".bin" / "allure"
        if local.exists():
            return [str(local.resolve())]
    found = shutil.which("allure")
    if found:
        return [found]
    raise FileNotFoundError(
        f"the Allure 3 command line is not installed (looked in $MESHSTACK_ALLURE, "
        f"./node_modules, {_CHECKOUT}/node_modules and PATH): {_INSTALL_HINT}"
    )


def categories(results: Path) -> list[dict[str, Any]]:
    """The run's categories.json, in the form Allure 3's configuration reads.

    Allure 3 takes categories from its configuration, not from the results, and
    matches a message with a JavaScript regular expression searched anywhere in it,
    where categories.json holds Java expressions matched whole: the leading
    ``(?s)`` flag is dropped (JavaScript has no such inline flag).
    """
    path = results / "categories.json"
    if not path.is_file():
        return []
    rules = []
    for rule in json.loads(path.read_text(encoding="utf-8")):
        matcher: dict[str, Any] = {}
        if rule.get("matchedStatuses"):
            matcher["statuses"] = list(rule["matchedStatuses"])
        if rule.get("messageRegex"):
            matcher["message"] = str(rule["messageRegex"]).removeprefix("(?s)")
        rules.append(
            {
                "name": rule["name"],
                "matchers": matcher,
                "groupBy": ["layer"],
                "expand": True,
            }
        )
    return rules


def build(
    results: Path,
    output: Path,
    history: Path,
    name: str,
    history_limit: int = HISTORY_LIMIT,
) -> Path:
    """Generate the report; return the path of its single HTML file."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise NotADirectoryError(f"{results}: no Allure results (*-result.json) here")
    command = allure_command()
    history.parent.mkdir(parents=True, exist_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    awesome = {"singleFile": True, "reportName": name, "groupBy": _GROUP_BY}
    config = {
        "name": name,
        "output": str(output.resolve()),
        "historyPath": str(history.resolve()),
        "historyLimit": history_limit,
        "categories": categories(results),
        "plugins": {"awesome": {"options": awesome}},
    }
    with tempfile.TemporaryDirectory(prefix="meshstack-allure-") as tmp:
        rc = Path(tmp) / "allurerc.json"
        rc.write_text(json.dumps(config))
        argv = [*command, "generate", "--config", str(rc), str(results.resolve())]
        log.debug("running %s with %s", " ".join(argv), json.dumps(config))
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
    _strip_analytics(index)
    _one_entry_per_run(history)
    return index


def _one_entry_per_run(history: Path) -> None:
    """Keep one history entry per set of results: a report built again from the
    same results (the same result ids) replaces that run's entry instead of
    counting as another run in the trend."""
    try:
        lines = history.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2:
            return
        last, before = (json.loads(line) for line in lines[-2:][::-1])
    except (OSError, ValueError):
        return  # Allure's own file, as it wrote it: left alone

    def ids(entry: dict[str, Any]) -> set[str]:
        return {str(r.get("id")) for r in (entry.get("testResults") or {}).values()}

    if ids(last) == ids(before):
        kept = [*lines[:-2], lines[-1]]
        history.write_text("\n".join(kept) + "\n", encoding="utf-8")
        log.debug("%s: the same results again; one entry kept", history)


def _strip_analytics(index: Path) -> None:
    """Remove the web-analytics tag Allure's awesome report always embeds.

    The report is read on machines that may have no internet, and it must not
    report its readers to a third party: the tag (a script loaded from
    googletagmanager.com and the inline script that configures it) is cut out.
    """
    html = index.read_text(encoding="utf-8")
    stripped, count = _ANALYTICS.subn("", html)
    if count:
        index.write_text(stripped, encoding="utf-8")
        log.debug("%s: removed %d analytics script(s)", index, count)
    if _REMOTE_LOAD.search(stripped):
        # TODO: only the tag Allure 3.18 embeds is removed; a new remote load in a
        # later Allure would make the report reach out when opened.
        log.warning("%s still loads something from the network when opened", index)


def run(args: argparse.Namespace) -> int:
    if args.output.resolve() == args.results.resolve():
        raise UsageError("--output must differ from --results")
    if args.history_limit < 1:
        raise UsageError(
            f"--history-limit={args.history_limit}: expected a whole number of runs "
            "of at least 1"
        )
    try:
        index = build(
            args.results, args.output, args.history, args.name, args.history_limit
        )
    except NotADirectoryError as exc:
        print(
            f"meshstack report: {exc}; run the suites with --alluredir first",
            file=sys.stderr,
        )
        return EXIT_HARNESS
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"meshstack report: {exc}", file=sys.stderr)
        return EXIT_OPERATION
    print(f"report: {index.resolve()}")
    return EXIT_OK
