"""The proxy twin's counters and histograms, exposed in Prometheus' text format.

Names, label names and histogram bounds follow Linkerd's proxy (see
:mod:`meshstack.twin.proxy` for what differs and why). Everything is kept under one
lock: an update is a few dictionary operations, so the lock is held for
microseconds even at hundreds of requests per second.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

# Linkerd's latency histogram bounds, in milliseconds; +Inf follows.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1_000, 2_000, 3_000, 4_000, 5_000, 10_000, 20_000, 30_000, 40_000, 50_000,
)  # fmt: skip

BASE_LABELS = ("direction", "authority", "target_addr", "tls")
ROUTE_LABELS = ("direction", "dst", "rt_route")
RESPONSE_LABELS = ("status_code", "classification")
OVERFLOW_ROUTE = "overflow"
INF = 'le="+Inf"'


def classify(status: int) -> str:
    """Linkerd's default HTTP classification: 5xx (or no answer) is a failure."""
    return "failure" if status >= 500 else "success"


@dataclass
class Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS_MS))
    total: float = 0.0
    count: int = 0

    def observe(self, ms: float) -> None:
        # Buckets are stored non-cumulative; expose() sums them.
        idx = bisect.bisect_left(LATENCY_BOUNDS_MS, ms)
        if idx < len(self.buckets):
            self.buckets[idx] += 1
        self.total += ms
        self.count += 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    body = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    if extra:
        body = f"{body},{extra}" if body else extra
    return "{" + body + "}"


class Registry:
    """Inbound request/response counts and latencies, whole-proxy and per route."""

    def __init__(self, max_routes: int = 512) -> None:
        self._lock = threading.Lock()
        self._max_routes = max_routes
        self._routes: set[str] = set()
        self._requests: dict[tuple[str, ...], int] = {}
        self._route_requests: dict[tuple[str, ...], int] = {}
        self._responses: dict[tuple[str, ...], Histogram] = {}
        self._route_responses: dict[tuple[str, ...], Histogram] = {}
        self.started = time.time()

    def route_name(self, method: str, target: str) -> str:
        """The route a request counts under; new ones past the cap are "overflow"."""
        name = f"{method} {target}"
        with self._lock:
            if name in self._routes:
                return name
            if len(self._routes) >= self._max_routes:
                return OVERFLOW_ROUTE
            self._routes.add(name)
        return name

    def request(self, authority: str, target_addr: str, route: str) -> None:
        base = ("inbound", authority, target_addr, "no_identity")
        rkey = ("inbound", authority, route)
        with self._lock:
            self._requests[base] = self._requests.get(base, 0) + 1
            self._route_requests[rkey] = self._route_requests.get(rkey, 0) + 1

    def response(
        self, authority: str, target_addr: str, route: str, status: int, ms: float
    ) -> None:
        outcome = (str(status), classify(status))
        base = ("inbound", authority, target_addr, "no_identity", *outcome)
        rkey = ("inbound", authority, route, *outcome)
        with self._lock:
            self._responses.setdefault(base, Histogram()).observe(ms)
            self._route_responses.setdefault(rkey, Histogram()).observe(ms)

    def expose(self) -> str:
        """Every family in Prometheus' text exposition format 0.0.4."""
        with self._lock:
            requests = dict(self._requests)
            route_requests = dict(self._route_requests)
            responses = {k: _copy(h) for k, h in self._responses.items()}
            route_responses = {k: _copy(h) for k, h in self._route_responses.items()}
        lines = [
            "# HELP process_start_time_seconds Time that the process started.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.started:.3f}",
        ]
        lines += _counter(
            "request_total", "Total count of HTTP requests.", BASE_LABELS, requests
        )
        lines += _responses("", BASE_LABELS, responses)
        lines += _counter(
            "route_request_total",
            "Total count of HTTP requests.",
            ROUTE_LABELS,
            route_requests,
        )
        lines += _responses("route_", ROUTE_LABELS, route_responses)
        return "\n".join(lines) + "\n"


def _copy(h: Histogram) -> Histogram:
    return Histogram(list(h.buckets), h.total, h.count)


def _counter(
    name: str, help_: str, names: tuple[str, ...], values: dict[tuple[str, ...], int]
) -> list[str]:
    out = [f"# HELP {name} {help_}", f"# TYPE {name} counter"]
    out += [f"{name}{_labels(names, k)} {v}" for k, v in sorted(values.items())]
    return out


def _responses(
    prefix: str, names: tuple[str, ...], values: dict[tuple[str, ...], Histogram]
) -> list[str]:
    names = names + RESPONSE_LABELS
    total, lat = f"{prefix}response_total", f"{prefix}response_latency_ms"
    out = [f"# HELP {total} Total count of HTTP responses.", f"# TYPE {total} counter"]
    out += [f"{total}{_labels(names, k)} {h.count}" for k, h in sorted(values.items())]
    out += [
        f"# HELP {lat} Elapsed times between a request's headers being received "
        "and its response stream completing",
        f"# TYPE {lat} histogram",
    ]
    for key, h in sorted(values.items()):
        running = 0
        for bound, n in zip(LATENCY_BOUNDS_MS, h.buckets, strict=True):
            running += n
            le = f'le="{bound:g}"'
            out.append(f"{lat}_bucket{_labels(names, key, le)} {running}")
        out.append(f"{lat}_bucket{_labels(names, key, INF)} {h.count}")
        out.append(f"{lat}_sum{_labels(names, key)} {h.total:.3f}")
        out.append(f"{lat}_count{_labels(names, key)} {h.count}")
    return out
