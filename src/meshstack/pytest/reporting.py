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
from meshstack import analyzers, clock
from meshstack.analyzers import Context, Evidence
from meshstack.pytest.judge import VERDICT_LABEL
from meshstack.verdicts import LAYERS, Verdict

if TYPE_CHECKING:
    from meshstack.pytest.plugin import MeshstackRun

WARN_LABEL = "meshstack_verdict"
_VERDICTS = {str(v) for v in Verdict}

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
    """Write environment and categories, label results, check for collapse.

    Each result is labelled with its layer and verdict; the check looks for results
    Allure would merge (``report_collapsed``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))
    problems = _label_results(directory)
    finding = analyzers.get("allure-results").judge(
        Evidence(text="", name=str(directory), path=directory),
        # Each item that reported must appear as one distinct result.
        Context(extra={"expected_results": len(run.reported)}),
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


def _label_results(directory: Path) -> list[str]:
    """Label every result with its layer and verdict, and give WARN results a message.

    The layer becomes the result's ``layer`` and ``parentSuite`` labels (so the
    report's tree and its filters read by layer), the most severe verdict judged in
    the test becomes a ``tag``, and a passed WARN result gets its warning as the
    message the "warnings" category matches on.
    """
    for file in directory.glob("*-result.json"):
        try:
            data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        _label_layer_and_verdict(data)
        labels = {lab.get("name"): lab.get("value") for lab in data.get("labels", [])}
        warn = labels.get(WARN_LABEL)
        if data.get("status") == "passed" and warn:
            data.setdefault("statusDetails", {})["message"] = warn
        file.write_text(json.dumps(data), encoding="utf-8")
    return []


def _label_layer_and_verdict(data: dict[str, Any]) -> None:
    labels: list[dict[str, Any]] = [
        lab for lab in data.get("labels") or [] if isinstance(lab, dict)
    ]
    layer = _layer(labels, str(data.get("fullName", "")))
    verdict = _verdict(labels, data)
    if layer is not None:
        # allure-pytest names the parent suite after the package ("suites.cloud").
        labels = [
            lab for lab in labels if lab.get("name") not in ("parentSuite", "layer")
        ]
        labels += [
            {"name": "parentSuite", "value": layer},
            {"name": "layer", "value": layer},
        ]
    if verdict is not None and {"name": "tag", "value": verdict} not in labels:
        labels.append({"name": "tag", "value": verdict})
    data["labels"] = labels


def _layer(labels: list[dict[str, Any]], full_name: str) -> str | None:
    """The layer marker the plugin gave the test (a tag), else its suites/ folder."""
    for lab in labels:
        if lab.get("name") == "tag" and lab.get("value") in LAYERS:
            return str(lab["value"])
    parts = full_name.split(".")
    if len(parts) > 1 and parts[0] == "suites" and parts[1] in LAYERS:
        return parts[1]
    return None


def _verdict(labels: list[dict[str, Any]], data: dict[str, Any]) -> str | None:
    """The most severe verdict judged in the test; BLOCKED for a gate skip."""
    judged = [
        Verdict(lab["value"])
        for lab in labels
        if lab.get("name") == VERDICT_LABEL and lab.get("value") in _VERDICTS
    ]
    if judged:
        return str(max(judged, key=lambda v: v.severity))
    details = data.get("statusDetails")
    message = details.get("message", "") if isinstance(details, dict) else ""
    if data.get("status") == "skipped" and "BLOCKED:" in str(message):
        return str(Verdict.BLOCKED)
    return None


def _health_rows(health: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The recorded verdicts in layer order, each layer's measurements (one per
    load profile, ``load:emojivoto``) after it."""
    rows = []
    for layer in LAYERS:
        if layer in health:
            rows.append((layer, health[layer]))
        rows += sorted((k, v) for k, v in health.items() if k.startswith(f"{layer}:"))
    return rows


def terminal_summary(tr: Any, run: MeshstackRun) -> None:
    assert run.stack is not None
    stack = run.stack
    tr.section("meshstack")
    tr.write_line(f"run {stack.state.run_id or '-'}  profile {stack.profile.path}")
    for layer, rec in _health_rows(stack.state.health):
        took = stack.timings.get(layer)
        took_s = f"{took:7.1f}s" if took is not None else "        "
        reasons = ", ".join(rec.get("reasons", [])) or "-"
        tr.write_line(f"  {layer:<16} {rec['verdict']:<13} {took_s}  {reasons}")
        if rec["verdict"] not in ("PASS", "WARN", "BLOCKED"):
            # The layer's own words on why: its checks may only show the aftermath.
            for hint in rec.get("hints", [])[:3]:
                tr.write_line(f"  {'':<16} hint: {hint[:300]}")
    if run.blocked_skips:
        tr.write_line(f"  {run.blocked_skips} check(s) BLOCKED by a failed lower layer")
    if run.dependency_skips:
        tr.write_line(f"  {len(run.dependency_skips)} skip(s) by pytest-dependency")
    for problem in run.harness_problems:
        tr.write_line(f"  harness problem: {problem}", red=True)
    # pytest's closing "N passed in T" starts counting after the stack was built
    tr.write_line(
        f"  this session: {clock.monotonic() - run.started:.1f}s, of which building "
        f"and probing the layers {sum(stack.timings.values()):.1f}s"
    )
    if stack.mode != "existing" and stack.keep and stack.state.exists:
        tr.write_line(
            f"  stack kept (run {stack.state.run_id}): attach with --stack=existing; "
            "remove it with `meshstack down`"
        )
