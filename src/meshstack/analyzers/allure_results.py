"""An ``allure-results`` directory: did the tooling keep every result it was given?

allure-pytest writes one ``<uuid>-result.json`` per test run, beside
``*-container.json`` (fixtures), attachments, ``environment.properties`` and
``categories.json``. Two ways the tooling, not the stack, loses results:

* **collapsed** (HARNESS-ERROR ``report_collapsed``): Allure shows one test per
  ``historyId`` and files the others as retries. historyId is built from the test's
  full name and parameter values, so the same test run by two xdist workers or for two
  targets without a distinguishing parameter collapses. Results that share a
  historyId are retries when one worker ran them one after another (same ``host`` and
  ``thread`` labels), and collapsed when they came from different workers. With
  ``Context.extra["expected_results"]`` (collected items x targets), fewer distinct
  (fullName, parameters) pairs than that is collapsed too.
* **dependency not honoured** (HARNESS-ERROR ``dependency_order_not_honoured``):
  pytest-dependency skips a test ("<test> depends on <dependency>") when it has not
  seen its dependency pass *in its own process*; under xdist the dependency may have
  passed on another worker. A dependency skip whose dependency passed in another
  result is this.

Skips are counted apart: meshstack's gate skips (message starting "BLOCKED"), dependency
skips whose dependency is not among the results ("dependency not run here"),
dependency skips whose dependency failed, and any other skip.

* **incomplete** (HARNESS-ERROR ``report_incomplete``): a ``*-result.json`` that is
  not a whole JSON object (a worker killed mid-write, a full disk) is a result the
  report will not show: Allure skips a file it cannot parse. A cut file is salvaged
  (the fields it still holds are read in allure-pytest's order), so a collapse or a
  dependency skip it shows is still found; a file with nothing readable is named in
  ``details.unreadable``. Either way the report lost it, so the directory is never a
  pass.

This kind judges the report's integrity, not the stack: failed and broken tests are
the outcome the report exists to show, each judged by its own test. They are counted
in ``details.statuses``, named in ``details.failed`` and a hint, and never make this
finding fail (a PASS here means "every result the run wrote will be shown").

A directory with no ``*-result.json`` at all is HARNESS-ERROR ``unrecognised_input``:
not a usable results directory (the run wrote nothing there, or the wrong directory
was named), and never a pass.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshstack.analyzers import (
    Context,
    Evidence,
    Kind,
    decode,
    register,
    unrecognised,
)
from meshstack.verdicts import Finding

NAME = "allure-results"
# A name starts after a space or the start: without (?<!\S) every position inside a
# long word would start a fresh scan (100 KB of letters took minutes).
_DEPENDS = re.compile(r"(?<!\S)(\S+) depends on (\S+)")
_MARKERS = ("-container.json", "environment.properties", "categories.json")
_MAX_EVIDENCE = 20


@dataclass
class Result:
    file: str
    name: str
    full_name: str
    history_id: str
    status: str
    message: str
    parameters: tuple[tuple[str, str], ...]
    worker: tuple[str, str] | None
    start: float

    @property
    def test(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.full_name, self.parameters

    def describe(self) -> str:
        where = "/".join(self.worker) if self.worker else "unknown worker"
        params = ",".join(f"{k}={v}" for k, v in self.parameters)
        test = (self.full_name or self.name) + (f"[{params}]" if params else "")
        return f"{self.file}: {test} {self.status} [{where}]"


def _result_files(path: Path | None) -> list[Path]:
    if path is None or not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.name.endswith("-result.json"))


def detect(evidence: Evidence) -> float:
    path = evidence.path
    if path is None or not path.is_dir():
        return 0.0
    if _result_files(path):
        return 0.95
    if any(p.name.endswith(_MARKERS) for p in path.iterdir()):
        return 0.6
    return 0.0


def _labels(doc: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label in doc.get("labels") or []:
        if isinstance(label, dict) and "name" in label:
            out.setdefault(str(label["name"]), str(label.get("value", "")))
    return out


def _parameters(doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    params = doc.get("parameters") or []
    pairs = [
        (str(p.get("name", "")), str(p.get("value", "")))
        for p in params
        if isinstance(p, dict)
    ]
    return tuple(sorted(pairs))


_STRING = r'"((?:[^"\\]|\\.)*)"'
_FIELD = re.compile(r'"(name|status|historyId|fullName|message)"\s*:\s*' + _STRING)
_LABEL = re.compile(r'\{\s*"name"\s*:\s*"(thread|host)"\s*,\s*"value"\s*:\s*' + _STRING)
_PARAM = re.compile(
    r'\{\s*"name"\s*:\s*' + _STRING + r'\s*,\s*"value"\s*:\s*' + _STRING
)


def _unescape(text: str) -> str:
    try:
        return str(json.loads(f'"{text}"'))
    except (ValueError, RecursionError):
        return text


def _salvage(text: str) -> dict[str, Any] | None:
    """The fields a cut result file still holds, in allure-pytest's field order."""
    doc: dict[str, Any] = {}
    for m in _FIELD.finditer(text):
        key = m.group(1)
        if key == "message":
            doc.setdefault("statusDetails", {"message": _unescape(m.group(2))})
        else:
            doc.setdefault(key, _unescape(m.group(2)))
    doc["labels"] = [
        {"name": m.group(1), "value": _unescape(m.group(2))}
        for m in _LABEL.finditer(text)
    ]
    params = text.partition('"parameters"')[2].partition("]")[0]
    doc["parameters"] = [
        {"name": _unescape(m.group(1)), "value": _unescape(m.group(2))}
        for m in _PARAM.finditer(params)
    ]
    if "status" not in doc or not ("name" in doc or "fullName" in doc):
        return None
    return doc


