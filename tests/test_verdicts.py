"""Merging findings: the most severe verdict wins, and its hints are read first."""

from __future__ import annotations

from meshstack.verdicts import Finding, Verdict, merge


def test_a_merged_finding_puts_a_failing_parts_hints_before_a_passing_parts_notes() -> (
    None
):
    note = Finding(layer="mesh")
    note.hint("the latest version could not be compared: not a warning")
    failing = Finding(layer="mesh")
    failing.add("not_meshed", "annotate the namespace, then restart the workloads")
    failing.hint("the injector reads the namespace or the pod template")

    merged = merge("mesh", [note, failing])

    assert merged.verdict is Verdict.FAIL
    assert merged.reasons == ["not_meshed"]
    assert merged.hints == [
        "annotate the namespace, then restart the workloads",
        "the injector reads the namespace or the pod template",
        "the latest version could not be compared: not a warning",
    ]
