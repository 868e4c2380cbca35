"""meshstack's pytest plugin package: the only part of the library that imports pytest.

Suites turn a :class:`~meshstack.verdicts.Finding` into a test outcome with
:func:`judge`.
"""

from meshstack.pytest.judge import HarnessError, InvalidRun, judge

__all__ = ["HarnessError", "InvalidRun", "judge"]
