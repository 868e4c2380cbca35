"""The default scheduler: binds each pending pod to a node that can take it.

Filters, in the order kube-scheduler reports them: the node is Ready and
schedulable, matches the pod's nodeSelector and required node affinity, and has
every hostPort the pod asks for free. A pod no node fits stays Pending with
PodScheduled=False and a FailedScheduling event in kube-scheduler's wording
("0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod
ports, 2 node(s) didn't match Pod's node affinity/selector."). Among fitting
nodes, the one running the fewest pods of the same owner wins, then the one
running the fewest pods.
"""

from __future__ import annotations

import collections
import logging
from typing import Any

from meshstack.twin.kube.controllers.base import (
    Controller,
    Ident,
    condition,
    pod_active,
    record_event,
    set_condition,
)
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)

_NOT_READY = "node(s) were not ready"
_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
_PORTS = "node(s) didn't have free ports for the requested pod ports"
_UNSCHEDULABLE = "node(s) were unschedulable"


def host_ports(pod: Obj) -> set[tuple[str, int]]:
    return {
        (p.get("protocol", "TCP"), int(p["hostPort"]))
        for c in pod.get("spec", {}).get("containers") or []
        for p in c.get("ports") or []
        if p.get("hostPort")
    }


def _node_ready(node: Obj) -> bool:
    for c in node.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _term_matches(term: dict[str, Any], node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    for f in term.get("matchFields") or []:
        value = node["metadata"]["name"] if f.get("key") == "metadata.name" else None
        if (value in (f.get("values") or [])) != (f.get("operator") == "In"):
            return False
    for e in term.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), e.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def _affinity_ok(pod: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    if any(
        labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()
    ):
        return False
    required = ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(_term_matches(t, node) for t in terms)


class Scheduler(Controller):
    name = "default-scheduler"
    keys = (("", "pods"), ("", "nodes"))
    primary = ("", "pods")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        if obj.get("kind") == "Pod" and etype != "DELETED":
            return (
                {(obj["metadata"]["namespace"], obj["metadata"]["name"])}
                if not obj["spec"].get("nodeName")
                else set()
            )
        return set(self.primaries())  # a node or a freed port may let pending pods fit

    def primaries(self) -> list[Ident]:
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in self.api.store.list(self.primary)[0]
            if not p["spec"].get("nodeName")
            and pod_active(p)
            and p["spec"].get("schedulerName", "default-scheduler")
            == "default-scheduler"
        ]

    def reconcile(self, ns: str, name: str) -> None:
        pod = self.api.store.get(self.primary, ns, name)
        if pod is None or pod["spec"].get("nodeName") or not pod_active(pod):
            return
        nodes = self.api.store.list(("", "nodes"))[0]
        pods = [p for p in self.api.store.list(self.primary)[0] if pod_active(p)]
        fit, reasons = self._filter(pod, nodes, pods)
        rt = self.api.resource("v1", "Pod")
        if not fit:
            return self._unschedulable(pod, len(nodes), reasons)
        # spread a workload's pods first (kube-scheduler's default topology
        # spreading), then balance the number of pods per node
        owners = {r.get("uid") for r in pod["metadata"].get("ownerReferences") or []}
        siblings = collections.Counter(
            p["spec"].get("nodeName")
            for p in pods
            if owners
            & {r.get("uid") for r in p["metadata"].get("ownerReferences") or []}
        )
        load = collections.Counter(p["spec"].get("nodeName") for p in pods)
        chosen = min(fit, key=lambda n: (siblings[n], load[n], n))
        pod["spec"]["nodeName"] = chosen
        bound = self.api.update(rt, ns, name, pod)
        bound["status"]["conditions"] = set_condition(
            bound["status"].get("conditions") or [], condition("PodScheduled", True)
        )
        self.api.update(rt, ns, name, bound, "status")
        record_event(
            self.api,
            bound,
            "Normal",
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {chosen}",
            self.name,
        )

    def _filter(
        self, pod: Obj, nodes: list[Obj], pods: list[Obj]
    ) -> tuple[list[str], collections.Counter[str]]:
        want_ports = host_ports(pod)
        used: dict[str, set[tuple[str, int]]] = collections.defaultdict(set)
        for p in pods:
            if p["spec"].get("nodeName"):
                used[p["spec"]["nodeName"]] |= host_ports(p)
        reasons: collections.Counter[str] = collections.Counter()
        fit = []
        for node in nodes:
            name = node["metadata"]["name"]
            if not _node_ready(node):
                reasons[_NOT_READY] += 1
            elif node.get("spec", {}).get("unschedulable"):
                reasons[_UNSCHEDULABLE] += 1
            elif not _affinity_ok(pod, node):
                reasons[_SELECTOR] += 1
            elif want_ports & used[name]:
                reasons[_PORTS] += 1
            else:
                fit.append(name)
        return fit, reasons

    def _unschedulable(
        self, pod: Obj, total: int, reasons: collections.Counter[str]
    ) -> None:
        parts = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        message = (
            f"0/{total} nodes are available: {parts}."
            if parts
            else f"0/{total} nodes are available."
        )
        conds = pod["status"].get("conditions") or []
        current: dict[str, Any] = next(
            (c for c in conds if c.get("type") == "PodScheduled"), {}
        )
        if current.get("message") == message:
            return
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        pod["status"]["conditions"] = set_condition(
            conds, condition("PodScheduled", False, "Unschedulable", message)
        )
        self.api.update(self.api.resource("v1", "Pod"), ns, name, pod, "status")
        record_event(self.api, pod, "Warning", "FailedScheduling", message, self.name)
        log.info("[%s/%s] unschedulable: %s", ns, name, message)
