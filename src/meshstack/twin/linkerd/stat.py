"""``linkerd viz stat``: per-workload golden metrics read from the proxies themselves.

MESHED comes from the pods; SUCCESS, RPS and latency from each meshed pod's proxy
(its admin port's ``/metrics``: ``response_total`` and ``response_latency_ms`` for
``direction="inbound"``), summed over the workload's running pods.

# TODO: the real CLI asks viz's Prometheus for a 1m window; the twin reads the
# proxies' counters since each proxy started (RPS = responses / proxy uptime), so
# a burst long ago still shows. TCP_CONN is not counted ("-").
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from meshstack.twin.linkerd.checks import PROXY
from meshstack.twin.linkerd.kube import connect

PORT_MAP = "twin.meshstack.io/port-map"
ADMIN_PORT = "4191"
SCRAPE_TIMEOUT = 3
_KINDS = {
    "deploy": "deployment",
    "deployment": "deployment",
    "deployments": "deployment",
    "po": "pod",
    "pod": "pod",
    "pods": "pod",
}
_COLUMNS = (
    "NAME",
    "MESHED",
    "SUCCESS",
    "RPS",
    "LATENCY_P50",
    "LATENCY_P95",
    "LATENCY_P99",
    "TCP_CONN",
)
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Traffic:
    """Inbound responses of some proxies: counts, successes, latency buckets."""

    total: float = 0.0
    success: float = 0.0
    seconds: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def add_metrics(self, text: str, now: float) -> None:
        for line in text.splitlines():
            self._sample(line, now)

    def _sample(self, line: str, now: float) -> None:
        if line.startswith("process_start_time_seconds "):
            self.seconds = max(self.seconds, now - float(line.split()[1]))
            return
        m = _SAMPLE.match(line)
        if not m:
            return
        labels = dict(_LABEL.findall(m.group(2)))
        if labels.get("direction") != "inbound":
            return
        value = float(m.group(3))
        if m.group(1) == "response_total":
            self.total += value
            self.success += value if labels.get("classification") == "success" else 0
        elif m.group(1) == "response_latency_ms_bucket":
            le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
            self.buckets[le] = self.buckets.get(le, 0.0) + value

    def quantile(self, q: float) -> float | None:
        """Prometheus' histogram_quantile over the cumulative buckets."""
        bounds = sorted(self.buckets)
        if not bounds or self.buckets[bounds[-1]] == 0:
            return None
        rank, lower, below = q * self.buckets[bounds[-1]], 0.0, 0.0
        for b in bounds:
            count = self.buckets[b]
            if count >= rank:
                if b == float("inf"):
                    return lower
                return lower + (b - lower) * (rank - below) / max(count - below, 1e-9)
            lower, below = b, count
        return lower


def _scrape(pod: Any) -> str | None:
    notes = pod.metadata.annotations or {}
    try:
        port = json.loads(notes.get(PORT_MAP, "{}")).get(ADMIN_PORT)
    except ValueError:
        return None
    if not port or not pod.status.pod_ip:
        return None
    url = f"http://{pod.status.pod_ip}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT) as resp:
            return str(resp.read().decode("utf-8", errors="replace"))
    except OSError:
        return None


def _running(pods: Iterable[Any]) -> list[Any]:
    return [p for p in pods if p.status.phase == "Running"]


def _meshed(pods: list[Any]) -> list[Any]:
    return [p for p in pods if any(c.name == PROXY for c in p.spec.containers)]


def _row(name: str, pods: list[Any]) -> tuple[str, ...]:
    running = _running(pods)
    meshed = _meshed(running)
    traffic, now = Traffic(), time.time()
    for pod in meshed:
        text = _scrape(pod)
        if text is not None:
            traffic.add_metrics(text, now)
    cells = [name, f"{len(meshed)}/{len(running)}"]
    if not traffic.total:
        return (*cells, "-", "-", "-", "-", "-", "-")
    rps = traffic.total / traffic.seconds if traffic.seconds else 0.0
    lat = [traffic.quantile(q) for q in (0.5, 0.95, 0.99)]
    return (
        *cells,
        f"{100 * traffic.success / traffic.total:.2f}%",
        f"{rps:.1f}rps",
        *[f"{v:.0f}ms" if v is not None else "-" for v in lat],
        "-",
    )


def stat(args: argparse.Namespace, out: TextIO) -> int:
    kind = _KINDS.get(args.resource.split("/")[0])
    if kind is None:
        raise ValueError(
            f"cannot find Kubernetes canonical name from friendly name "
            f"[{args.resource}]"
        )
    kube = connect(args.kubeconfig)
    pods = kube.core.list_namespaced_pod(args.namespace).items
    if kind == "pod":
        rows = [_row(p.metadata.name, [p]) for p in pods]
    else:
        rows = []
        for d in kube.apps.list_namespaced_deployment(args.namespace).items:
            sel = d.spec.selector.match_labels or {}
            mine = [
                p
                for p in pods
                if all((p.metadata.labels or {}).get(k) == v for k, v in sel.items())
            ]
            rows.append(_row(d.metadata.name, mine))
    if not rows:
        out.write("No traffic found.\n")
        return 0
    _table(out, [_COLUMNS, *rows])
    return 0


def _table(out: TextIO, table: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
    for r in table:
        line = "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
        out.write(line.rstrip() + "\n")
