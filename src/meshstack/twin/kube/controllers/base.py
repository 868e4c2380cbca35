"""What every in-process controller shares: a watch-fed work loop and events.

A controller watches its kinds through the store (it lives in the server
process, as kube-controller-manager lives in the k3s process), reconciles the
objects an event touches, and resyncs everything every ``resync_interval``
seconds so that a write that lost a race (409) is retried. Its writes go through
:class:`~meshstack.twin.kube.api.Api`, so admission webhooks see them.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from typing import Any

from meshstack.twin.kube.api import Api, now
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.store import Key, Obj

log = logging.getLogger(__name__)

Ident = tuple[str, str]


class Controller:
    name = "controller"
    keys: tuple[Key, ...] = ()
    primary: Key = ("", "")

    def __init__(
        self, api: Api, stop: threading.Event, resync_interval: float = 2.0
    ) -> None:
        self.api = api
        self.stop = stop
        self.resync_interval = resync_interval
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        """The primary objects an event may change; by default the object itself."""
        return {_ident(obj)} if _key_of(obj) == self.primary else set()

    def reconcile(self, ns: str, name: str) -> None:
        raise NotImplementedError

    def primaries(self) -> list[Ident]:
        return [_ident(o) for o in self.api.store.list(self.primary)[0]]

    def _run(self) -> None:
        work: queue.Queue[tuple[str, Obj] | None] = queue.Queue()
        store = self.api.store
        watchers = [store.watch(k, lambda o: True, None, work) for k in self.keys]
        next_resync = time.monotonic() + self.resync_interval
        try:
            while not self.stop.is_set():
                todo = self._drain(work, max(0.05, next_resync - time.monotonic()))
                if time.monotonic() >= next_resync:
                    todo |= set(self.primaries())
                    next_resync = time.monotonic() + self.resync_interval
                for ns, name in sorted(todo):
                    self._reconcile_one(ns, name)
        finally:
            for w in watchers:
                store.unwatch(w)

    def _drain(
        self, work: queue.Queue[tuple[str, Obj] | None], wait: float
    ) -> set[Ident]:
        todo: set[Ident] = set()
        try:
            item = work.get(timeout=wait)
            while item is not None:
                todo |= self.affected(*item)
                item = work.get_nowait()
        except queue.Empty:
            pass
        return todo

    def _reconcile_one(self, ns: str, name: str) -> None:
        try:
            self.reconcile(ns, name)
        except ApiError as exc:
            log.debug(
                "[%s/%s] %s: %s; retrying at the next resync", ns, name, self.name, exc
            )
        except Exception:
            log.exception(
                "[%s/%s] %s failed; retrying at the next resync", ns, name, self.name
            )


def _ident(obj: Obj) -> Ident:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _key_of(obj: Obj) -> Key:
    group = obj.get("apiVersion", "").rpartition("/")[0]
    return (group, _PLURALS.get(obj.get("kind", ""), ""))


_PLURALS = {
    "Pod": "pods",
    "Node": "nodes",
    "Service": "services",
    "Endpoints": "endpoints",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "DaemonSet": "daemonsets",
    "Namespace": "namespaces",
}


def owner_ref(obj: Obj, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def owned_by(obj: Obj, owner: Obj) -> bool:
    uid = owner["metadata"]["uid"]
    return any(
        r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []
    )


def template_hash(template: Any) -> str:
    import json

    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def pod_ready(pod: Obj) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_active(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") not in (
        "Succeeded",
        "Failed",
    ) and not pod["metadata"].get("deletionTimestamp")


def condition(
    type_: str, status: bool, reason: str = "", message: str = ""
) -> dict[str, Any]:
    ts = now()
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": ts,
        "lastUpdateTime": ts,
    }


def set_condition(
    conds: list[dict[str, Any]], new: dict[str, Any]
) -> list[dict[str, Any]]:
    """Put ``new`` in place of the condition of its type.

    The old condition's transition time is kept if the status is unchanged.
    """
    out = []
    for c in conds:
        if c.get("type") == new["type"]:
            if c.get("status") == new["status"]:
                new = {
                    **new,
                    "lastTransitionTime": c.get(
                        "lastTransitionTime", new["lastTransitionTime"]
                    ),
                }
            continue
        out.append(c)
    return [*out, new]


def record_event(
    api: Api, obj: Obj, type_: str, reason: str, message: str, component: str
) -> None:
    """Write or bump an Event about ``obj`` (same reason and message: count+1)."""
    meta = obj["metadata"]
    ns = meta.get("namespace") or "default"
    digest = hashlib.sha1(f"{meta.get('uid')}{reason}{message}".encode()).hexdigest()[
        :16
    ]
    name = f"{meta['name']}.{digest}"
    rt = api.resource("v1", "Event")
    ts = now()
    try:
        old = api.get(rt, ns, name)
        old["count"] = int(old.get("count", 1)) + 1
        old["lastTimestamp"] = ts
        api.update(rt, ns, name, old)
        return
    except ApiError as exc:
        if exc.reason != "NotFound":
            raise
    event = {
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
    }
    api.create(rt, ns, event)
    log.info("[%s/%s] event %s %s: %s", ns, meta["name"], type_, reason, message)
