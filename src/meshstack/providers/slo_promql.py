"""The PromQL the SLO layer asks, built from a load profile's ``slo`` section.

Every query covers exactly the load's steady window: ``increase(...[W])`` evaluated
at the window's end, W the window's length. Series are Linkerd's proxy metrics
(:mod:`meshstack.twin.proxy` documents the names), selected by the profile's
``selector`` labels.

A declared failure class (``declared_failures``: a route label and its value, such
as emojivoto's ``rt_route="GET /api/vote?choice=:poop:"``) is excluded from the
success rate and the latencies of the rest (which then read the per-route
families), and has a query of its own: the share of its requests that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeclaredFailure:
    name: str
    label: str
    value: str
    locust_name: str | None
    failure_rate: float


@dataclass(frozen=True)
class Objectives:
    selector: dict[str, str]
    success_rate: float | None
    latency_ms: dict[str, float]
    declared: tuple[DeclaredFailure, ...]

    @classmethod
    def from_profile(cls, slo: dict[str, Any]) -> Objectives:
        selector = slo.get("selector")
        if not isinstance(selector, dict) or not selector:
            raise ValueError(
                "the load profile's slo.selector is missing: name the proxy series "
                "to judge, e.g. {namespace: emojivoto, deployment: web, "
                "direction: inbound}"
            )
        declared = tuple(
            DeclaredFailure(
                name=str(d["name"]),
                label=str(d["label"]),
                value=str(d["value"]),
                locust_name=d.get("locust_name"),
                failure_rate=float(d.get("failure_rate", 1.0)),
            )
            for d in slo.get("declared_failures") or []
        )
        return cls(
            selector={str(k): str(v) for k, v in selector.items()},
            success_rate=slo.get("success_rate"),
            latency_ms={
                str(k): float(v) for k, v in (slo.get("latency_ms") or {}).items()
            },
            declared=declared,
        )


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def duration(seconds: float) -> str:
    """A PromQL range in whole milliseconds (``40000ms``): exact, never rounded to s."""
    return f"{round(seconds * 1000)}ms"


def matchers(selector: dict[str, str], *extra: str) -> str:
    parts = [f"{k}={quote(v)}" for k, v in sorted(selector.items())]
    return "{" + ",".join([*parts, *extra]) + "}"


class Queries:
    """The queries for one profile's objectives over one window length."""

    def __init__(self, objectives: Objectives, window_seconds: float) -> None:
        self.o = objectives
        self.w = duration(window_seconds)
        self.excluded = tuple(
            f"{d.label}!={quote(d.value)}" for d in objectives.declared
        )
        # With a declared class to leave out, read the per-route families.
        self.prefix = "route_" if objectives.declared else ""

    def _sum(self, family: str, *extra: str, by: str = "") -> str:
        sel = matchers(self.o.selector, *extra)
        group = f" by ({by})" if by else ""
        return f"sum{group}(increase({family}{sel}[{self.w}]))"

    def success_rate(self) -> str:
        fam = f"{self.prefix}response_total"
        good = self._sum(fam, 'classification="success"', *self.excluded)
        return f"{good} / {self._sum(fam, *self.excluded)}"

    def latency(self, quantile: float) -> str:
        fam = f"{self.prefix}response_latency_ms_bucket"
        buckets = self._sum(fam, *self.excluded, by="le")
        return f"histogram_quantile({quantile:g}, {buckets})"

    def declared_failure_rate(self, d: DeclaredFailure) -> str:
        mine = f"{d.label}={quote(d.value)}"
        failed = self._sum("route_response_total", mine, 'classification="failure"')
        return f"{failed} / {self._sum('route_response_total', mine)}"

    def requests(self) -> str:
        """Every request the proxies counted in the window (declared class included)."""
        return self._sum("request_total")

    def rate_over_time(self, step_window: str) -> str:
        return f"sum(rate(request_total{matchers(self.o.selector)}[{step_window}]))"

    def latency_over_time(self, quantile: float, step_window: str) -> str:
        sel = matchers(self.o.selector, *self.excluded)
        fam = f"{self.prefix}response_latency_ms_bucket"
        return (
            f"histogram_quantile({quantile:g}, sum by (le) "
            f"(rate({fam}{sel}[{step_window}])))"
        )
