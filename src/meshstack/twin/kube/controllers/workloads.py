"""Deployments → ReplicaSets → Pods, and DaemonSets → one Pod per node.

The deployment controller names each ReplicaSet for its pod template's hash
(label ``pod-template-hash``), so a template change starts a rollout: the new
ReplicaSet is scaled to the desired count and the old ones to zero once the new
one is available. # TODO: no maxSurge/maxUnavailable pacing; the rollout is one
step (all new pods, then old ones removed), which is enough for the stack's
single-replica demo workloads.
"""

from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from meshstack.twin.kube.controllers.base import (
    Controller,
    Ident,
    condition,
    owned_by,
    owner_ref,
    pod_active,
    pod_ready,
    set_condition,
    template_hash,
)
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.selectors import selector_from_dict
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)


def _owner_idents(obj: Obj, kind: str) -> set[Ident]:
    ns = obj["metadata"].get("namespace", "")
    return {
        (ns, r["name"])
        for r in obj["metadata"].get("ownerReferences") or []
        if r.get("kind") == kind
    }


def _pod_from_template(owner: Obj, template: dict[str, Any], name: str) -> Obj:
    meta = copy.deepcopy(template.get("metadata") or {})
    meta.update(
        name=name,
        namespace=owner["metadata"]["namespace"],
        ownerReferences=[owner_ref(owner)],
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    keys = (("apps", "replicasets"), ("", "pods"))
    primary = ("apps", "replicasets")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        if obj.get("kind") == "Pod":
            return _owner_idents(obj, "ReplicaSet")
        return super().affected(etype, obj)

    def reconcile(self, ns: str, name: str) -> None:
        rt = self.api.resource("apps/v1", "ReplicaSet")
        rs = self.api.store.get(rt.key, ns, name)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        pods = [
            p
            for p in self.api.store.list(("", "pods"), ns)[0]
            if owned_by(p, rs) and pod_active(p)
        ]
        want = int(rs["spec"].get("replicas", 1))
        pod_rt = self.api.resource("v1", "Pod")
        for _ in range(want - len(pods)):
            pod = _pod_from_template(
                rs, rs["spec"].get("template", {}), f"{name}-{uuid.uuid4().hex[:5]}"
            )
            pods.append(self.api.create(pod_rt, ns, pod))
        surplus = sorted(
            pods, key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"])
        )[: max(0, len(pods) - want)]
        for pod in surplus:
            self.api.delete(pod_rt, ns, pod["metadata"]["name"])
            pods.remove(pod)
        ready = sum(pod_ready(p) for p in pods)
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if rs.get("status") != status:
            rs["status"] = status
            self.api.update(rt, ns, name, rs, "status")


class DeploymentController(Controller):
    name = "deployment-controller"
    keys = (("apps", "deployments"), ("apps", "replicasets"))
    primary = ("apps", "deployments")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        if obj.get("kind") == "ReplicaSet":
            return _owner_idents(obj, "Deployment")
        return super().affected(etype, obj)

    def reconcile(self, ns: str, name: str) -> None:
        rt = self.api.resource("apps/v1", "Deployment")
        dep = self.api.store.get(rt.key, ns, name)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return
        dep["apiVersion"], dep["kind"] = "apps/v1", "Deployment"
        rs_rt = self.api.resource("apps/v1", "ReplicaSet")
        owned = [r for r in self.api.store.list(rs_rt.key, ns)[0] if owned_by(r, dep)]
        new = self._ensure_current(dep, owned)
        want = int(dep["spec"].get("replicas", 1))
        new_available = int((new.get("status") or {}).get("availableReplicas", 0))
        for rs in owned:
            if (
                rs["metadata"]["name"] != new["metadata"]["name"]
                and rs["spec"].get("replicas")
                and new_available >= want
            ):
                rs["spec"]["replicas"] = 0
                self.api.update(rs_rt, ns, rs["metadata"]["name"], rs)
                log.info(
                    "[%s/%s] rollout: scaled old %s to 0",
                    ns,
                    name,
                    rs["metadata"]["name"],
                )
        self._status(dep, new, owned, want)

    def _ensure_current(self, dep: Obj, owned: list[Obj]) -> Obj:
        template = copy.deepcopy(dep["spec"].get("template", {}))
        h = template_hash(template)
        rs_name = f"{dep['metadata']['name']}-{h}"
        rs_rt = self.api.resource("apps/v1", "ReplicaSet")
        want = int(dep["spec"].get("replicas", 1))
        for rs in owned:
            if rs["metadata"]["name"] == rs_name:
                if rs["spec"].get("replicas") != want:
                    rs["spec"]["replicas"] = want
                    return self.api.update(
                        rs_rt, rs["metadata"]["namespace"], rs_name, rs
                    )
                return rs
        labels = {
            **(template.get("metadata", {}).get("labels") or {}),
            "pod-template-hash": h,
        }
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(dep["spec"].get("selector") or {"matchLabels": {}})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = h
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": dep["metadata"]["namespace"],
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/revision": str(len(owned) + 1)
                },
                "ownerReferences": [owner_ref(dep)],
            },
            "spec": {"replicas": want, "selector": selector, "template": template},
        }
        log.info(
            "[%s/%s] new ReplicaSet %s",
            dep["metadata"]["namespace"],
            dep["metadata"]["name"],
            rs_name,
        )
        return self.api.create(rs_rt, dep["metadata"]["namespace"], rs)

    def _status(self, dep: Obj, new: Obj, owned: list[Obj], want: int) -> None:
        rs_all = {r["metadata"]["name"]: r for r in owned}
        rs_all[new["metadata"]["name"]] = new
        sums = {
            k: sum(int((r.get("status") or {}).get(k, 0)) for r in rs_all.values())
            for k in ("replicas", "readyReplicas", "availableReplicas")
        }
        updated = int((new.get("status") or {}).get("replicas", 0))
        available = sums["availableReplicas"] >= want
        old = dep.get("status") or {}
        conds = set_condition(
            old.get("conditions") or [],
            condition(
                "Available",
                available,
                "MinimumReplicasAvailable"
                if available
                else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
        )
        done = updated == want and available
        conds = set_condition(
            conds,
            condition(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{new["metadata"]["name"]}" '
                + ("has successfully progressed." if done else "is progressing."),
            ),
        )
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": sums["replicas"],
            "updatedReplicas": updated,
            "readyReplicas": sums["readyReplicas"],
            "availableReplicas": sums["availableReplicas"],
            "unavailableReplicas": max(0, want - sums["availableReplicas"]),
            "conditions": conds,
        }
        if _strip_times(status) != _strip_times(old):
            dep["status"] = status
            self.api.update(
                self.api.resource("apps/v1", "Deployment"),
                dep["metadata"]["namespace"],
                dep["metadata"]["name"],
                dep,
                "status",
            )


