"""The main job on the local stack: every layer built, judged, reported and removed.

Steps: run `scripts/main-job.sh -n 2` (setup, local stack, `pytest suites
--stack=fresh` on two workers, report); check that every layer's checks passed on
both workers, that the report was written, that the evidence bundle re-judges to the
same verdicts, and that nothing tagged with the run id is left behind.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REPO, VENV_BIN, by_layer, harness_env, leftovers

LAYERS = ("cloud", "overlay", "cluster", "lb", "mesh", "apps", "load", "slo")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def main_job(local_stack: Any) -> dict[str, Any]:
    proc = subprocess.run(
        ["bash", "scripts/main-job.sh", "-n", "2"],
        cwd=REPO,
        env=harness_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = proc.stdout + proc.stderr
    (REPO / "reports" / "main-job-output.txt").write_text(output)
    return {"exit": proc.returncode, "output": output}


def _cases() -> dict[str, dict[str, str]]:
    import xml.etree.ElementTree as ET

    out = {}
    for case in ET.parse(REPO / "reports" / "junit.xml").iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        out[f"{case.get('classname')}.{case.get('name')}"] = {"outcome": outcome}
    return out


def test_the_main_job_passes_every_layer_on_the_healthy_local_stack(
    main_job: dict[str, Any],
) -> None:
    assert main_job["exit"] == 0, main_job["output"][-6000:]
    layers = by_layer(_cases())
    for layer in LAYERS:
        cases = layers.get(layer, [])
        assert cases, f"no {layer} checks ran"
        bad = [c for c in cases if c["outcome"] != "passed"]
        assert not bad, f"{layer}: {bad}"


def test_the_main_job_prints_where_its_single_file_report_is(
    main_job: dict[str, Any],
) -> None:
    lines = [ln for ln in main_job["output"].splitlines() if ln.startswith("report: ")]
    assert lines, main_job["output"][-3000:]
    report = Path(lines[-1].split(": ", 1)[1])
    assert report.is_file() and report.stat().st_size > 50_000
    env = (REPO / "reports" / "allure-results" / "environment.properties").read_text()
    assert "run.id=ms-" in env and "health.apps=PASS" in env
    # Each load profile's run and objectives have their own row, as the layers do,
    # in the report's environment and in the terminal's table (from the workers).
    for row in ("load:emojivoto", "load:webdemo", "slo:emojivoto", "slo:webdemo"):
        assert f"health.{row}=PASS" in env, env
        assert re.search(rf"^  {row} +PASS ", main_job["output"], re.M), row


def _attachments(results: Path) -> dict[str, list[Path]]:
    """Every attachment of every result (steps included), by name."""
    out: dict[str, list[Path]] = {}

    def walk(node: dict[str, Any]) -> None:
        for a in node.get("attachments") or []:
            out.setdefault(a["name"], []).append(results / a["source"])
        for step in node.get("steps") or []:
            walk(step)

    for file in results.glob("*-result.json"):
        walk(json.loads(file.read_text()))
    return out


# What a reviewer is promised in the report, by attachment name.
ATTACHED = (
    "command",  # command output (ssh, zerotier-cli, linkerd)
    "applied manifests (YAML)",
    "MetalLB objects (YAML)",
    "linkerd check -o json",
    "linkerd check --proxy -n emojivoto",
    "pods",
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "query and answer",
    "throughput and latency over the window",
)


def test_the_report_carries_the_evidence_each_layer_was_judged_on(
    main_job: dict[str, Any],
) -> None:
    found = _attachments(REPO / "reports" / "allure-results")
    for name in ATTACHED:
        files = found.get(name)
        assert files, f"no {name!r} attachment; found {sorted(found)}"
        sizes = [f.stat().st_size for f in files if f.is_file()]
        assert sizes and max(sizes) > 0, f"{name!r} is attached empty: {files}"
    queries = json.loads(found["query and answer"][0].read_text())
    assert queries and all("query" in q for q in queries), queries
    plot = found["throughput and latency over the window"][0].read_text()
    assert plot.lstrip().startswith("<") and "<svg" in plot


def test_both_workers_ran_checks_and_the_stack_was_built_once(
    main_job: dict[str, Any],
) -> None:
    out = main_job["output"]
    assert "2 workers" in out or "created: 2/2 workers" in out
    assert out.count("[meshstack] cloud    provisioning") == 1


def test_the_evidence_bundle_re_judges_to_the_verdicts_of_the_live_run(
    main_job: dict[str, Any],
) -> None:
    run_id = next(
        ln.split()[2]
        for ln in main_job["output"].splitlines()
        if ln.startswith("[meshstack] run")
    )
    # one folder per pytest session under the run's; the main job is one session
    (bundle,) = [
        m.parent
        for m in (REPO / ".meshstack" / "bundle" / run_id).glob("*/bundle.jsonl")
    ]
    manifest = [
        json.loads(x) for x in (bundle / "bundle.jsonl").read_text().splitlines()
    ]
    assert len(manifest) >= 10, "the live run judged too few artifacts"
    # every layer that judges evidence with an analyzer left it here
    kinds = {entry["kind"] for entry in manifest}
    for kind in ("zerotier-member", "linkerd-check", "locust-log", "locust-history",
                 "prometheus-response"):  # fmt: skip
        assert kind in kinds, f"no {kind} in the bundle: {sorted(kinds)}"
    proc = subprocess.run(
        [str(VENV_BIN / "meshstack"), "analyze", "--json", str(bundle)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rejudged = {
        Path(json.loads(x)["file"]).name: json.loads(x)
        for x in proc.stdout.splitlines()
    }
    for entry in manifest:
        if entry["context"].get("lossy") or "/" in entry["file"]:
            continue
        again = rejudged[entry["file"]]
        assert (again["verdict"], again["reasons"]) == (
            entry["verdict"],
            entry["reasons"],
        ), entry


def test_the_fresh_run_leaves_nothing_tagged_with_its_run_id(
    main_job: dict[str, Any],
) -> None:
    run_id = next(
        ln.split()[2]
        for ln in main_job["output"].splitlines()
        if ln.startswith("[meshstack] run")
    )
    assert leftovers(run_id) == []
    assert not (REPO / ".meshstack" / "state.json").exists()
    namespaces = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10
    )
    assert "ms-" not in namespaces.stdout, namespaces.stdout
