"""A k3s node's own side: name, address and password, the join, kubelet and proxy."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from kubernetes import config

from meshstack.twin.kube import kubeconfig
from meshstack.twin.kube.images import ImageMap
from meshstack.twin.kube.join import join
from meshstack.twin.kube.k3sargs import (
    Settings,
    default_address,
    iface_address,
    redacted_args,
)
from meshstack.twin.kube.kubelet import Kubelet, KubeletConfig
from meshstack.twin.kube.kubeproxy import KubeProxy
from meshstack.twin.kube.podrun import NodeInfo

log = logging.getLogger(__name__)

ROLE_LABELS = {
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/master": "true",
}


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def node_name(s: Settings) -> str:
    name = s.node_name or socket.gethostname()
    if s.with_node_id:
        id_file = s.node_dir / "etc/rancher/node/node-id"
        if not id_file.exists():
            id_file.parent.mkdir(parents=True, exist_ok=True)
            id_file.write_text(secrets.token_hex(4))
        name = f"{name}-{id_file.read_text().strip()}"
    return name.lower()


def node_ip(s: Settings) -> str:
    if s.node_ip:
        return s.node_ip
    if s.flannel_iface:
        return iface_address(s.flannel_iface)
    return default_address()


def node_password(s: Settings) -> str:
    """The node's password (``/etc/rancher/node/password``), made once."""
    path = s.node_dir / "etc/rancher/node/password"
    if not path.exists():
        kubeconfig.write(path, secrets.token_hex(16))
    return path.read_text(encoding="utf-8").strip()


def pod_cidr(cluster_cidr: str, name: str) -> str:
    import ipaddress

    net = ipaddress.ip_network(cluster_cidr, strict=False)
    subnets = list(net.subnets(new_prefix=24)) if net.prefixlen <= 24 else [net]
    return str(subnets[zlib.crc32(name.encode()) % len(subnets)])


@dataclass
class NodeRuntime:
    name: str
    ip: str
    kubelet: Kubelet
    proxy: KubeProxy

    def stop(self, stop_pods: bool) -> None:
        self.proxy.stop()
        self.kubelet.stop(stop_pods)


def start_node(
    s: Settings, server_url: str, token: str, cluster_cidr: str = "10.42.0.0/16"
) -> NodeRuntime:
    """Join the server, then run this node's kubelet and kube-proxy."""
    name, ip = node_name(s), node_ip(s)
    ca, node_token = join(server_url, token, name, node_password(s))
    kc_path = s.data_dir / "agent/kubelet.kubeconfig"
    kubeconfig.write(kc_path, kubeconfig.render(server_url, ca, node_token))
    api_client = config.new_client_from_config(config_file=str(kc_path))
    labels = {**(ROLE_LABELS if s.role == "server" else {}), **s.node_labels}
    annotations = {
        "k3s.io/node-args": json.dumps(
            redacted_args([a for a in s.argv if a != "--daemon"])
        ),
        "k3s.io/internal-ip": ip,
        "k3s.io/hostname": name,
        "flannel.alpha.coreos.com/public-ip": ip,
    }
    if s.flannel_iface:
        annotations["flannel.alpha.coreos.com/public-ip-overwrite"] = ip
    targets = os.environ.get("MESHSTACK_PROM_TARGETS_DIR")
    cfg = KubeletConfig(
        node=NodeInfo(name, ip, s.node_dir, sys.executable, kc_path),
        labels=labels,
        annotations=annotations,
        heartbeat_interval=_env_float("MESHSTACK_TWIN_HEARTBEAT_INTERVAL", 10.0),
        sync_interval=_env_float("MESHSTACK_TWIN_SYNC_INTERVAL", 0.5),
        kubelet_port=int(os.environ.get("MESHSTACK_TWIN_KUBELET_PORT") or 10250),
        prom_targets_dir=Path(targets) if targets else None,
        pod_cidr=pod_cidr(cluster_cidr, name),
    )
    kubelet = Kubelet(api_client, cfg, ImageMap.load())
    kubelet.start()
    proxy = KubeProxy(
        api_client,
        ip,
        _env_float("MESHSTACK_TWIN_PROXY_INTERVAL", 1.0),
        add_loopback=os.environ.get("MESHSTACK_TWIN_LOOPBACK_CLUSTER_IPS") == "1",
    )
    proxy.start()
    return NodeRuntime(name, ip, kubelet, proxy)
