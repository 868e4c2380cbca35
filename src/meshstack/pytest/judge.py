"""Turn a finding into a pytest outcome, as the verdict vocabulary prescribes.

PASS passes; WARN passes with a warning recorded; FAIL and INCONCLUSIVE fail;
INVALID-RUN fails and shows as broken in Allure; HARNESS-ERROR is reported as an
error; BLOCKED skips, naming the failed layer.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from meshstack.verdicts import Finding, Verdict

# The Allure label each judged finding leaves on its test (see reporting.py).
VERDICT_LABEL = "verdict"


class MeshstackWarning(UserWarning):
    """A WARN verdict: the claim holds with something a reviewer must see."""


class InvalidRun(Exception):
    """The measurement itself was not valid (shown as broken, not failed)."""


class HarnessError(Exception):
    """The harness, its input or how it was invoked is at fault (an error)."""


def _message(finding: Finding) -> str:
    lines = [f"{finding.layer} {finding.verdict}: {', '.join(finding.reasons)}"]
    lines += [f"  hint: {h}" for h in finding.hints]
    lines += [f"  evidence: {e}" for e in finding.evidence[:20]]
    if finding.details:
        lines.append("  details: " + json.dumps(finding.details, default=str)[:2000])
    return "\n".join(lines)


def _attach(finding: Finding, attachments: dict[str, str] | None) -> None:
    try:
        import allure
    except ImportError:  # allure-pytest is optional for analyze-only installs
        return
    allure.attach(
        json.dumps(finding.to_json(), indent=2, default=str),
        name=f"verdict: {finding.verdict}",
        attachment_type=allure.attachment_type.JSON,
    )
    for name, text in (attachments or {}).items():
        allure.attach(text, name=name, attachment_type=allure.attachment_type.TEXT)
    # Read back after the run: the most severe of a test's verdicts becomes its tag.
    allure.dynamic.label(VERDICT_LABEL, str(finding.verdict))
    if finding.verdict is Verdict.WARN:
        # Read back after the run to file the result under the "warnings" category.
        allure.dynamic.label("meshstack_verdict", _message(finding))


def judge(finding: Finding, attachments: dict[str, str] | None = None) -> Finding:
    """Record the finding on the current test and end it as its verdict says."""
    __tracebackhide__ = True
    _attach(finding, attachments)
    _record(finding)
    verdict = finding.verdict
    if verdict is Verdict.PASS:
        return finding
    if verdict is Verdict.WARN:
        warnings.warn(MeshstackWarning(_message(finding)), stacklevel=2)
        return finding
    if verdict is Verdict.BLOCKED:
        pytest.skip(_message(finding))
    if verdict is Verdict.INVALID_RUN:
        raise InvalidRun(_message(finding))
    if verdict is Verdict.HARNESS_ERROR:
        raise HarnessError(_message(finding))
    pytest.fail(_message(finding), pytrace=False)
    raise AssertionError("unreachable")


_current: dict[str, Any] = {}


def _record(finding: Finding) -> None:
    """Remember the finding for the report hooks of the running test."""
    _current.setdefault("findings", []).append(finding)


def take_findings() -> list[Finding]:
    return _current.pop("findings", [])
