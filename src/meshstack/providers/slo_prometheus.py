"""The SLO layer: objectives judged from Prometheus over exactly the load's window.

For each load run the ``load`` layer recorded (its steady window in epoch seconds
and its Locust counts), this provider asks Prometheus, at the window's end and over
the window's length (:mod:`meshstack.providers.slo_promql` builds the queries):

* ``success_rate``: the share of successful responses, the declared failure class
  left out, against the profile's bound;
* ``latency_p95`` / ``latency_p99``: from Linkerd's latency histogram, against the
  profile's bounds in milliseconds;
* ``declared:<name>``: each declared failure class on its own: the share of its
  requests that failed must reach its ``failure_rate`` (1.0: all of them);
* ``reconciliation``: the proxies' request count against Locust's, WARN
  ``metrics_mismatch`` beyond the profile's tolerance.

Each answer is judged by the ``prometheus-response`` analyzer: no series or no
traffic (0/0 is NaN) is INCONCLUSIVE ``no_data``, never a pass. A window under four
scrape intervals is refused before anything is asked (HARNESS-ERROR
``window_too_short``). Queries and answers, and an SVG chart of throughput and
latency over the window, are kept as artifacts.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from meshstack import analyzers, clock
from meshstack.analyzers import Context, Evidence
from meshstack.loadprofile import LATENCY_QUANTILES
from meshstack.providers.base import Provider
from meshstack.providers.slo_promql import Objectives, Queries
from meshstack.providers.slo_svg import window_chart
from meshstack.verdicts import Finding, harness_error

log = logging.getLogger(__name__)

SETTINGS_SCHEMA: dict[str, Any] = {
    "url": {"type": "str", "required": True},
    "scrape_interval": {"type": "seconds", "default": 1, "above": 0},
    "query_timeout": {"type": "seconds", "default": 10},
    # --stack=existing: what a lab built by other means offers (the layer's outputs).
    "attach": {"type": "dict", "open": True, "keys": {}},
}

Check = tuple[str, str, dict[str, Any] | None]  # name, PromQL, objective


def validate_settings(settings: dict[str, Any]) -> list[str]:
    """Prometheus's URL is an http(s) URL (a bare host:port is no URL)."""
    url = str(settings["url"])
    if not url.startswith(("http://", "https://")):
        return [f"url: expected an http:// or https:// URL, found {url!r}"]
    return []


