"""The SLO provider judges objectives from real Prometheus over exactly the window."""

from __future__ import annotations

import copy
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from loadslo_support import (
    emojivoto_behind_proxy,
    make_context,
    prometheus_running,
)

from meshstack.local import prometheus
from meshstack.providers.load_locust import LocustLoad
from meshstack.providers.slo_prometheus import PrometheusSlo
from meshstack.providers.slo_promql import Objectives, Queries
from meshstack.verdicts import Verdict

ROOT = Path(__file__).resolve().parents[2]
EMOJIVOTO = yaml.safe_load((ROOT / "loadprofiles" / "emojivoto.yaml").read_text())
POOP = 'rt_route!="GET /api/vote?choice=:poop:"'


def test_the_success_rate_leaves_the_declared_failure_class_out() -> None:
    q = Queries(Objectives.from_profile(EMOJIVOTO["slo"]), 40.0)

    query = q.success_rate()

    assert query.count(POOP) == 2  # numerator and denominator
    assert "route_response_total{" in query
    assert "[40000ms]" in query
    assert 'classification="success"' in query.split(" / ")[0]


def test_the_declared_class_is_asked_about_on_its_own() -> None:
    objectives = Objectives.from_profile(EMOJIVOTO["slo"])
    (declared,) = objectives.declared

    query = Queries(objectives, 12.5).declared_failure_rate(declared)

    assert 'rt_route="GET /api/vote?choice=:poop:"' in query
    assert 'classification="failure"' in query.split(" / ")[0]
    assert "[12500ms]" in query


def test_without_a_declared_class_the_whole_proxy_families_are_read() -> None:
    objectives = Objectives.from_profile(
        {"selector": {"namespace": "webdemo"}, "success_rate": 0.99}
    )
    assert (
        Queries(objectives, 30)
        .success_rate()
        .startswith(
            'sum(increase(response_total{namespace="webdemo",classification="success"}'
        )
    )


def slo_at(tmp_path: Path, url: str = "http://127.0.0.1:9") -> PrometheusSlo:
    return PrometheusSlo({"url": url, "scrape_interval": 1}, make_context(tmp_path))


def test_a_window_under_four_scrapes_is_refused_before_asking(tmp_path: Path) -> None:
    now = time.time()
    record = {"profile": "short", "window": {"start": now - 3, "end": now},
              "slo": EMOJIVOTO["slo"]}  # fmt: skip

    result = slo_at(tmp_path).evaluate(record)

    for check in result["checks"].values():
        assert check["verdict"] == str(Verdict.HARNESS_ERROR)
        assert check["reasons"] == ["window_too_short"]
    assert "declared:votes for :poop:" in result["checks"]


def test_a_load_run_without_a_window_is_no_data(tmp_path: Path) -> None:
    record = {"profile": "none", "slo": EMOJIVOTO["slo"]}

    result = slo_at(tmp_path).evaluate(record)

    assert {c["verdict"] for c in result["checks"].values()} == {"INCONCLUSIVE"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One real emojivoto load (Locust, ~24 s) scraped by a real Prometheus."""
    if not Path("/usr/bin/prometheus").exists():
        pytest.skip("Debian's prometheus is not installed")
    tmp = tmp_path_factory.mktemp("slo")
    locustfile = str(ROOT / "loadprofiles" / "emojivoto_locust.py")
    # 20 s at 10%: the shortest window whole-second stamps resolve (see the provider).
    window = {"duration": 24, "ramp": 3, "steady": 20, "tolerance": 0.1}
    profile = {**EMOJIVOTO, **window, "min_sample": 300, "locustfile": locustfile}
    (tmp / "emojivoto.yaml").write_text(yaml.safe_dump(profile))
    labels = {"namespace": "emojivoto", "pod": "web-0", "deployment": "web"}
    with emojivoto_behind_proxy() as ports, prometheus_running(tmp / "prom") as facts:
        address = f"127.0.0.1:{ports['admin']}"
        prometheus.write_target(Path(str(facts["targets_dir"])), "web", address, labels)
        prometheus.wait_target_up(str(facts["url"]), address, timeout=30)
        load = LocustLoad({"directory": "."}, make_context(tmp))
        record = load.run("emojivoto", host=f"http://127.0.0.1:{ports['inbound']}")
        slo = slo_at(tmp, str(facts["url"]))
        yield {"record": record, "slo": slo, "result": slo.evaluate(record)}


def test_emojivoto_meets_its_objectives_with_the_poop_votes_left_out(
    measured: dict[str, Any],
) -> None:
    checks = measured["result"]["checks"]

    assert measured["record"]["finding"]["verdict"] == "PASS"
    for name in ("success_rate", "latency_p95", "latency_p99"):
        assert checks[name]["verdict"] == "PASS", checks[name]
    assert checks["success_rate"]["details"]["min"] >= 0.99


def test_every_vote_for_poop_failed_as_designed(measured: dict[str, Any]) -> None:
    check = measured["result"]["checks"]["declared:votes for :poop:"]
    locust = measured["record"]["counts"]["vote :poop: (declared failure)"]

    assert check["verdict"] == "PASS", check
    assert check["details"]["min"] == 1.0
    assert locust["requests"] > 0
    assert locust["failures"] == locust["requests"]


def test_the_proxy_and_locust_counts_reconcile(measured: dict[str, Any]) -> None:
    check = measured["result"]["checks"]["reconciliation"]

    assert check["verdict"] == "PASS", check
    assert check["details"]["relative_gap"] <= 0.05
    print("reconciliation:", check["details"])


def test_counts_that_disagree_are_a_metrics_mismatch_warning(
    measured: dict[str, Any],
) -> None:
    record = copy.deepcopy(measured["record"])
    record["counts"]["Aggregated"]["requests"] *= 2

    check = measured["slo"].evaluate(record)["checks"]["reconciliation"]

    assert check["verdict"] == "WARN"
    assert check["reasons"] == ["metrics_mismatch"]


def test_an_unmeetable_latency_bound_is_an_objective_missed(
    measured: dict[str, Any],
) -> None:
    record = copy.deepcopy(measured["record"])
    record["slo"]["latency_ms"] = {"p95": 0.01}

    check = measured["slo"].evaluate(record)["checks"]["latency_p95"]

    assert check["verdict"] == "FAIL"
    assert "objective_missed" in check["reasons"]


def test_the_window_chart_is_an_svg_with_both_panels(measured: dict[str, Any]) -> None:
    svg = Path(measured["result"]["plot"]).read_text()

    root = ET.fromstring(svg)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert root.tag.endswith("svg")
    assert len(lines) >= 3  # throughput, p95, p99 (and the bound)
    assert "throughput" in svg and "latency" in svg
    assert (Path(measured["result"]["artifacts"]) / "queries.json").exists()
