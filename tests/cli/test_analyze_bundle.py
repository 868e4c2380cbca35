"""A live run's evidence bundle re-judges, file by file, to the verdicts it recorded.

The bundle keeps each artifact with the kind and context it was judged in, so a
verdict that depends on context (the overlay range, the target rate) comes out the
same when `meshstack analyze DIR` judges it again, with no options given.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.bundle import MANIFEST, Bundle

DATA = Path(__file__).resolve().parents[1] / "analyzers" / "data"
MESHSTACK = Path(sys.executable).parent / "meshstack"


def test_a_bundle_re_judges_to_the_recorded_verdicts_with_their_context(
    tmp_path: Path,
) -> None:
    member = next((DATA / "zerotier-member").glob("*.json")).read_text()
    bundle = Bundle(tmp_path / "bundle")
    analyzers.set_recorder(bundle.record)
    try:
        inside = analyzers.get("zerotier-member").judge(
            Evidence(member, "m"), Context(overlay_cidr="198.51.100.0/24")
        )
        outside = analyzers.get("zerotier-member").judge(
            Evidence(member, "m"), Context(overlay_cidr="203.0.113.0/24")
        )
    finally:
        analyzers.set_recorder(None)
    manifest = [
        json.loads(x) for x in (tmp_path / "bundle" / MANIFEST).read_text().splitlines()
    ]
    assert [m["verdict"] for m in manifest] == [
        str(inside.verdict),
        str(outside.verdict),
    ]

    proc = subprocess.run(
        [str(MESHSTACK), "analyze", "--json", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    rejudged = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["verdict"], r["reasons"]) for r in rejudged] == [
        (m["verdict"], m["reasons"]) for m in manifest
    ]
    # The two judgements differ only by their recorded context: the bundle kept it.
    assert (inside.verdict, inside.reasons) != (outside.verdict, outside.reasons)


def test_a_bundle_keeps_its_own_copy_of_a_judged_results_folder(tmp_path: Path):
    # The results folder is rewritten by the next run; the bundle must re-judge the
    # results this run judged, not whatever the folder holds later.
    results = tmp_path / "allure-results"
    healthy = DATA / "allure-results" / "healthy_with_blocked_skip"
    collapsed = DATA / "allure-results" / "c27_dist_each_collapsed"
    _copy(healthy, results)
    (results / "0001-attachment.txt").write_text("command output")
    bundle = Bundle(tmp_path / "bundle")
    analyzers.set_recorder(bundle.record)
    try:
        judged = analyzers.get("allure-results").judge(
            Evidence("", str(results), path=results), Context()
        )
    finally:
        analyzers.set_recorder(None)
    for item in results.iterdir():
        item.unlink()
    _copy(collapsed, results)  # the next run's results, in the same folder

    proc = subprocess.run(
        [str(MESHSTACK), "analyze", "--json", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    (rejudged,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (rejudged["verdict"], rejudged["reasons"]) == (
        str(judged.verdict),
        list(judged.reasons),
    )
    later = analyzers.get("allure-results").judge(
        Evidence("", str(results), path=results), Context()
    )
    assert later.reasons != judged.reasons  # the folder itself would judge otherwise
    # attachments are not what this kind judges: they are not copied
    (kept,) = [p for p in (tmp_path / "bundle").iterdir() if p.is_dir()]
    assert not [p for p in kept.iterdir() if "-attachment" in p.name]


def _copy(source: Path, target: Path) -> None:
    target.mkdir(exist_ok=True)
    for item in source.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
