"""The one wait helper: a deadline, an interval, and a message that says what was seen.

``wait_for`` polls ``probe`` until ``done`` says yes, a terminal state appears, or
the deadline passes. It logs each *change* of state with the elapsed time (not
every poll), treats the exception types it is given as "not yet", and on timeout
raises :class:`WaitTimeout` quoting what was awaited, the limit and the last state.
Where an API offers a watch, use it and hand its events to ``wait_for`` through a
probe that blocks up to ``interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from meshstack import clock

log = logging.getLogger(__name__)

T = TypeVar("T")


class WaitTimeout(Exception):
    """The awaited condition did not hold within the limit."""

    def __init__(self, what: str, timeout: float, last: object) -> None:
        super().__init__(
            f"timed out after {timeout:.1f}s waiting for {what}; "
            f"last state seen: {last!r}"
        )
        self.what, self.timeout, self.last = what, timeout, last


class WaitFailed(Exception):
    """A terminal state appeared: waiting longer cannot help."""

    def __init__(self, what: str, state: object) -> None:
        super().__init__(f"gave up waiting for {what}: terminal state {state!r}")
        self.what, self.state = what, state


def wait_for(
    what: str,
    probe: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    interval: float = 0.1,
    terminal: Callable[[T], bool] = lambda _: False,
    retry_on: tuple[type[BaseException], ...] = (),
    describe: Callable[[T], object] = lambda v: v,
) -> T:
    """Return the first probed value that is ``done``; raise on terminal or timeout."""
    start = clock.monotonic()
    deadline = start + timeout
    last: object = "<never probed>"
    while True:
        try:
            value = probe()
        except retry_on as exc:
            state: object = f"{type(exc).__name__}: {exc}"
        else:
            state = describe(value)
            if done(value):
                log.info("%s: done after %.2fs", what, clock.monotonic() - start)
                return value
            if terminal(value):
                raise WaitFailed(what, state)
        if state != last:
            log.info("%s: %s (%.2fs)", what, state, clock.monotonic() - start)
            last = state
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last)
        clock.sleep(min(interval, remaining))
