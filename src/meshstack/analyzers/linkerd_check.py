"""Judge the output of `linkerd check` (`--pre`, `--proxy`, `viz check`, `-o json`).

Every output shape the CLI has printed is read into one list of :class:`Check`
results: the glyph tables (`√ × ‼` and the older `✔ ✘ ⚠`), `-o short`, the
2018 dotted lines (`category: description....[FAIL] -- message`), and `-o json`,
which is a *stream* of JSON documents (one per extension) that may be followed by
a plain-text table. Each failed or warning check is then mapped to a reason code.

The verdict never trusts the "Status check results are √" line: with extensions,
some CLIs print it once per section, so a later failure would hide behind it (C04).
So a copy that shows status lines but no check at all judges nothing: INCONCLUSIVE
``no_data`` (this includes `-o short` of a healthy run, which prints only that
line; capture the full table to judge it), and so do JSON documents that hold no
check and no ``success``. Hints and evidence quote the input as it reads (the status
line or the ``"success": true`` it printed), never a line the analyzer made up. A
line prefix every line carries (CI timestamps, `kubectl logs --prefix`, `> `
quoting, syslog heads) is removed first.

A copy cut off (no status line after the checks, or a JSON document left open,
even one that holds no check yet) cannot claim success, and what follows the cut
may be any failure: it is FAIL. A run cut off while it waited on the control plane
is ``control_plane_not_ready`` (the vocabulary says so); any other cut is
``check_failed`` with ``details.truncated``, at FAIL whatever the severity of the
last check shown (a ‼ before the cut does not make the cut a warning).
Where the tool printed a condition as a warning (‼) the verdict is WARN even when
the condition's code is a FAIL code, unless the code's definition overrides the
tool's severity (an expiring issuer, a pre-existing resource).
"""

from __future__ import annotations

import logging

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._linkerd_check_read import (
    FAILED,
    WAITING,
    WARNING,
    Check,
    Report,
    has_category_header,
    read,
)
from meshstack.analyzers._linkerd_check_rules import Tally, classify
from meshstack.verdicts import Finding, Verdict, reason

log = logging.getLogger(__name__)

NAME = "linkerd-check"

# --- detecting -----------------------------------------------------------------


def detect(evidence: Evidence) -> float:
    text = evidence.text[:200_000]
    report = read(text)
    if report.json_documents:
        return 0.95
    glyph_checks = sum(1 for c in report.checks if c.status != WAITING)
    has_status = bool(report.statuses)
    if report.checks and (has_status or has_category_header(text)):
        return 0.95
    if glyph_checks >= 2 or (glyph_checks and "linkerd" in text.lower()):
        return 0.8
    if has_status:
        return 0.7
    return 0.0


# --- judging -------------------------------------------------------------------


def judge(evidence: Evidence, ctx: Context) -> Finding:
    try:
        report = read(evidence.text)
    except Exception:  # a judge must never raise; say what happened instead
        log.exception("[%s] could not read linkerd check output", evidence.name)
        return unrecognised(evidence, expected=NAME)
    if not report.checks and not report.statuses and not report.json_documents:
        return unrecognised(evidence, expected=NAME)
    if not report.checks and not report.statuses and not report.cut_json:
        return _no_results(report)
    if not report.checks and all(report.statuses) and not report.cut_json:
        return _status_only(report)
    acc = Tally(Finding(layer="mesh", kind=NAME), ctx)
    for check in _final_checks(report):
        classify(check, acc)
    _judge_completion(report, acc)
    return _conclude(acc)


def _status_only(report: Report) -> Finding:
    f = Finding(layer="mesh", kind=NAME, details={"statuses": len(report.statuses)})
    shown = list(dict.fromkeys(report.status_lines))
    f.evidence.extend(shown)
    status = f"'{shown[0]}'" if shown else "an overall status"
    f.add(
        "no_data",
        f"only {status} is shown, no check result: a status alone is not trusted "
        "(some CLIs print it once per section, and `-o short` hides every passing "
        "check); capture the full `linkerd check` output",
    )
    return f


def _no_results(report: Report) -> Finding:
    """JSON documents of `linkerd check -o json` that hold no result at all."""
    f = Finding(layer="mesh", kind=NAME)
    f.details["json_documents"] = report.json_documents
    f.add(
        "no_data",
        f"{report.json_documents} JSON document(s) of `linkerd check -o json` with "
        'no check result and no overall "success": nothing to judge; capture '
        "`linkerd check -o json` again, to its end",
    )
    return f


def _final_checks(report: Report) -> list[Check]:
    """Failed, warning and still-waiting results; a retry only counts if last."""
    last = report.checks[-1] if report.checks else None
    return [
        c
        for c in report.checks
        if c.status in (FAILED, WARNING) or (c.status == WAITING and c is last)
    ]


def _conclude(acc: Tally) -> Finding:
    f = acc.finding
    for note in acc.notes:  # after every hint on what to do
        f.hint(note)
    f.reasons = [c for c in f.reasons if c in acc.hard] + [
        c for c in f.reasons if c not in acc.hard
    ]
    worst_hard = max((reason(c).verdict.severity for c in acc.hard), default=0)
    worst_soft = max((reason(c).verdict.severity for c in acc.soft), default=0)
    # The tool printed these only as warnings: its severity stands.
    if worst_soft > Verdict.WARN.severity and worst_hard <= Verdict.WARN.severity:
        f.verdict_override = Verdict.WARN
    return f


def _judge_completion(report: Report, acc: Tally) -> None:
    failed_shown = any(c.status in (FAILED, WAITING) for c in report.checks)
    if report.cut_json or (report.text_seen and not report.statuses):
        acc.finding.details["truncated"] = True
        acc.finding.hint(
            "the output was cut off (no 'Status check results' line, or a JSON "
            "document left open): checks after the last one shown were not judged"
        )
        # TODO: a run killed while it waited, captured without a terminal, prints
        # no spinner line, so the check it waited on is unknown and this reports
        # check_failed where control_plane_not_ready may be the truth; the live
        # suite should capture with `--wait` short enough to reach a result.
        if not failed_shown and report.checks:
            last = report.checks[-1]
            acc.add(
                last, "check_failed", "re-run `linkerd check` to its end", forced=True
            )
            acc.detail("failed_checks", {"category": last.category, "cut_off": True})
        elif not failed_shown:  # cut before any check: nothing shown can pass
            acc.finding.add("check_failed", "re-run `linkerd check` to its end")
            acc.hard.append("check_failed")
            acc.detail("failed_checks", {"category": "", "cut_off": True})
    if report.json_documents and report.statuses:
        acc.finding.details["success"] = all(report.statuses)
    if report.statuses and not all(report.statuses) and not failed_shown:
        acc.finding.add(
            "check_failed", "the tool reports failure but no failed check is shown"
        )
        shown = acc.finding.evidence
        shown.extend(ln for ln in dict.fromkeys(report.status_lines) if ln not in shown)
        acc.hard.append("check_failed")


KIND = register(
    Kind(
        name=NAME,
        layer="mesh",
        summary="output of `linkerd check` / `check --pre` / `--proxy` / `viz check`",
        detect=detect,
        judge=judge,
    )
)
