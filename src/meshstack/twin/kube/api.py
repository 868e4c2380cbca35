"""API semantics over the store: what a verb does to an object of a type.

The HTTP layer and the in-process controllers both go through :class:`Api`, so a
Deployment's pods pass the same admission webhooks (Linkerd's proxy injector) as
a pod a user creates, as they do on a real cluster.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from meshstack.twin.kube import defaults, errors
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.patch import json_patch, merge_patch
from meshstack.twin.kube.resources import Registry, ResourceType
from meshstack.twin.kube.selectors import field_matcher, label_matcher
from meshstack.twin.kube.store import Obj, Store, Watcher

log = logging.getLogger(__name__)

Admit = Callable[[str, ResourceType, str, Obj | None, Obj | None, str], Obj | None]

CORE_NS = ("default", "kube-system", "kube-public", "kube-node-lease")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Api:
    def __init__(self, store: Store, registry: Registry, service_cidr: str) -> None:
        self.store = store
        self.registry = registry
        self.alloc = defaults.Allocator(service_cidr)
        # set by the server: (operation, type, subresource, object, old, ns) -> object
        self.admit: Admit | None = None

    def resource(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise errors.bad_request(
                f"no kind {kind!r} is registered for {api_version!r}"
            )
        return rt

    # -- reads -------------------------------------------------------------------
    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return self._present(rt, obj)

    def list(
        self, rt: ResourceType, ns: str | None, labels: str = "", fields: str = ""
    ) -> Obj:
        accepts = self._filter(labels, fields)
        items, rv = self.store.list(rt.key, ns if rt.namespaced else None, accepts)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(rv)},
            "items": [self._present(rt, o) for o in items],
        }

    def watch(
        self,
        rt: ResourceType,
        ns: str | None,
        since: str | None,
        labels: str = "",
        fields: str = "",
    ) -> Watcher:
        accepts = self._filter(labels, fields)
        if ns and rt.namespaced:
            inner = accepts
            accepts = lambda o: o["metadata"].get("namespace") == ns and inner(o)  # noqa: E731
        start = int(since) if since not in (None, "", "0") else None
        return self.store.watch(rt.key, accepts, start)

    @staticmethod
    def _filter(labels: str, fields: str) -> Callable[[Obj], bool]:
        lm, fm = label_matcher(labels), field_matcher(fields)
        return lambda o: lm(o["metadata"].get("labels") or {}) and fm(o)

    def _present(self, rt: ResourceType, obj: Obj) -> Obj:
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        return obj

    # -- writes ------------------------------------------------------------------
    def create(self, rt: ResourceType, ns: str, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            ns = ns or meta.get("namespace") or "default"
            self._check_namespace(ns, meta)
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if rt.virtual:
            return defaults.review(obj)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise errors.invalid(
                rt.kind,
                "",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        obj = self._admit("CREATE", rt, "", obj, None, ns) or obj
        meta = obj["metadata"]
        if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
            raise errors.already_exists(rt.group, rt.plural, meta["name"])
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        meta.pop("resourceVersion", None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        defaults.on_create(self, rt, obj)
        stored = self.store.put(rt.key, obj)
        defaults.after_write(self, rt, stored)
        log.debug(
            "created %s %s/%s", rt.plural, meta.get("namespace", ""), meta["name"]
        )
        return self._present(rt, stored)

    def _check_namespace(self, ns: str, meta: Obj) -> None:
        if meta.get("namespace") not in (None, "", ns):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace "
                "sent on the request"
            )
        nso = self.store.get(("", "namespaces"), "", ns)
        if nso is None:
            raise errors.not_found("", "namespaces", ns)
        if nso["metadata"].get("deletionTimestamp"):
            raise ApiError(
                "Forbidden",
                f"unable to create new content in namespace {ns} because it is being "
                "terminated",
            )

    def update(
        self, rt: ResourceType, ns: str, name: str, body: Obj, sub: str = ""
    ) -> Obj:
        ns = ns if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name "
                f"on the URL ({name})"
            )
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name)
        obj = self._merge_for_subresource(rt, old, obj, sub)
        obj = self._admit("UPDATE", rt, sub, obj, old, ns) or obj
        return self._store_update(rt, old, obj, want_rv)

    def _merge_for_subresource(
        self, rt: ResourceType, old: Obj, obj: Obj, sub: str
    ) -> Obj:
        if sub == "status":
            out = copy.deepcopy(old)
            out["status"] = obj.get("status", {})
            return out
        if rt.has_status:
            obj["status"] = copy.deepcopy(old.get("status", {}))
        for keep in (
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
        ):
            if keep in old["metadata"]:
                obj["metadata"][keep] = old["metadata"][keep]
        return obj

    def _store_update(
        self, rt: ResourceType, old: Obj, obj: Obj, want_rv: str | None
    ) -> Obj:
        meta = obj["metadata"]
        meta["generation"] = old["metadata"].get("generation", 1)
        if obj.get("spec") != old.get("spec"):
            meta["generation"] += 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        defaults.on_update(self, rt, obj, old)
        try:
            stored = self.store.put(
                rt.key, obj, want_rv or old["metadata"]["resourceVersion"]
            )
        except ApiError:
            raise errors.conflict(rt.group, rt.plural, meta["name"]) from None
        defaults.after_write(self, rt, stored)
        if stored["metadata"].get("deletionTimestamp") and not meta.get("finalizers"):
            gone = self.store.remove(rt.key, meta.get("namespace", ""), meta["name"])
            defaults.after_delete(self, rt, gone or stored)
        return self._present(rt, stored)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        content_type: str,
        sub: str = "",
    ) -> Obj:
        ns = ns if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        if "json-patch" in content_type:
            if not isinstance(body, list):
                raise errors.bad_request("a json patch must be a list of operations")
            new = json_patch(old, body)
        elif isinstance(body, dict):
            new = merge_patch(old, body, strategic="strategic" in content_type)
        else:
            raise errors.bad_request("a merge patch must be a JSON object")
        new.setdefault("metadata", {})
        return self.update(rt, ns, name, new, sub)

    def delete(
        self, rt: ResourceType, ns: str, name: str, opts: Obj | None = None
    ) -> Obj:
        ns = ns if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise errors.not_found(rt.group, rt.plural, name)
        pre = (opts or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
            raise errors.conflict(rt.group, rt.plural, name)
        self._admit("DELETE", rt, "", None, old, ns)
        if (opts or {}).get("propagationPolicy") == "Orphan":
            defaults.orphan(self, old)
        if rt.kind == "Namespace" or old["metadata"].get("finalizers"):
            return self._mark_deleting(rt, old)
        gone = self.store.remove(rt.key, ns, name) or old
        defaults.after_delete(self, rt, gone)
        log.debug("deleted %s %s/%s", rt.plural, ns, name)
        return self._present(rt, gone)

    def _mark_deleting(self, rt: ResourceType, old: Obj) -> Obj:
        obj = copy.deepcopy(old)
        if not obj["metadata"].get("deletionTimestamp"):
            obj["metadata"]["deletionTimestamp"] = now()
            if rt.kind == "Namespace":
                obj.setdefault("status", {})["phase"] = "Terminating"
            obj = self.store.put(rt.key, obj)
        return self._present(rt, obj)

    def delete_collection(
        self, rt: ResourceType, ns: str | None, labels: str = "", fields: str = ""
    ) -> Obj:
        listed = self.list(rt, ns, labels, fields)
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                self.delete(rt, meta.get("namespace", ""), meta["name"])
            except ApiError as exc:
                if exc.reason != "NotFound":
                    raise
        listed["metadata"]["resourceVersion"] = str(self.store.rv)
        return listed

    def _admit(
        self,
        op: str,
        rt: ResourceType,
        sub: str,
        obj: Obj | None,
        old: Obj | None,
        ns: str,
    ) -> Obj | None:
        if op != "DELETE" and obj is not None:
            defaults.validate(rt, obj)
        if self.admit is None:
            return obj
        return self.admit(op, rt, sub, obj, old, ns)

    # -- helpers for controllers --------------------------------------------------
    def apply(self, rt: ResourceType, obj: Obj) -> Obj:
        """Create, or overwrite the spec of, an object a controller owns."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        try:
            return self.create(rt, ns, obj)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
        old = self.get(rt, ns, meta["name"])
        new = merge_patch(old, {k: v for k, v in obj.items() if k != "status"})
        if new == old:
            return old  # unchanged: no write, no watch event
        return self.update(rt, ns, meta["name"], new)
