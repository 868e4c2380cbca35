"""What the run leaves for reviewers: Allure environment and categories, a summary.

Allure groups results by status and message; this module gives every verdict a
category of its own (warnings, inconclusive, invalid runs, harness errors, blocked)
and checks after the run that no result was merged away (``report_collapsed``).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import meshstack
from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.verdicts import LAYERS, Verdict

if TYPE_CHECKING:
    from meshstack.pytest.plugin import MeshstackRun

WARN_LABEL = "meshstack_verdict"

CATEGORIES = [
    {
        "name": "warnings",
        "matchedStatuses": ["passed"],
        "messageRegex": "(?s).*WARN.*",
        "description": "the claim holds with something a reviewer must see",
    },
    {
        "name": "inconclusive",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s).*INCONCLUSIVE.*",
        "description": "nothing to judge from: never a pass",
    },
    {
        "name": "invalid runs",
        "matchedStatuses": ["broken"],
        "messageRegex": "(?s).*INVALID-RUN.*",
        "description": "the measurement itself was not valid",
    },
    {
        "name": "harness errors",
        "matchedStatuses": ["broken"],
        "messageRegex": "(?s).*HARNESS-ERROR.*",
        "description": "the harness, its input or its invocation is at fault",
    },
    {
        "name": "blocked by a lower layer",
        "matchedStatuses": ["skipped"],
        "messageRegex": "(?s).*BLOCKED.*",
    },
    {
        "name": "stack failures",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s).*FAIL.*",
        "description": "the system under test breaks the claim",
    },
]


def environment(run: MeshstackRun) -> dict[str, str]:
    assert run.stack is not None
    stack = run.stack
    env = {
        "meshstack": meshstack.__version__,
        "python": platform.python_version(),
        "profile": str(stack.profile.path),
        "profile.name": stack.profile.name,
        "stack.mode": stack.mode,
        "run.id": stack.state.run_id or "-",
    }
    for layer, section in stack.profile.layers.items():
        env[f"{layer}.provider"] = str(section.get("provider"))
        if "version" in section:
            env[f"{layer}.version"] = str(section["version"])
    for layer, rec in stack.state.health.items():
        env[f"health.{layer}"] = (
            f"{rec['verdict']} {','.join(rec.get('reasons', []))}".strip()
        )
    return env


def finish_allure(directory: Path, run: MeshstackRun) -> list[str]:
    """Write environment and categories; mark WARN results; check for collapse."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    problems = _mark_warnings(directory)
    finding = analyzers.get("allure-results").judge(
        Evidence(text="", name=str(directory), path=directory), Context()
    )
    if finding.verdict is Verdict.HARNESS_ERROR:
        problems.append(
            f"allure results: {finding.summary()}: {'; '.join(finding.hints)}"
        )
    env = environment(run)
    if problems:
        env["harness.problems"] = " | ".join(problems)
    lines = [f"{k}={_escape(v)}" for k, v in env.items()]
    (directory / "environment.properties").write_text("\n".join(lines) + "\n")
    return problems


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", " ")


def _mark_warnings(directory: Path) -> list[str]:
    """Give passed WARN results a message, so the warnings category can match them."""
    for file in directory.glob("*-result.json"):
        try:
            data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        labels = {lab.get("name"): lab.get("value") for lab in data.get("labels", [])}
        warn = labels.get(WARN_LABEL)
        if data.get("status") == "passed" and warn:
            data.setdefault("statusDetails", {})["message"] = warn
            file.write_text(json.dumps(data), encoding="utf-8")
    return []


def terminal_summary(tr: Any, run: MeshstackRun) -> None:
    assert run.stack is not None
    stack = run.stack
    tr.section("meshstack")
    tr.write_line(f"run {stack.state.run_id or '-'}  profile {stack.profile.path}")
    for layer in LAYERS:
        rec = stack.state.health.get(layer)
        if rec is None:
            continue
        took = stack.timings.get(layer)
        took_s = f"{took:7.1f}s" if took is not None else "        "
        reasons = ", ".join(rec.get("reasons", [])) or "-"
        tr.write_line(f"  {layer:<8} {rec['verdict']:<13} {took_s}  {reasons}")
    if run.blocked_skips:
        tr.write_line(f"  {run.blocked_skips} check(s) BLOCKED by a failed lower layer")
    if run.dependency_skips:
        tr.write_line(f"  {len(run.dependency_skips)} skip(s) by pytest-dependency")
    for problem in run.harness_problems:
        tr.write_line(f"  harness problem: {problem}", red=True)
