"""How a finished run's allure-results are labelled by layer and verdict.

The plugin rewrites each ``*-result.json`` after the run (``reporting.py``): the
layer becomes ``parentSuite`` and ``layer``, the most severe verdict judged in the
test becomes a ``tag``, a gate skip is tagged BLOCKED, and a passed WARN result gets
its warning as message. The documents here are shaped as allure-pytest 2.16 writes
them (labels re-typed from its output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshstack.pytest import reporting
from tests.report.harness import labels


def _result(name: str, status: str, extra: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "uuid": name,
        "name": name,
        "fullName": f"suites.cloud.test_cloud#{name}",
        "status": status,
        "labels": [
            *extra,
            {"name": "tag", "value": "cloud"},
            {"name": "parentSuite", "value": "suites.cloud"},
            {"name": "suite", "value": "test_cloud"},
            {"name": "host", "value": "vm"},
            {"name": "thread", "value": "4242-MainThread"},
        ],
    }


def _relabel(tmp_path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / f"{doc['uuid']}-result.json"
    path.write_text(json.dumps(doc))
    assert reporting._label_results(tmp_path) == []
    out: dict[str, Any] = json.loads(path.read_text())
    return out


def test_the_most_severe_verdict_judged_in_a_test_becomes_its_tag(
    tmp_path: Path,
) -> None:
    verdicts = [{"name": "verdict", "value": v} for v in ("PASS", "WARN", "PASS")]
    warn = {"name": "meshstack_verdict", "value": "cloud WARN: degraded_tcp_relay"}
    doc = _relabel(tmp_path, _result("test_x", "passed", [*verdicts, warn]))
    tags = labels(doc, "tag")
    assert "WARN" in tags and "PASS" not in tags
    assert doc["statusDetails"]["message"] == "cloud WARN: degraded_tcp_relay"


def test_the_layer_replaces_the_package_as_parent_suite(tmp_path: Path) -> None:
    doc = _relabel(tmp_path, _result("test_y", "failed", []))
    assert labels(doc, "parentSuite") == ["cloud"]
    assert labels(doc, "layer") == ["cloud"]
    assert labels(doc, "suite") == ["test_cloud"]


def test_a_gate_skip_is_tagged_blocked_and_another_skip_is_not(
    tmp_path: Path,
) -> None:
    blocked = _result("test_b", "skipped", [])
    blocked["statusDetails"] = {"message": "Skipped: BLOCKED: cloud needs x"}
    plain = _result("test_p", "skipped", [])
    plain["statusDetails"] = {"message": "Skipped: not configured"}
    assert "BLOCKED" in labels(_relabel(tmp_path, blocked), "tag")
    assert "BLOCKED" not in labels(_relabel(tmp_path, plain), "tag")


def test_a_result_outside_the_suites_keeps_its_own_suites(tmp_path: Path) -> None:
    doc = _result("test_z", "passed", [])
    doc["fullName"] = "tests.test_misc#test_z"
    doc["labels"] = [
        {"name": "parentSuite", "value": "tests"},
        {"name": "suite", "value": "test_misc"},
    ]
    out = _relabel(tmp_path, doc)
    assert labels(out, "parentSuite") == ["tests"]
    assert labels(out, "layer") == [] and labels(out, "tag") == []


def test_the_terminal_table_lists_each_measurement_after_its_layer() -> None:
    rec = {"verdict": "PASS", "reasons": []}
    health = {
        "slo:webdemo": rec,
        "apps": rec,
        "load:webdemo": rec,
        "cloud": rec,
        "load:emojivoto": {"verdict": "INVALID-RUN", "reasons": ["rate_off"]},
        "slo:emojivoto": rec,
    }
    rows = [name for name, _ in reporting._health_rows(health)]
    assert rows == [
        "cloud",
        "apps",
        "load:emojivoto",
        "load:webdemo",
        "slo:emojivoto",
        "slo:webdemo",
    ]
