"""Namespace deletion, ownerReference garbage collection and node lifecycle."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from meshstack.twin.kube.api import now
from meshstack.twin.kube.controllers.base import Controller, Ident, set_condition
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)


class NamespaceController(Controller):
    """Deletes a terminating namespace's content, then the namespace itself."""

    name = "namespace-controller"
    keys = (("", "namespaces"),)
    primary = ("", "namespaces")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        return (
            {("", obj["metadata"]["name"])}
            if obj["metadata"].get("deletionTimestamp")
            else set()
        )

    def primaries(self) -> list[Ident]:
        return [
            ("", o["metadata"]["name"])
            for o in self.api.store.list(self.primary)[0]
            if o["metadata"].get("deletionTimestamp")
        ]

    def reconcile(self, _: str, name: str) -> None:
        store = self.api.store
        if store.get(self.primary, "", name) is None:
            return
        left = 0
        for rt in {
            rt.key: rt for rt in self.api.registry.all() if rt.namespaced
        }.values():
            for item in store.list(rt.key, name)[0]:
                left += 1
                if not item["metadata"].get("deletionTimestamp"):
                    try:
                        self.api.delete(rt, name, item["metadata"]["name"])
                    except ApiError as exc:
                        if exc.reason != "NotFound":
                            raise
        if left == 0:
            store.remove(self.primary, "", name)
            log.info("[%s] namespace deleted", name)


class GarbageCollector(Controller):
    """Deletes objects all of whose owners are gone (background propagation)."""

    name = "garbage-collector"
    keys = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keys = (None,)  # type: ignore[assignment]  # every type

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        return {("", "*")} if etype == "DELETED" else set()

    def primaries(self) -> list[Ident]:
        return [("", "*")]

    def reconcile(self, ns: str, name: str) -> None:
        store = self.api.store
        types = {rt.key: rt for rt in self.api.registry.all()}
        uids = {
            o["metadata"]["uid"] for key in store.keys() for o in store.list(key)[0]
        }
        for key, rt in types.items():
            for item in store.list(key)[0]:
                refs = item["metadata"].get("ownerReferences") or []
                if refs and not any(r.get("uid") in uids for r in refs):
                    meta = item["metadata"]
                    log.info(
                        "[%s/%s] owner gone: deleting %s",
                        meta.get("namespace", ""),
                        meta["name"],
                        rt.kind,
                    )
                    try:
                        self.api.delete(rt, meta.get("namespace", ""), meta["name"])
                    except ApiError as exc:
                        if exc.reason != "NotFound":
                            raise


class NodeLifecycleController(Controller):
    """Marks a node whose kubelet stopped posting status as Ready=Unknown."""

    name = "node-lifecycle-controller"
    keys = (("", "nodes"),)
    primary = ("", "nodes")

    def __init__(self, *args: Any, grace_period: float = 40.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace_period = grace_period

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        return set()  # only the periodic resync judges heartbeats

    def reconcile(self, _: str, name: str) -> None:
        rt = self.api.resource("v1", "Node")
        node = self.api.get(rt, "", name)
        conds = node.get("status", {}).get("conditions") or []
        ready = next((c for c in conds if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") == "Unknown":
            return
        beat = dt.datetime.strptime(
            ready["lastHeartbeatTime"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=dt.UTC)
        age = (dt.datetime.now(dt.UTC) - beat).total_seconds()
        if age <= self.grace_period:
            return
        new = {
            **ready,
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastTransitionTime": now(),
        }
        node["status"]["conditions"] = set_condition(conds, new)
        self.api.update(rt, "", name, node, "status")
        log.warning("[%s] no heartbeat for %.0f s: Ready=Unknown", name, age)