def _read(path: Path) -> tuple[Result | None, bool]:
    """A result file's result, and whether it had to be salvaged from damage."""
    try:
        text = decode(path.read_bytes())  # a byte-order mark is read, not damage
    except OSError:
        return None, False
    try:
        doc = json.loads(text)
        salvaged = False
    except (ValueError, RecursionError):
        doc, salvaged = _salvage(text), True
    if not isinstance(doc, dict):
        return None, salvaged
    return _result(path.name, doc), salvaged


def _result(file: str, doc: dict[str, Any]) -> Result:
    labels = _labels(doc)
    details = doc.get("statusDetails")
    message = details.get("message", "") if isinstance(details, dict) else ""
    start = doc.get("start")
    worker = (labels.get("host", ""), labels["thread"]) if "thread" in labels else None
    return Result(
        file=file,
        name=str(doc.get("name", "")),
        full_name=str(doc.get("fullName", "")),
        history_id=str(doc.get("historyId", "")),
        status=str(doc.get("status", "unknown")),
        message=str(message or ""),
        parameters=_parameters(doc),
        worker=worker,
        start=float(start) if isinstance(start, int | float) else 0.0,
    )


def _is_retry_group(group: list[Result]) -> bool:
    """One worker re-ran the test, or (no labels) every run but the last failed."""
    workers = {r.worker for r in group}
    if None not in workers:
        return len(workers) == 1
    ordered = sorted(group, key=lambda r: r.start)
    return all(r.status in ("failed", "broken") for r in ordered[:-1])


def _judge_collapse(f: Finding, results: list[Result], ctx: Context) -> None:
    groups: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        groups[r.history_id or repr(r.test)].append(r)
    collapsed = [g for g in groups.values() if len(g) > 1 and not _is_retry_group(g)]
    retries = sum(len(g) - 1 for g in groups.values() if len(g) > 1) - sum(
        len(g) - 1 for g in collapsed
    )
    distinct = len({r.test for r in results})
    f.details.update(distinct_tests=distinct, retries=retries)
    for group in collapsed[:_MAX_EVIDENCE]:
        f.evidence.extend(r.describe() for r in group)
    if collapsed:
        f.add(
            "report_collapsed",
            f"{len(collapsed)} tests ran on more than one worker or target with the "
            "same historyId: Allure will show each once. Parametrize layer tests by "
            "target, or write one results directory per target",
            collapsed=len(collapsed),
        )
    _judge_expected(f, distinct, ctx.extra.get("expected_results"))


def _judge_expected(f: Finding, distinct: int, expected: object) -> None:
    if not isinstance(expected, int) or isinstance(expected, bool):
        return
    f.details["expected_results"] = expected
    if distinct < expected:
        f.add(
            "report_collapsed",
            f"{distinct} distinct (fullName, parameters) pairs where {expected} "
            "results were expected: results were merged or lost",
        )


