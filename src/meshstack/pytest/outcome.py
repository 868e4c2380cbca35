"""How verdicts become pytest outcomes, and how tooling skips are told apart.

HARNESS-ERROR is an *error* in pytest's vocabulary: a check that raised
:class:`~meshstack.pytest.judge.HarnessError` in its body is reported as an error
of the test, not a failure. A skip that pytest-dependency made because a
dependency's result was not seen in this process is the tooling's doing, not the
stack's, and is counted apart from BLOCKED skips.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest

from meshstack.pytest.judge import HarnessError, InvalidRun

# pytest-dependency's skip reason: "<name> depends on <dependency>"
_DEPENDS = re.compile(r"\bdepends on (?P<dep>\S+)")


def adjust(report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """Turn a HarnessError raised in a test's body into an error of that test.

    A verdict raised as an exception (HARNESS-ERROR, INVALID-RUN) is reported by
    its message alone, as a FAIL is: its traceback would show the harness's own
    code, which says nothing about the stack.
    """
    if report.when == "call" and call.excinfo is not None:
        if call.excinfo.errisinstance((HarnessError, InvalidRun)):
            report.longrepr = str(call.excinfo.value)
        if call.excinfo.errisinstance(HarnessError):
            # pytest counts a failed report outside the call phase as an error.
            report.when = "setup"  # type: ignore[assignment]


def skip_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        message = str(longrepr[2])
        return (
            message[len("Skipped: ") :] if message.startswith("Skipped: ") else message
        )
    return str(longrepr or "")


def is_dependency_skip(message: str) -> bool:
    return bool(_DEPENDS.search(message))


def dependency_problems(skips: Iterable[str], passed: set[str]) -> list[str]:
    """HARNESS-ERROR dependency_order_not_honoured for skips whose dependency passed.

    A dependency named by pytest-dependency is a test name or node id; it passed if
    any passed node id ends with it.
    """
    problems = []
    for entry in skips:
        match = _DEPENDS.search(entry)
        if match is None:
            continue
        dep = match.group("dep").strip("'\"")
        if any(node == dep or node.endswith("::" + dep) for node in passed):
            problems.append(
                f"HARNESS-ERROR dependency_order_not_honoured: {entry} "
                f"(its dependency {dep} passed in another process)"
            )
    return problems