class PrometheusSlo(Provider):
    """Asks Prometheus about a load window and judges the profile's objectives."""

    layer = "slo"

    def provision(self) -> None:
        """Nothing to build: Prometheus belongs to the stack (or the local stack)."""

    def teardown(self) -> None:
        """Nothing to remove."""

    @property
    def url(self) -> str:
        return str(self.settings["url"]).rstrip("/")

    @property
    def scrape_interval(self) -> float:
        return float(self.settings.get("scrape_interval", 1))

    def probe(self) -> Finding:
        """Prometheus answers ``/-/ready``."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as resp:
                ok = resp.status == 200
        except (OSError, urllib.error.URLError) as exc:
            ok, why = False, str(exc)
        else:
            why = "not ready"
        f = Finding(layer="slo", kind="prometheus-ready")
        if not ok:
            f.add(
                "api_unreachable",
                f"Prometheus at {self.url} does not answer /-/ready ({why}): start it "
                "(`meshstack local up`) or fix layers.slo.url",
            )
        return f

    # -- asking -------------------------------------------------------------------
    def get(self, path: str, params: dict[str, str]) -> str:
        """One HTTP API call; the body as text (error answers included)."""
        full = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        log.debug("[slo] GET %s", full)
        timeout = float(self.settings.get("query_timeout", 10))
        try:
            with urllib.request.urlopen(full, timeout=timeout) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            return str(exc.read().decode(errors="replace"))

    def query(self, promql: str, at: float) -> str:
        return self.get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})

    # -- judging ------------------------------------------------------------------
    def evaluate(self, record: dict[str, Any]) -> dict[str, Any]:
        """Judge one load run's objectives; a JSON-ready record of every check."""
        name = record["profile"]
        out_dir = self._artifacts(name)
        objectives = Objectives.from_profile(record["slo"])
        window = record.get("window")
        result: dict[str, Any] = {"profile": name, "window": window,
                                  "artifacts": str(out_dir), "checks": {}}  # fmt: skip
        checks = checks_for(objectives, window)
        refused = self._refuse(window, [c[0] for c in checks] + ["reconciliation"])
        if refused is not None:
            result["checks"] = {k: f.to_json() for k, f in refused.items()}
            return result
        assert window is not None  # _refuse handles a missing window
        self._settle(float(window["end"]))
        asked: list[dict[str, Any]] = []
        for check, promql, objective in checks:
            finding = self._judge(promql, objective, window, asked, check)
            result["checks"][check] = finding.to_json()
        recon = self._reconcile(objectives, window, record, asked)
        result["checks"]["reconciliation"] = recon.to_json()
        (out_dir / "queries.json").write_text(json.dumps(asked, indent=2))
        result["plot"] = str(self._plot(objectives, window, out_dir, name))
        return result

    def _artifacts(self, name: str) -> Path:
        base = self.ctx.bundle_dir or (self.ctx.workdir / "artifacts")
        out = base / "slo" / name
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _refuse(
        self, window: dict[str, Any] | None, names: list[str]
    ) -> dict[str, Finding] | None:
        """Findings for every check when the window cannot be judged at all."""
        if not window:
            f = Finding(layer="slo", kind="prometheus-response")
            f.add("no_data", "the load run recorded no window (it measured nothing)")
            return {n: f for n in names}
        seconds = float(window["end"]) - float(window["start"])
        if seconds < 4 * self.scrape_interval:
            message = (
                f"the load window is {seconds:g} s, under four scrape intervals "
                f"({4 * self.scrape_interval:g} s): lengthen the profile's steady "
                "window or scrape more often"
            )
            return {n: harness_error("slo", "window_too_short", message) for n in names}
        return None

    def _settle(self, end: float) -> None:
        """Wait (bounded) until Prometheus has scraped past the window's end."""
        ready_at = end + 2 * self.scrape_interval + 0.5
        wait = ready_at - clock.wall()
        if wait > 0:
            log.info("[slo] waiting %.1fs for the scrapes after the window", wait)
            clock.sleep(min(wait, 60.0))

    def _judge(
        self,
        promql: str,
        objective: dict[str, Any] | None,
        window: dict[str, Any],
        asked: list[dict[str, Any]],
        check: str,
    ) -> Finding:
        end = float(window["end"])
        try:
            body = self.query(promql, end)
        except (OSError, urllib.error.URLError) as exc:
            f = Finding(layer="slo", kind="prometheus-response")
            f.add("api_unreachable", f"Prometheus at {self.url} did not answer: {exc}")
            f.evidence.append(promql)
            return f
        asked.append({"check": check, "query": promql, "time": end,
                      "response": _json_or_text(body)})  # fmt: skip
        extra: dict[str, object] = {
            "window": float(window["end"]) - float(window["start"]),
            "scrape_interval": self.scrape_interval,
        }
        if objective is not None:
            extra["objective"] = objective
        else:  # the reconciliation judges the values itself
            extra["values_only"] = True
        ctx = Context(extra=extra)
        # through the registry, so a live run records what it judged in its bundle
        finding = analyzers.get("prometheus-response").judge(
            Evidence(body, name=check), ctx
        )
        finding.kind = finding.kind or "prometheus-response"
        finding.evidence.insert(0, f"query at {end:.3f}: {promql}")
        return finding

    def _reconcile(
        self,
        objectives: Objectives,
        window: dict[str, Any],
        record: dict[str, Any],
        asked: list[dict[str, Any]],
    ) -> Finding:
        seconds = float(window["end"]) - float(window["start"])
        promql = Queries(objectives, seconds).requests()
        finding = self._judge(promql, None, window, asked, "reconciliation")
        mesh = finding.details.get("max")
        locust = (record.get("counts") or {}).get("Aggregated", {}).get("requests")
        finding.kind = "metrics-reconciliation"
        finding.details.update(mesh_requests=mesh, locust_requests=locust)
        if not finding.verdict.healthy or mesh is None:
            return finding
        if not locust:
            finding.add("no_data", "Locust counted no request in the window")
            return finding
        gap = abs(float(mesh) - locust) / locust
        finding.details["relative_gap"] = round(gap, 4)
        tolerance = float(record.get("tolerance", 0.05))
        if gap > tolerance:
            finding.add(
                "metrics_mismatch",
                f"the proxies counted {float(mesh):.0f} requests in the window, Locust "
                f"{locust} ({gap:.1%} apart, tolerance {tolerance:.0%}): something "
                "else sends traffic (vote-bot?), or requests bypass the mesh",
            )
        return finding

    def _plot(
        self, objectives: Objectives, window: dict[str, Any], out_dir: Path, name: str
    ) -> Path:
        start, end = float(window["start"]), float(window["end"])
        q = Queries(objectives, end - start)
        step_window = f"{round(4 * self.scrape_interval * 1000)}ms"
        series = {
            "requests/s": q.rate_over_time(step_window),
            "p95": q.latency_over_time(0.95, step_window),
            "p99": q.latency_over_time(0.99, step_window),
        }
        points = {k: self._range(v, start, end) for k, v in series.items()}
        bound = objectives.latency_ms.get("p99")
        svg = window_chart(
            name, start, end,
            {"requests/s": points["requests/s"]},
            {"p95": points["p95"], "p99": points["p99"]},
            latency_bound=bound,
        )  # fmt: skip
        path = out_dir / "window.svg"
        path.write_text(svg)
        return path

    def _range(
        self, promql: str, start: float, end: float
    ) -> list[tuple[float, float]]:
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}",
                  "step": f"{self.scrape_interval:g}s"}  # fmt: skip
        try:
            doc = json.loads(self.get("/api/v1/query_range", params))
            values = doc["data"]["result"][0]["values"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return []
        return [(float(t), _number(v)) for t, v in values]


def checks_for(objectives: Objectives, window: dict[str, Any] | None) -> list[Check]:
    """(name, PromQL, objective) for every objective the profile sets."""
    seconds = float(window["end"]) - float(window["start"]) if window else 60.0
    q = Queries(objectives, seconds)
    checks: list[Check] = []
    if objectives.success_rate is not None:
        bound = float(objectives.success_rate)
        checks.append(("success_rate", q.success_rate(), {"op": ">=", "bound": bound}))
    for label in LATENCY_QUANTILES:
        quantile = float(label[1:]) / 100
        if label in objectives.latency_ms:
            bound = objectives.latency_ms[label]
            checks.append(
                (f"latency_{label}", q.latency(quantile), {"op": "<=", "bound": bound})
            )
    for d in objectives.declared:
        objective = {"op": ">=", "bound": d.failure_rate}
        checks.append((f"declared:{d.name}", q.declared_failure_rate(d), objective))
    return checks


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _json_or_text(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body[:2000]


PROVIDER = PrometheusSlo
