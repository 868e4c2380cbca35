"""The output of ``microstack init`` (kind ``microstack-log``).

What it reads: the init's log lines (``<time> - microstack_init - INFO - <step>``,
also WARNING and ERROR), its ``Waiting for <ip>:<port>`` progress lines, a Python
traceback and the exception that ends it, the closing "Complete. Marked
microstack as initialized!", a kernel ``Killed`` line, and, from the same
capture, ``snap list microstack`` (with or without its header) or the ``snap
install`` confirmation ("microstack (beta) ussuri from Canonical✓ installed").

What it judges (layer ``cloud``):

- ``microstack_init_failed``: a traceback, an ERROR line or ``Killed`` after the
  last completion line. ``details.stage`` is the step announced by the last INFO
  line before the failure, reduced to that step: the last clause of the message,
  without "..." or a parenthesis ("Mysql server started! Creating databases ..."
  gives "Creating databases", case C18); ``details.waiting_for`` the address of a
  ``Waiting for`` line after it; ``details.exception`` the traceback's last line
  where the capture holds it. ``Waiting for`` lines are progress, never failures.
- PASS: the completion line with no failure after it. WARNING lines are hints
  (software emulation when the CPU offers no virtualization, say).
- A log that ends with neither (cut off, or init still running) cannot claim
  success: INCONCLUSIVE ``context_missing`` with the stage it had reached.

``details.snap`` carries the snap's version, revision, channel and confinement
wherever the capture shows them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "microstack-log"

_LOG_LINE = re.compile(r"microstack_init - (DEBUG|INFO|WARNING|ERROR|CRITICAL) - (.*)$")
_WAITING = re.compile(r"^\s*Waiting for (\S+:\d+)")
_TRACEBACK = re.compile(r"^\s*Traceback \(most recent call last\):")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\w*)\b:?")
_COMPLETE = re.compile(r"Marked microstack as initiali[sz]ed")
_KILLED = re.compile(r"^\s*Killed\s*$")
_INIT_COMMAND = re.compile(r"\bmicrostack[. ]init\b")
# " (note)" with the spaces before it. (?<!\s) starts the spaces at their first one
# and [^()] stops at the next parenthesis, so a megabyte of spaces or of "(" is read
# once, not once per position.
_PARENTHETICAL = re.compile(r"(?<!\s)\s*\([^()]*\)")
_SNAP_ROW = re.compile(
    r"^microstack\s+(?P<version>\S+)\s+(?P<rev>\d+)\s+(?P<channel>\S+)"
    r"\s+(?P<publisher>\S+)(?:\s+(?P<notes>\S+))?\s*$"
)
_SNAP_INSTALLED = re.compile(
    r"^microstack \((?P<channel>[^)]+)\) (?P<version>\S+) from "
)


@dataclass
class Event:
    """One line that matters, in order: a step, a failure or the completion."""

    index: int
    kind: str  # step, warning, waiting, failure, complete
    text: str
    line: str = ""  # as printed, for the finding's evidence


@dataclass
class InitLog:
    events: list[Event] = field(default_factory=list)
    exception: str | None = None
    snap: dict[str, Any] = field(default_factory=dict)


def _confinement(notes: str | None) -> str:
    for mode in ("devmode", "classic", "jailmode"):
        if notes and mode in notes:
            return mode
    return "strict"


def _read_snap(line: str, out: InitLog) -> None:
    if m := _SNAP_ROW.match(line.strip()):
        out.snap.update(
            version=m["version"],
            revision=int(m["rev"]),
            channel=m["channel"],
            confinement=_confinement(m["notes"]),
        )
    elif (m := _SNAP_INSTALLED.match(line.strip())) and "revision" not in out.snap:
        out.snap.update(version=m["version"], channel=m["channel"])


def _classify(line: str) -> tuple[str, str] | None:
    if m := _LOG_LINE.search(line):
        level, message = m.groups()
        if _COMPLETE.search(message):
            return "complete", message
        if level in ("ERROR", "CRITICAL"):
            return "failure", message
        return ("warning" if level == "WARNING" else "step"), message
    if m := _WAITING.match(line):
        return "waiting", m.group(1)
    if _TRACEBACK.match(line) or _KILLED.match(line):
        return "failure", line.strip()
    if _COMPLETE.search(line):
        return "complete", line.strip()
    return None


def parse(text: str) -> InitLog:
    out = InitLog()
    in_traceback = False
    for i, line in enumerate(text.splitlines()):
        _read_snap(line, out)
        if found := _classify(line):
            out.events.append(Event(i, *found, line=line.strip()))
            in_traceback = _TRACEBACK.match(line) is not None
        elif in_traceback and _EXCEPTION.match(line):
            out.exception = line.strip()
            in_traceback = False
    return out


def stage_of(message: str) -> str:
    """The step a log message announces: its last clause, without trimmings."""
    plain = _PARENTHETICAL.sub("", message)
    clauses = [c for c in re.split(r"(?<=[!.])\s+", plain.strip()) if c.strip()]
    last = clauses[-1] if clauses else plain
    return last.strip().rstrip(".…!").strip()


# --- judging ------------------------------------------------------------------


def _last(events: list[Event], kind: str, before: int | None = None) -> Event | None:
    found = [
        e for e in events if e.kind == kind and (before is None or e.index < before)
    ]
    return found[-1] if found else None


def _progress(out: InitLog, before: int | None, f: Finding) -> None:
    """Record the stage reached before ``before`` (a line index) in ``f``."""
    step = _last(out.events, "step", before)
    f.details["stage"] = stage_of(step.text) if step else None
    if step:
        f.details["last_message"] = step.text
        f.evidence.append(step.line or step.text)
    waiting = _last(out.events, "waiting", before)
    if waiting and (step is None or waiting.index > step.index):
        f.details["waiting_for"] = waiting.text


def _judge_failure(out: InitLog, failure: Event, f: Finding) -> None:
    _progress(out, failure.index, f)
    f.evidence.append(failure.line or failure.text)
    if out.exception:
        f.details["exception"] = out.exception
        f.evidence.append(out.exception)
    stage = f.details["stage"] or "an unreported step"
    f.add(
        "microstack_init_failed",
        f"microstack init stopped during {stage!r}. A plain retry is unlikely to "
        "help: `sudo snap remove --purge microstack`, check the host's free RAM and "
        "disk (`free -h`, `df -h /var/snap`), then install and init again",
    )


def _warnings(out: InitLog, f: Finding) -> None:
    for event in [e for e in out.events if e.kind == "warning"][:3]:
        f.hint(f"microstack init warned: {event.text}")


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    out = parse(evidence.text)
    f = Finding(layer="cloud", kind=NAME)
    if out.snap:
        f.details["snap"] = dict(out.snap)
    complete = _last(out.events, "complete")
    failures = [e for e in out.events if e.kind == "failure"]
    after = [e for e in failures if complete is None or e.index > complete.index]
    if after:
        _judge_failure(out, after[0], f)
    elif complete:
        f.evidence.append(complete.line or complete.text)
        f.details["stage"] = "complete"
    else:
        _progress(out, None, f)
        f.add(
            "context_missing",
            f"{evidence.name}: the log ends during "
            f"{f.details['stage'] or 'an unreported step'!r} with neither a "
            "traceback nor the completion line; capture init's whole output and "
            "its exit status",
        )
    _warnings(out, f)
    log.debug("[%s] %s", evidence.name, f.summary())
    return f


def detect(evidence: Evidence) -> float:
    text = evidence.text
    if "microstack_init - " in text or _COMPLETE.search(text):
        return 0.95
    return 0.6 if _INIT_COMMAND.search(text) else 0.0


register(
    Kind(
        name=NAME,
        layer="cloud",
        summary="microstack init output: the step it stopped at, or completion",
        detect=detect,
        judge=judge,
    )
)
