"""``linkerd viz stat``: the MESHED column from the pods themselves.

# TODO: SUCCESS, RPS and latency columns print "-" (as the real CLI does for
# workloads without traffic data): the twin has no viz metrics-api to query. Use the
# local stack's Prometheus for traffic figures.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from meshstack.twin.linkerd.checks import PROXY
from meshstack.twin.linkerd.kube import connect

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


def stat(args: argparse.Namespace, out: TextIO) -> int:
    kind = _KINDS.get(args.resource.split("/")[0])
    if kind is None:
        raise ValueError(
            f"cannot find Kubernetes canonical name from friendly name "
            f"[{args.resource}]"
        )
    kube = connect(args.kubeconfig)
    pods = kube.core.list_namespaced_pod(args.namespace).items
    rows = []
    if kind == "pod":
        for p in pods:
            rows.append((p.metadata.name, _meshed([p])))
    else:
        for d in kube.apps.list_namespaced_deployment(args.namespace).items:
            sel = d.spec.selector.match_labels or {}
            mine = [
                p
                for p in pods
                if all((p.metadata.labels or {}).get(k) == v for k, v in sel.items())
            ]
            rows.append((d.metadata.name, _meshed(mine)))
    if not rows:
        out.write("No traffic found.\n")
        return 0
    table = [_COLUMNS] + [(n, m, "-", "-", "-", "-", "-", "-") for n, m in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_COLUMNS))]
    for r in table:
        out.write(
            "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        )
        out.write("\n")
    return 0


def _meshed(pods: list) -> str:
    running = [p for p in pods if p.status.phase == "Running"]
    meshed = [p for p in running if any(c.name == PROXY for c in p.spec.containers)]
    return f"{len(meshed)}/{len(running)}"
