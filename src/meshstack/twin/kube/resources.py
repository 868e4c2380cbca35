"""The resource types the twin API server serves, and the CRD-driven registry.

A :class:`ResourceType` is what discovery publishes for one plural of one
group/version. Built-in types are fixed; a CustomResourceDefinition adds (and its
deletion removes) one type per served version, so the dynamic client and
``kubectl api-resources`` see custom resources as they would on k3s.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    # create-only review types (SelfSubjectAccessReview) are answered, not stored
    virtual: bool = False
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: objects are shared by all versions of one group/plural."""
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def describe(self) -> dict[str, Any]:
        """This type as an APIResource entry of an APIResourceList."""
        return {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
            "shortNames": list(self.short_names),
            "categories": list(self.categories),
        }


def _t(
    gv: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    sub: tuple[str, ...] = (),
    short: tuple[str, ...] = (),
) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, plural, kind, namespaced, sub, short)


_STATUS = ("status",)
_REVIEW_VERBS = ("create",)

BUILTIN: tuple[ResourceType, ...] = (
    _t("v1", "namespaces", "Namespace", False, _STATUS, ("ns",)),
    _t("v1", "nodes", "Node", False, _STATUS, ("no",)),
    _t("v1", "pods", "Pod", True, ("status", "log"), ("po",)),
    _t("v1", "services", "Service", True, _STATUS, ("svc",)),
    _t("v1", "endpoints", "Endpoints", True, (), ("ep",)),
    _t("v1", "configmaps", "ConfigMap", True, (), ("cm",)),
    _t("v1", "secrets", "Secret"),
    _t("v1", "serviceaccounts", "ServiceAccount", True, (), ("sa",)),
    _t("v1", "events", "Event", True, (), ("ev",)),
    _t("v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, _STATUS),
    _t("apps/v1", "deployments", "Deployment", True, ("status", "scale"), ("deploy",)),
    _t("apps/v1", "daemonsets", "DaemonSet", True, _STATUS, ("ds",)),
    _t("apps/v1", "replicasets", "ReplicaSet", True, _STATUS, ("rs",)),
    _t("apps/v1", "statefulsets", "StatefulSet", True, _STATUS, ("sts",)),
    _t("batch/v1", "jobs", "Job", True, _STATUS),
    _t("batch/v1", "cronjobs", "CronJob", True, _STATUS),
    _t("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True, _STATUS),
    _t("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _t("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _t("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    _t(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        False,
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
    _t(
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
    _t(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        _STATUS,
        ("crd", "crds"),
    ),
    _t("apiregistration.k8s.io/v1", "apiservices", "APIService", False, _STATUS),
    _t("coordination.k8s.io/v1", "leases", "Lease"),
    _t("discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    _t("networking.k8s.io/v1", "ingresses", "Ingress", True, _STATUS, ("ing",)),
    _t("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy"),
    _t("storage.k8s.io/v1", "storageclasses", "StorageClass", False, (), ("sc",)),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=_REVIEW_VERBS,
        virtual=True,
    ),
)


class Registry:
    """Every served type, looked up by (group, version, plural) or by kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        # the CRD name that registered each custom type, for its removal
        self._by_crd: dict[str, list[tuple[str, str, str]]] = {}
        for rt in BUILTIN:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if (rt.group, rt.version, rt.kind) == (group, version, kind):
                    return rt
        return None

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

    def versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred (first registered) first."""
        out: dict[str, list[str]] = {}
        for rt in self.all():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def register_crd(self, crd: dict[str, Any]) -> None:
        """Serve every served version a CustomResourceDefinition declares."""
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        name = crd["metadata"]["name"]
        keys = []
        for ver in spec.get("versions", []):
            if not ver.get("served", True):
                continue
            sub = tuple(ver.get("subresources", {}) or {})
            rt = ResourceType(
                group=spec["group"],
                version=ver["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                subresources=sub,
                short_names=tuple(names.get("shortNames", []) or []),
                categories=tuple(names.get("categories", []) or []),
            )
            keys.append((rt.group, rt.version, rt.plural))
            with self._lock:
                self._types[keys[-1]] = rt
        with self._lock:
            for old in set(self._by_crd.get(name, [])) - set(keys):
                self._types.pop(old, None)
            self._by_crd[name] = keys

    def unregister_crd(self, name: str) -> None:
        with self._lock:
            for key in self._by_crd.pop(name, []):
                self._types.pop(key, None)
