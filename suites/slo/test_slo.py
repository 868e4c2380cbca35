"""Each app meets its objectives, read from Prometheus over exactly the load window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.load import parametrize_profiles
from fixtures.slo import check_finding
from meshstack.pytest import judge
from meshstack.verdicts import Finding, merge

pytestmark = pytest.mark.slo


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    declared = (
        metafunc.function.__name__
        == "test_each_declared_failure_class_fails_as_designed"
    )
    parametrize_profiles(metafunc, declared_only=declared)


def _attachments(result: dict[str, Any], check: str) -> dict[str, str]:
    out = {"window": json.dumps(result.get("window"), indent=2)}
    queries = Path(result.get("artifacts", "")) / "queries.json"
    if queries.is_file():
        asked = [q for q in json.loads(queries.read_text()) if q["check"] == check]
        out["query and answer"] = json.dumps(asked, indent=2)[:100_000]
    _attach_chart(result)
    return out


def _attach_chart(result: dict[str, Any]) -> None:
    """The throughput/latency chart, as an image (judge() attaches text only)."""
    plot = result.get("plot")
    if not plot or not Path(plot).is_file():
        return
    try:
        import allure
    except ImportError:
        return
    allure.attach.file(plot, name="throughput and latency over the window",
                       attachment_type=allure.attachment_type.SVG)  # fmt: skip


def test_the_success_rate_meets_its_objective(slo: Any, profile: str) -> None:
    """Steps: success / all responses over the window at its end, the declared
    failure class left out; no series or no traffic is INCONCLUSIVE."""
    result = slo.result(profile)
    finding = check_finding(result, "success_rate", "success_rate objective")
    judge(finding, attachments=_attachments(result, "success_rate"))


@pytest.mark.parametrize("quantile", ["p95", "p99"])
def test_the_latency_quantile_meets_its_bound(
    slo: Any, profile: str, quantile: str
) -> None:
    """Steps: histogram_quantile over Linkerd's latency buckets in the window."""
    result = slo.result(profile)
    check = f"latency_{quantile}"
    finding = check_finding(result, check, f"latency_ms.{quantile} bound")
    judge(finding, attachments=_attachments(result, check))


def test_each_declared_failure_class_fails_as_designed(slo: Any, profile: str) -> None:
    """Steps: for each declared class (emojivoto's votes for :poop:), the share
    of its requests that failed in the window must reach its failure_rate (C21)."""
    result = slo.result(profile)
    declared = sorted(k for k in result.get("checks", {}) if k.startswith("declared:"))
    findings = [check_finding(result, c, "declared failure class") for c in declared]
    if not declared and "blocked" not in result:
        # The profile declares a class (see pytest_generate_tests) but no check
        # of it was measured: never a pass on nothing.
        missing = Finding(layer="slo", kind="declared-failures")
        missing.add("no_data", f"no declared failure class was measured for {profile}")
        findings = [missing]
    if "blocked" in result:
        findings = [check_finding(result, "", "declared failure class")]
    attachments: dict[str, str] = {}
    for check in declared:
        attachments.update(
            {f"{check}: {k}": v for k, v in _attachments(result, check).items()}
        )
    judge(merge("slo", findings, kind="declared-failures"), attachments=attachments)


def test_locust_and_the_proxies_count_the_same_requests(slo: Any, profile: str) -> None:
    """Steps: the proxies' request_total increase over the window against Locust's
    count in the same window; beyond the tolerance is WARN metrics_mismatch."""
    result = slo.result(profile)
    finding = check_finding(result, "reconciliation", "reconciliation")
    judge(finding, attachments=_attachments(result, "reconciliation"))
