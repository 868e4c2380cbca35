"""Discovery documents: /version, /api, /apis, and each group/version's resources."""

from __future__ import annotations

from typing import Any

from meshstack.twin.kube.resources import Registry, ResourceType

VERSION = {
    "major": "1",
    "minor": "28",
    "gitVersion": "v1.28.5+k3s1",
    "gitCommit": "meshstack-twin",
    "gitTreeState": "clean",
    "buildDate": "2024-01-01T00:00:00Z",
    "goVersion": "go1.20.12",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def core_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in registry.versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.versions().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(
    registry: Registry, group_name: str, version: str
) -> dict[str, Any] | None:
    types = [
        rt for rt in registry.all() if (rt.group, rt.version) == (group_name, version)
    ]
    if not types:
        return None
    resources = []
    for rt in sorted(types, key=lambda t: t.plural):
        resources.append(rt.describe())
        resources.extend(_subresource(rt, sub) for sub in rt.subresources)
    gv = f"{group_name}/{version}" if group_name else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _subresource(rt: ResourceType, sub: str) -> dict[str, Any]:
    verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
    kind = "Scale" if sub == "scale" else rt.kind
    return {
        "name": f"{rt.plural}/{sub}",
        "singularName": "",
        "namespaced": rt.namespaced,
        "kind": kind,
        "verbs": verbs,
    }
