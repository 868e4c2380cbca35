"""The workloads a k3s server deploys in kube-system, unless ``--disable``d.

k3s applies these from its packaged manifests (coredns, local-storage,
metrics-server, and traefik through a HelmChart); the twin creates the same
Deployments and Services directly. Their images map to
:mod:`meshstack.twin.kube.sysimages` (images/k3s.yaml), and each reports Ready
through its readiness probe, run by the kubelet.
# TODO: no helm-install-traefik Jobs; traefik's Deployment and LoadBalancer
# Service are made directly, which is what servicelb and MetalLB see.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from meshstack.twin.kube.api import Api
from meshstack.twin.kube.errors import ApiError

log = logging.getLogger(__name__)

NS = "kube-system"


def _deployment(
    name: str, labels: dict[str, str], container: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [container]},
            },
        },
    }


def _service(
    name: str, labels: dict[str, str], ports: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
        "spec": {"selector": dict(labels), "ports": ports, **spec},
    }


def _probe(path: str, port: str) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": 2,
    }


def coredns(service_cidr: str) -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    dns_ip = str(ipaddress.ip_network(service_cidr, strict=False).network_address + 10)
    container = {
        "name": "coredns",
        "image": "rancher/mirrored-coredns-coredns:1.10.1",
        "args": ["-conf", "/etc/coredns/Corefile"],
        "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
            {"name": "health", "containerPort": 8080, "protocol": "TCP"},
            {"name": "ready", "containerPort": 8181, "protocol": "TCP"},
        ],
        "readinessProbe": _probe("/ready", "ready"),
    }
    ports = [
        {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "targetPort": 9153, "protocol": "TCP"},
    ]
    svc = _service("kube-dns", labels, ports, clusterIP=dns_ip)
    return [_deployment("coredns", labels, container), svc]


def local_storage() -> list[dict[str, Any]]:
    labels = {"app": "local-path-provisioner"}
    container = {
        "name": "local-path-provisioner",
        "image": "rancher/local-path-provisioner:v0.0.24",
    }
    return [_deployment("local-path-provisioner", labels, container)]


def metrics_server() -> list[dict[str, Any]]:
    labels = {"k8s-app": "metrics-server"}
    container = {
        "name": "metrics-server",
        "image": "rancher/mirrored-metrics-server:v0.6.3",
        "ports": [{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
        "readinessProbe": _probe("/readyz", "https"),
    }
    ports = [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    return [
        _deployment("metrics-server", labels, container),
        _service("metrics-server", labels, ports),
    ]


def traefik() -> list[dict[str, Any]]:
    labels = {
        "app.kubernetes.io/name": "traefik",
        "app.kubernetes.io/instance": "traefik-kube-system",
    }
    container = {
        "name": "traefik",
        "image": "rancher/mirrored-library-traefik:2.10.5",
        "ports": [
            {"name": "web", "containerPort": 8000, "protocol": "TCP"},
            {"name": "websecure", "containerPort": 8443, "protocol": "TCP"},
        ],
    }
    ports = [
        {"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP"},
        {
            "name": "websecure",
            "port": 443,
            "targetPort": "websecure",
            "protocol": "TCP",
        },
    ]
    return [
        _deployment("traefik", labels, container),
        _service("traefik", labels, ports, type="LoadBalancer"),
    ]


def deploy(api: Api, disabled: set[str], service_cidr: str) -> list[str]:
    """Create the packaged workloads not disabled; returns what was deployed."""
    parts = {
        "coredns": lambda: coredns(service_cidr),
        "local-storage": local_storage,
        "metrics-server": metrics_server,
        "traefik": traefik,
    }
    done = []
    for name, make in parts.items():
        if name in disabled:
            continue
        for obj in make():
            rt = api.resource(obj["apiVersion"], obj["kind"])
            try:
                api.create(rt, NS, obj)
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
        done.append(name)
    log.info("deployed packaged components: %s", ", ".join(done) or "none")
    return done
