"""Apply, read and delete Kubernetes objects through the official client.

What ``kubectl apply -f`` does for the providers, without kubectl: every document
is created, or replaced when it exists, through the dynamic client (so custom
resources work once their CRD is served). Errors stay ``ApiException`` so callers
can judge their text with the ``kube-apply-error`` analyzer.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config, dynamic, watch
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from meshstack import clock, yamlio

log = logging.getLogger(__name__)

CRD_WAIT_TIMEOUT = 15.0


@dataclass
class KubeClient:
    api: client.ApiClient

    @classmethod
    def from_file(cls, path: str) -> KubeClient:
        """A client from exactly this kubeconfig (never a default one)."""
        return cls(config.new_client_from_config(config_file=path))

    @property
    def core(self) -> Any:
        """CoreV1Api (typed loosely: model fields are read defensively)."""
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return client.AppsV1Api(self.api)

    @property
    def dyn(self) -> dynamic.DynamicClient:
        if not hasattr(self, "_dyn"):
            self._dyn = dynamic.DynamicClient(self.api)
        return self._dyn

    def resource(self, api_version: str, kind: str) -> Any:
        """The API resource for a kind, waiting briefly for a just-made CRD."""
        deadline = clock.monotonic() + CRD_WAIT_TIMEOUT
        while True:
            try:
                return self.dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                if clock.monotonic() >= deadline:
                    raise
                self.dyn.resources.invalidate_cache()
                clock.sleep(0.5)

    def apply(self, doc: dict[str, Any]) -> bool:
        """Create the object, or replace it if it exists; True if it was created."""
        res = self.resource(doc["apiVersion"], doc["kind"])
        meta = doc["metadata"]
        ns = meta.get("namespace") if res.namespaced else None
        where = f"{doc['kind']} {ns + '/' if ns else ''}{meta['name']}"
        try:
            log.debug("POST %s", where)
            res.create(body=doc, namespace=ns)
            return True
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        current = res.get(name=meta["name"], namespace=ns)
        body = json.loads(json.dumps(doc))
        body["metadata"]["resourceVersion"] = current.metadata.resourceVersion
        log.debug("PUT %s (exists)", where)
        res.replace(body=body, namespace=ns)
        return False

    def list(self, api_version: str, kind: str, ns: str | None = None) -> list[Any]:
        res = self.resource(api_version, kind)
        log.debug("LIST %s %s", kind, ns or "(all namespaces)")
        items: list[Any] = res.get(namespace=ns).to_dict().get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def custom_items(
        self, group: str, version: str, ns: str, plural: str, kind: str
    ) -> builtins.list[dict[str, Any]]:
        """Custom objects; an unserved type (CRD absent) is an empty list."""
        api = client.CustomObjectsApi(self.api)
        try:
            log.debug("LIST %s.%s/%s in %s", plural, group, version, ns)
            got: Any = api.list_namespaced_custom_object(group, version, ns, plural)
        except client.ApiException as exc:
            if exc.status == 404:
                return []
            raise
        return builtins.list(got["items"])

    def await_pod_change(self, ns: str, timeout: float) -> None:
        """Block until a pod of ``ns`` changes (a watch event) or ``timeout`` passes.

        Waits hand this to ``wait_for`` as part of their probe, so they react to
        the API's events instead of polling on a fixed interval.
        """
        self.await_change(self.core.list_namespaced_pod, ns, timeout, "pods")

    def await_change(
        self, list_fn: Callable[..., Any], ns: str, timeout: float, what: str
    ) -> None:
        """Block until an object that ``list_fn`` lists in ``ns`` changes, or
        ``timeout`` passes (see :meth:`await_pod_change`)."""
        rv = list_fn(ns).metadata.resource_version
        w = watch.Watch()
        log.debug("WATCH %s in %s from %s (%.0fs)", what, ns, rv, timeout)
        try:
            for _ in w.stream(
                list_fn, ns, resource_version=rv, timeout_seconds=max(1, int(timeout))
            ):
                break
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # a watch the server closed early only ends this wait; the caller looks
            log.debug("WATCH %s in %s ended early: %s", what, ns, exc)
        finally:
            w.stop()

    def ensure_namespace(self, name: str) -> bool:
        """Make the namespace unless it exists; True if it was made now."""
        return self.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )

    def delete(self, api_version: str, kind: str, name: str, ns: str | None) -> None:
        res = self.resource(api_version, kind)
        try:
            log.debug("DELETE %s %s/%s", kind, ns or "", name)
            res.delete(name=name, namespace=ns if res.namespaced else None)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def objects_yaml(objs: list[dict[str, Any]]) -> str:
    """Objects as one `kind: List` YAML document, as `kubectl get -o yaml` prints."""
    return yamlio.dump(
        {"apiVersion": "v1", "kind": "List", "items": objs}, sort_keys=False
    )


def apply_error_text(exc: client.ApiException) -> str:
    """The error as the client reports it: status, reason and the Status body."""
    return f"({exc.status})\nReason: {exc.reason}\nHTTP response body: {exc.body}"


def delete_recorded(
    kube: KubeClient, resources: list[dict[str, Any]], ctx: Any, layer: str
) -> None:
    """Delete what the state file says this layer created, newest first."""
    for res in reversed(list(resources)):
        ns, _, name = str(res["id"]).rpartition("/")
        try:
            kube.delete(res.get("api_version", "v1"), res["type"], name, ns or None)
        except ResourceNotFoundError:
            log.info(
                "[%s] %s: its type is no longer served; nothing to delete",
                res["id"],
                res["type"],
            )
        ctx.forget(layer, res["type"], res["id"])