def _strip_times(status: dict[str, Any]) -> Any:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if not k.endswith("Time")}
        for c in status.get("conditions") or []
    ]
    return out


class DaemonSetController(Controller):
    """One pod per node that matches the DaemonSet's nodeSelector.

    As since Kubernetes 1.12, the pod is pinned to its node by node affinity and
    placed by the scheduler, so a pod that cannot fit (a hostPort taken) stays
    Pending with the scheduler's FailedScheduling event.
    """

    name = "daemonset-controller"
    keys = (("apps", "daemonsets"), ("", "pods"), ("", "nodes"))
    primary = ("apps", "daemonsets")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        if obj.get("kind") == "Pod":
            return _owner_idents(obj, "DaemonSet")
        if obj.get("kind") == "Node":
            return set(self.primaries())
        return super().affected(etype, obj)

    def reconcile(self, ns: str, name: str) -> None:
        rt = self.api.resource("apps/v1", "DaemonSet")
        ds = self.api.store.get(rt.key, ns, name)
        if ds is None or ds["metadata"].get("deletionTimestamp"):
            return
        ds["apiVersion"], ds["kind"] = "apps/v1", "DaemonSet"
        template = ds["spec"].get("template", {})
        node_sel = (template.get("spec") or {}).get("nodeSelector") or {}
        nodes = [
            n["metadata"]["name"]
            for n in self.api.store.list(("", "nodes"))[0]
            if all(
                (n["metadata"].get("labels") or {}).get(k) == v
                for k, v in node_sel.items()
            )
        ]
        pods = [
            p
            for p in self.api.store.list(("", "pods"), ns)[0]
            if owned_by(p, ds) and pod_active(p)
        ]
        by_node = {_target_node(p): p for p in pods}
        pod_rt = self.api.resource("v1", "Pod")
        for node in nodes:
            if node not in by_node:
                pod = _pod_from_template(ds, template, f"{name}-{uuid.uuid4().hex[:5]}")
                _pin(pod, node)
                by_node[node] = self.api.create(pod_rt, ns, pod)
        for node, pod in list(by_node.items()):
            if node not in nodes:
                self.api.delete(pod_rt, ns, pod["metadata"]["name"])
                del by_node[node]
        self._status(rt, ds, len(nodes), list(by_node.values()))

    def _status(self, rt: Any, ds: Obj, desired: int, pods: list[Obj]) -> None:
        ready = sum(pod_ready(p) for p in pods)
        scheduled = sum(bool(p["spec"].get("nodeName")) for p in pods)
        status = {
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": scheduled,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "numberUnavailable": desired - ready,
            "updatedNumberScheduled": scheduled,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if ds.get("status") != status:
            ds["status"] = status
            try:
                self.api.update(
                    rt,
                    ds["metadata"]["namespace"],
                    ds["metadata"]["name"],
                    ds,
                    "status",
                )
            except ApiError as exc:
                log.debug("daemonset status: %s", exc)


def _pin(pod: Obj, node: str) -> None:
    term = {
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]
    }
    affinity = pod["spec"].setdefault("affinity", {}).setdefault("nodeAffinity", {})
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [term]
    }


def _target_node(pod: Obj) -> str:
    if pod["spec"].get("nodeName"):
        return str(pod["spec"]["nodeName"])
    terms = (
        ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms") or []
    for term in terms:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("values"):
                return str(f["values"][0])
    return ""


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    m = selector_from_dict(selector)
    return bool(m and m(labels))
