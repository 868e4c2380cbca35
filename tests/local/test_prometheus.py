"""The local stack's Prometheus: the real binary scraping a real proxy on loopback."""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

import pytest

from meshstack import clock
from meshstack.local import prometheus
from meshstack.providers.slo_prometheus import PrometheusSlo
from meshstack.verdicts import Verdict

# The loopback demo app, proxy and Prometheus helpers live beside the provider tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from loadslo_support import (  # noqa: E402
    make_context,
    prometheus_running,
    webdemo_behind_proxy,
)

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/prometheus").exists(),
    reason="Debian's prometheus is not installed: apt-get install prometheus",
)

LABELS = {"namespace": "selftest", "pod": "webdemo-0", "deployment": "webdemo"}


def send(port: int, count: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(count):
        conn.request("GET", "/api/info")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    conn.close()


def value(url: str, promql: str) -> float | None:
    result = prometheus.query(url, promql)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def wait_value(url: str, promql: str, expected: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = value(url, promql)
        if seen == expected:
            return seen
        time.sleep(0.25)
    return seen if seen is not None else float("nan")


def test_prometheus_starts_ready_and_stops_leaving_no_process(tmp_path: Path) -> None:
    with prometheus_running(tmp_path) as facts:
        env = facts["env"]
        pid = env.pid(prometheus.NAME)  # type: ignore[attr-defined]
        assert prometheus.status(env, facts["listen"])["up"] is True  # type: ignore[arg-type]
        config = (tmp_path / "prometheus" / "prometheus.yml").read_text()
        assert json.loads(config)["global"]["scrape_interval"] == "1s"

    assert pid is not None
    assert not Path(f"/proc/{pid}").exists(), "Prometheus (or its zombie) is left"
    assert prometheus.status(env, facts["listen"])["up"] is False  # type: ignore[arg-type]


def test_prometheus_counts_exactly_the_requests_sent_through_the_proxy(
    tmp_path: Path,
) -> None:
    with webdemo_behind_proxy() as ports, prometheus_running(tmp_path) as facts:
        url = str(facts["url"])
        started = clock.monotonic()
        address = f"127.0.0.1:{ports['admin']}"
        prometheus.write_target(
            Path(str(facts["targets_dir"])), "selftest", address, LABELS
        )
        first_scrape = prometheus.wait_target_up(url, address, timeout=30)
        print(f"target written -> first successful scrape: {first_scrape:.1f}s")

        send(ports["inbound"], 137)

        total = 'sum(request_total{namespace="selftest",deployment="webdemo"})'
        ok = 'sum(response_total{namespace="selftest",classification="success"})'
        assert wait_value(url, total, 137) == 137
        assert wait_value(url, ok, 137) == 137
        assert clock.monotonic() - started < 45


def test_a_window_with_no_series_is_inconclusive_never_a_pass(tmp_path: Path) -> None:
    with prometheus_running(tmp_path / "prom") as facts:
        slo = PrometheusSlo(
            {"url": facts["url"], "scrape_interval": 1}, make_context(tmp_path)
        )
        now = time.time()
        record = {
            "profile": "nothing",
            "window": {"start": now - 10, "end": now - 2},
            "counts": {"Aggregated": {"requests": 100, "failures": 0}},
            "tolerance": 0.05,
            "slo": {
                "selector": {"namespace": "nobody-here"},
                "success_rate": 0.99,
                "latency_ms": {"p95": 100},
            },
        }
        result = slo.evaluate(record)

    verdicts = {k: v["verdict"] for k, v in result["checks"].items()}
    assert verdicts == {
        "success_rate": str(Verdict.INCONCLUSIVE),
        "latency_p95": str(Verdict.INCONCLUSIVE),
        "reconciliation": str(Verdict.INCONCLUSIVE),
    }
    assert all("no_data" in v["reasons"] for v in result["checks"].values())
