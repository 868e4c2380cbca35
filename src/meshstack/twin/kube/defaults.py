"""What the API server itself fills in or checks, per kind, as kube-apiserver does.

Defaults (a pod's phase, a Service's ClusterIP and NodePorts from the server's
``--service-cidr`` and 30000-32767), a CRD's registration in discovery, the
minimal validation the stack's manifests rely on, and SelfSubjectAccessReview
answers (the twin has one user with every right, as k3s's admin kubeconfig does).
"""

from __future__ import annotations

import ipaddress
import threading
from typing import TYPE_CHECKING, Any

from meshstack.twin.kube import errors
from meshstack.twin.kube.resources import ResourceType

if TYPE_CHECKING:
    from meshstack.twin.kube.api import Api

Obj = dict[str, Any]
NODEPORT_RANGE = range(30000, 32768)


class Allocator:
    """ClusterIPs and NodePorts, handed out once and freed on Service deletion."""

    def __init__(self, service_cidr: str) -> None:
        self.net = ipaddress.ip_network(service_cidr, strict=False)
        self._lock = threading.Lock()
        self._ips: set[str] = set()
        self._ports: set[int] = set()

    def kubernetes_ip(self) -> str:
        return str(self.net.network_address + 1)

    def take_ip(self, wanted: str | None = None) -> str:
        with self._lock:
            if wanted:
                self._ips.add(wanted)
                return wanted
            for host in self.net.hosts():
                ip = str(host)
                if ip not in self._ips and ip != self.kubernetes_ip():
                    self._ips.add(ip)
                    return ip
        raise errors.ApiError("InternalError", f"no ClusterIP left in {self.net}")

    def take_port(self, wanted: int | None = None) -> int:
        with self._lock:
            if wanted:
                if wanted in self._ports:
                    raise errors.invalid(
                        "Service",
                        "",
                        "spec.ports[0].nodePort",
                        f"Invalid value: {wanted}: provided port is already allocated",
                    )
                self._ports.add(wanted)
                return wanted
            for port in NODEPORT_RANGE:
                if port not in self._ports:
                    self._ports.add(port)
                    return port
        raise errors.ApiError("InternalError", "no NodePort left")

    def release(self, svc: Obj) -> None:
        spec = svc.get("spec", {})
        with self._lock:
            self._ips.discard(spec.get("clusterIP", ""))
            for p in spec.get("ports", []):
                self._ports.discard(p.get("nodePort", 0))


def validate(rt: ResourceType, obj: Obj) -> None:
    name = obj.get("metadata", {}).get("name", "")
    if rt.kind == "Pod":
        for i, c in enumerate(obj.get("spec", {}).get("containers") or [None]):
            if not c or not c.get("name") or not c.get("image"):
                raise errors.invalid(
                    "Pod",
                    name,
                    f"spec.containers[{i}]",
                    "Required value: name and image",
                )
    if rt.kind == "Service":
        for i, p in enumerate(obj.get("spec", {}).get("ports") or []):
            if not isinstance(p.get("port"), int):
                raise errors.invalid(
                    "Service", name, f"spec.ports[{i}].port", "Required value"
                )


def on_create(api: Api, rt: ResourceType, obj: Obj) -> None:
    hook = _CREATE.get(rt.kind)
    if hook is not None:
        hook(api, obj)


def on_update(api: Api, rt: ResourceType, obj: Obj, old: Obj) -> None:
    if rt.kind == "Service":
        spec, ospec = obj.setdefault("spec", {}), old.get("spec", {})
        spec.setdefault("clusterIP", ospec.get("clusterIP"))
        spec.setdefault("clusterIPs", ospec.get("clusterIPs"))
        _service_ports(api, spec, ospec)


def _pod(api: Api, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for c in spec.get("containers", []):
        c.setdefault("imagePullPolicy", "IfNotPresent")
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", "BestEffort")


def _service(api: Api, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        spec["clusterIP"] = api.alloc.take_ip(spec.get("clusterIP"))
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    _service_ports(api, spec, {})
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _service_ports(api: Api, spec: Obj, old: Obj) -> None:
    old_ports = {p.get("port"): p.get("nodePort") for p in old.get("ports", [])}
    for p in spec.get("ports", []):
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
        if spec.get("type") in ("NodePort", "LoadBalancer") and not p.get("nodePort"):
            p["nodePort"] = old_ports.get(p["port"]) or api.alloc.take_port()
        elif p.get("nodePort") and p["nodePort"] != old_ports.get(p["port"]):
            api.alloc.take_port(p["nodePort"])


def _namespace(api: Api, obj: Obj) -> None:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {})["phase"] = "Active"
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name


def _deployment(api: Api, obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    spec.setdefault(
        "strategy",
        {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        },
    )
    obj.setdefault("status", {})


def _crd(api: Api, obj: Obj) -> None:
    spec = obj.get("spec", {})
    names = dict(spec.get("names", {}))
    names.setdefault("singular", names.get("kind", "").lower())
    names.setdefault("listKind", names.get("kind", "") + "List")
    stored = [v["name"] for v in spec.get("versions", []) if v.get("storage")]
    obj["status"] = {
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            _cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            _cond(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            ),
        ],
    }


def _cond(type_: str, reason: str, message: str) -> Obj:
    from meshstack.twin.kube.api import now

    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }


_CREATE = {
    "Pod": _pod,
    "Service": _service,
    "Namespace": _namespace,
    "Deployment": _deployment,
    "CustomResourceDefinition": _crd,
}


def after_write(api: Api, rt: ResourceType, obj: Obj) -> None:
    if rt.kind == "CustomResourceDefinition":
        api.registry.register_crd(obj)


def after_delete(api: Api, rt: ResourceType, obj: Obj) -> None:
    if rt.kind == "CustomResourceDefinition":
        api.registry.unregister_crd(obj["metadata"]["name"])
        spec = obj.get("spec", {})
        key = (spec.get("group", ""), spec.get("names", {}).get("plural", ""))
        for item in api.store.list(key)[0]:
            meta = item["metadata"]
            api.store.remove(key, meta.get("namespace", ""), meta["name"])
    if rt.kind == "Service":
        api.alloc.release(obj)


def orphan(api: Api, obj: Obj) -> None:
    """Drop ownerReferences to ``obj`` so that the collector leaves them alone."""
    uid = obj["metadata"]["uid"]
    for rt in api.registry.all():
        for item in api.store.list(rt.key)[0]:
            refs = item["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                item["metadata"]["ownerReferences"] = [
                    r for r in refs if r.get("uid") != uid
                ]
                api.store.put(rt.key, item)


def review(obj: Obj) -> Obj:
    obj["status"] = {"allowed": True, "reason": "the twin's admin user may do anything"}
    return obj