def _dependency_candidates(
    dep: str, skipped: Result, results: list[Result]
) -> list[Result]:
    """Results that are the named dependency (pytest-dependency's naming)."""
    parts = dep.split("::")
    last = parts[-1]
    module = skipped.full_name.split("#", 1)[0]
    out = []
    for r in results:
        test_name = r.full_name.split("#", 1)[-1] if "#" in r.full_name else r.name
        if r is skipped or last not in (r.name, test_name):
            continue
        scopes = [Path(p).stem if p.endswith(".py") else p for p in parts[:-1]]
        if any(scope not in r.full_name for scope in scopes):
            continue
        same_module = r.full_name.split("#", 1)[0] == module
        if len(parts) == 1 and module and not same_module:
            continue
        out.append(r)
    return out


def _classify_skip(r: Result, results: list[Result]) -> tuple[str, Result | None]:
    message = re.sub(r"^Skipped:\s*", "", r.message.strip())
    if message.startswith("BLOCKED"):
        return "blocked", None
    m = _DEPENDS.search(message)
    if m is None:
        return "other", None
    candidates = _dependency_candidates(m.group(2), r, results)
    passed = [c for c in candidates if c.status == "passed"]
    if passed:
        return "dependency_passed", passed[0]
    if candidates:
        return "dependency_failed", candidates[0]
    return "dependency_not_run_here", None


def _judge_skips(f: Finding, results: list[Result]) -> None:
    counts: Counter[str] = Counter()
    for r in results:
        if r.status != "skipped":
            continue
        kind, dep = _classify_skip(r, results)
        counts[kind] += 1
        if dep is not None and kind == "dependency_passed":
            f.evidence.append(f"{r.describe()}: {r.message}")
            f.evidence.append(f"  but its dependency passed: {dep.describe()}")
    f.details["skips"] = dict(sorted(counts.items()))
    if counts["dependency_passed"]:
        f.add(
            "dependency_order_not_honoured",
            f"{counts['dependency_passed']} tests were skipped by "
            "pytest-dependency although their dependency passed on another "
            "worker: keep each dependency chain in one xdist group (--dist loadgroup)",
        )
    if counts["dependency_not_run_here"]:
        f.hint(
            f"{counts['dependency_not_run_here']} dependency skips name a test that "
            "is not among these results (not collected or not run here)"
        )


def _read_all(f: Finding, files: list[Path]) -> list[Result]:
    """Every readable result; damaged files are salvaged, and named as lost."""
    results, salvaged, unreadable = [], [], []
    for path in files:
        result, damaged = _read(path)
        if result is None:
            unreadable.append(path.name)
            continue
        results.append(result)
        if damaged:
            salvaged.append(path.name)
    if salvaged:
        f.details["salvaged"] = salvaged[:_MAX_EVIDENCE]
        f.hint(f"{len(salvaged)} result files are cut off; judged what they hold")
    if unreadable:
        f.details["unreadable"] = unreadable[:_MAX_EVIDENCE]
    lost = len(salvaged) + len(unreadable)
    if lost:
        f.add(
            "report_incomplete",
            f"{lost} of {len(files)} result files are not whole JSON "
            f"({len(unreadable)} with nothing readable): Allure will leave them out "
            "of the report. Find why the writer stopped (a killed worker, a full "
            "disk) and run again",
            lost=lost,
        )
    return results


def _note_failures(f: Finding, results: list[Result]) -> None:
    """Failed and broken tests: the report's content, not its integrity."""
    failed = [r for r in results if r.status in ("failed", "broken")]
    if not failed:
        return
    f.details["failed"] = [r.describe() for r in failed[:_MAX_EVIDENCE]]
    f.hint(
        f"{len(failed)} tests failed or broke: each is judged by its own result in "
        "the report; this finding judges only whether the report keeps them all"
    )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    files = _result_files(evidence.path)
    if not files:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="report", kind=NAME)
    results = _read_all(f, files)
    if not results:
        return f  # every file lost: report_incomplete, nothing else to judge
    f.details.update(
        results=len(results),
        statuses=dict(sorted(Counter(r.status for r in results).items())),
        workers=len({r.worker for r in results if r.worker}),
    )
    _judge_collapse(f, results, ctx)
    _judge_skips(f, results)
    _note_failures(f, results)
    return f


register(
    Kind(
        name=NAME,
        layer="report",
        summary="allure-results directory: collapsed, lost results, dependency skips",
        detect=detect,
        judge=judge,
        directory=True,
        keeps=("-result.json", *_MARKERS),
    )
)
