"""The Node object a kubelet registers and the heartbeat it posts."""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import uuid
from typing import TYPE_CHECKING, Any, cast

from kubernetes import client

from meshstack.twin.kube.discovery import VERSION
from meshstack.twin.kube.rawapi import raw

if TYPE_CHECKING:
    from meshstack.twin.kube.kubelet import KubeletConfig

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(ts: str) -> list[dict[str, Any]]:
    def c(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": ts,
            "lastTransitionTime": ts,
        }

    return [
        c(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        c(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        c(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def node_body(cfg: KubeletConfig, kubelet_port: int) -> dict[str, Any]:
    name, ip, ts = cfg.node.name, cfg.node.ip, _now()
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "node.kubernetes.io/instance-type": "k3s",
        **cfg.labels,
    }
    capacity = {
        "cpu": str(os.cpu_count() or 1),
        "memory": "4026532Ki",
        "pods": "110",
        "ephemeral-storage": "20961280Ki",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": dict(cfg.annotations),
        },
        "spec": {
            "podCIDR": cfg.pod_cidr,
            "podCIDRs": [cfg.pod_cidr] if cfg.pod_cidr else [],
            "providerID": f"k3s://{name}",
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": _conditions(ts),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid4()),
                "containerRuntimeVersion": "containerd://1.7.11-k3s2",
                "kernelVersion": platform.release(),
                "kubeProxyVersion": VERSION["gitVersion"],
                "kubeletVersion": VERSION["gitVersion"],
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "operatingSystem": "linux",
                "osImage": "meshstack twin (k3s " + VERSION["gitVersion"] + ")",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            },
        },
    }


def register(core: client.CoreV1Api, cfg: KubeletConfig, kubelet_port: int) -> None:
    """Create the Node, or take over an existing one (a restarted or re-joined node)."""
    body = node_body(cfg, kubelet_port)
    try:
        core.create_node(cast(Any, body))
        log.info("[%s] node registered", cfg.node.name)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        old = raw(core.read_node, cfg.node.name)
        body["metadata"]["labels"] = {
            **(old["metadata"].get("labels") or {}),
            **body["metadata"]["labels"],
        }
        core.patch_node(
            cfg.node.name, {"metadata": body["metadata"], "spec": body["spec"]}
        )
        log.info("[%s] node re-registered", cfg.node.name)
    core.patch_node_status(cfg.node.name, {"status": body["status"]})


def heartbeat(core: client.CoreV1Api, cfg: KubeletConfig, kubelet_port: int) -> None:
    """Refresh the node's conditions; register it again if it was deleted."""
    name = cfg.node.name
    try:
        node = raw(core.read_node_status, name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        log.warning("[%s] the Node object is gone; registering it again", name)
        register(core, cfg, kubelet_port)
        return
    conds = node.get("status", {}).get("conditions") or []
    ts = _now()
    fresh = {c["type"]: c for c in _conditions(ts)}
    out = []
    for cond in conds:
        new = fresh.pop(cond.get("type"), None)
        if new is None:
            out.append(cond)
            continue
        if cond.get("status") == new["status"]:
            new["lastTransitionTime"] = cond.get("lastTransitionTime", ts)
        out.append(new)
    out.extend(fresh.values())
    core.patch_node_status(name, {"status": {"conditions": out}})
