"""k3s's built-in service load balancer (servicelb, "klipper-lb").

Unless k3s runs with ``--disable servicelb``, for every Service of type
LoadBalancer without a ``loadBalancerClass`` it makes a DaemonSet
``svclb-<service>-<first 8 of the service uid>`` in kube-system whose pods hold
each service port as a hostPort on every node (image rancher/klipper-lb) and
forward it to the Service, and it writes the hosts of its ready pods into the
Service's ``status.loadBalancer.ingress``. Beside MetalLB both controllers write
that field, and the svclb pods stay Pending once another pod holds the ports:
the conflict of case C08, which this controller reproduces by doing what k3s does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from meshstack.twin.kube.controllers.base import Controller, Ident, pod_ready
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.store import Obj

log = logging.getLogger(__name__)

SYSTEM_NS = "kube-system"
LABEL_NAME = "svccontroller.k3s.cattle.io/svcname"
LABEL_NS = "svccontroller.k3s.cattle.io/svcnamespace"
ENABLE_LB = "svccontroller.k3s.cattle.io/enablelb"
IMAGE = "rancher/klipper-lb:v0.4.7"


def ds_name(svc: Obj) -> str:
    return f"svclb-{svc['metadata']['name']}-{svc['metadata']['uid'][:8]}"


def _handled(svc: Obj | None) -> bool:
    if svc is None:
        return False
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class ServiceLBController(Controller):
    name = "servicelb-controller"
    keys = (("", "services"), ("", "pods"), ("", "nodes"))
    primary = ("", "services")

    def __init__(self, *args: Any, fight_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # k3s's work queue rate-limits how often one Service is rewritten
        self.fight_interval = fight_interval
        self._last_write: dict[Ident, float] = {}

    def affected(self, etype: str, obj: Obj) -> set[Ident]:
        labels = obj["metadata"].get("labels") or {}
        if obj.get("kind") == "Pod" and LABEL_NAME in labels:
            return {(labels.get(LABEL_NS, ""), labels[LABEL_NAME])}
        if obj.get("kind") == "Node":
            return set(self.primaries())
        return super().affected(etype, obj) if obj.get("kind") == "Service" else set()

    def reconcile(self, ns: str, name: str) -> None:
        svc = self.api.store.get(self.primary, ns, name)
        self._remove_stale(ns, name, svc)
        if not _handled(svc):
            return
        assert svc is not None
        svc["apiVersion"], svc["kind"] = "v1", "Service"
        self.api.apply(self.api.resource("apps/v1", "DaemonSet"), self._daemonset(svc))
        self._write_ingress(svc)

    def _remove_stale(self, ns: str, name: str, svc: Obj | None) -> None:
        rt = self.api.resource("apps/v1", "DaemonSet")
        keep = ds_name(svc) if _handled(svc) else None  # type: ignore[arg-type]
        for ds in self.api.store.list(rt.key, SYSTEM_NS)[0]:
            labels = ds["metadata"].get("labels") or {}
            if (labels.get(LABEL_NAME), labels.get(LABEL_NS)) == (name, ns) and ds[
                "metadata"
            ]["name"] != keep:
                try:
                    self.api.delete(rt, SYSTEM_NS, ds["metadata"]["name"])
                    log.info("[%s/%s] removed %s", ns, name, ds["metadata"]["name"])
                except ApiError:
                    pass

    def _daemonset(self, svc: Obj) -> Obj:
        name, ns = ds_name(svc), svc["metadata"]["namespace"]
        labels = {"app": name, LABEL_NAME: svc["metadata"]["name"], LABEL_NS: ns}
        containers = [self._container(svc, p) for p in svc["spec"].get("ports") or []]
        spec: dict[str, Any] = {
            "containers": containers,
            "serviceAccountName": "svclb",
            "automountServiceAccountToken": False,
        }
        nodes = self.api.store.list(("", "nodes"))[0]
        if any((n["metadata"].get("labels") or {}).get(ENABLE_LB) for n in nodes):
            spec["nodeSelector"] = {ENABLE_LB: "true"}
        return {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": SYSTEM_NS, "labels": dict(labels)},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": labels}, "spec": spec},
            },
        }

    @staticmethod
    def _container(svc: Obj, port: dict[str, Any]) -> dict[str, Any]:
        proto = port.get("protocol", "TCP")
        cname = f"lb-{proto.lower()}-{port['port']}"
        env = {
            "SRC_PORT": str(port["port"]),
            "SRC_RANGES": "0.0.0.0/0",
            "DEST_PROTO": proto,
            "DEST_PORT": str(port["port"]),
            "DEST_IPS": svc["spec"].get("clusterIP", ""),
        }
        return {
            "name": cname,
            "image": IMAGE,
            "ports": [
                {
                    "name": cname,
                    "containerPort": port["port"],
                    "hostPort": port["port"],
                    "protocol": proto,
                }
            ],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
        }

    def _write_ingress(self, svc: Obj) -> None:
        ident = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        pods = [
            p
            for p in self.api.store.list(("", "pods"), SYSTEM_NS)[0]
            if (p["metadata"].get("labels") or {}).get("app") == ds_name(svc)
            and pod_ready(p)
        ]
        ips = sorted(
            {p["status"]["hostIP"] for p in pods if p.get("status", {}).get("hostIP")}
        )
        ingress = [{"ip": ip, "ipMode": "VIP"} for ip in ips]
        current = ((svc.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress"
        ) or []
        if [i.get("ip") for i in current] == ips:
            return
        if time.monotonic() - self._last_write.get(ident, 0.0) < self.fight_interval:
            return  # picked up again at the next resync
        self._last_write[ident] = time.monotonic()
        svc.setdefault("status", {})["loadBalancer"] = (
            {"ingress": ingress} if ingress else {}
        )
        self.api.update(
            self.api.resource("v1", "Service"), ident[0], ident[1], svc, "status"
        )
        log.info(
            "[%s/%s] servicelb ingress %s (was %s)",
            *ident,
            ips,
            [i.get("ip") for i in current],
        )
