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
