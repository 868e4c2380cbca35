"""Endpoints for every Service with a selector: its pods' addresses and ports.

In the twin a pod's IP is its node's address and each containerPort is served on
a node port the kubelet chose; the kubelet writes that mapping into the pod's
annotation ``PORT_MAP_ANNOTATION`` (JSON ``{"<containerPort>": <port>}``), and
the Endpoints publish the mapped port, so a client dialling an endpoint reaches
the container.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from meshstack.twin.kube.controllers.base import (
    Controller,
    Ident,
    pod_active,
    pod_ready,
)
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.selectors import label_matcher
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)

PORT_MAP_ANNOTATION = "twin.meshstack.io/port-map"


def port_map(pod: Obj) -> dict[str, int]:
    raw = (pod["metadata"].get("annotations") or {}).get(PORT_MAP_ANNOTATION)
    return {str(k): int(v) for k, v in json.loads(raw).items()} if raw else {}


def container_port(pod: Obj, target: Any) -> int | None:
    """The containerPort a Service's targetPort (number or name) designates."""
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target or p.get("containerPort") == target:
                return int(p["containerPort"])
    return int(target) if isinstance(target, int) or str(target).isdigit() else None


def published_port(pod: Obj, target: Any) -> int | None:
    cport = container_port(pod, target)
    if cport is None:
        return None
    return port_map(pod).get(str(cport), cport)


class EndpointsController(Controller):
    name = "endpoints-controller"
    keys = (("", "services"), ("", "pods"))
    primary = ("", "services")

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        if obj.get("kind") == "Pod":
            ns = obj["metadata"]["namespace"]
            return {i for i in self.primaries() if i[0] == ns}
        return super().affected(etype, obj)

    def reconcile(self, ns: str, name: str) -> None:
        svc = self.api.store.get(self.primary, ns, name)
        rt = self.api.resource("v1", "Endpoints")
        if svc is None:
            try:
                self.api.delete(rt, ns, name)
            except ApiError:
                pass
            return
        selector = svc["spec"].get("selector")
        if not selector:
            return
        match = label_matcher(",".join(f"{k}={v}" for k, v in selector.items()))
        pods = [
            p
            for p in self.api.store.list(("", "pods"), ns)[0]
            if match(p["metadata"].get("labels") or {})
            and pod_active(p)
            and p.get("status", {}).get("podIP")
        ]
        subsets = self._subsets(svc, pods)
        ep: dict[str, Any] = {
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": svc["metadata"].get("labels") or {},
            },
            "subsets": subsets,
        }
        old = self.api.store.get(rt.key, ns, name)
        if (
            old is not None
            and old.get("subsets") == subsets
            and (old["metadata"].get("labels") or {}) == ep["metadata"]["labels"]
        ):
            return
        self.api.apply(rt, ep)
        log.debug("[%s/%s] endpoints: %s", ns, name, subsets)

    def _subsets(self, svc: Obj, pods: list[Obj]) -> list[dict[str, Any]]:
        """One subset per distinct port set, as the real controller groups them."""
        groups: dict[str, dict[str, Any]] = {}
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            ports = []
            for sp in svc["spec"].get("ports") or []:
                port = published_port(pod, sp.get("targetPort", sp["port"]))
                if port is not None:
                    entry = {"port": port, "protocol": sp.get("protocol", "TCP")}
                    if sp.get("name"):
                        entry["name"] = sp["name"]
                    ports.append(entry)
            if not ports:
                continue
            key = json.dumps(ports, sort_keys=True)
            sub = groups.setdefault(key, {"ports": ports})
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod["metadata"]["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            field = "addresses" if pod_ready(pod) else "notReadyAddresses"
            sub.setdefault(field, []).append(address)
        return list(groups.values())
