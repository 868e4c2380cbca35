"""A userspace kube-proxy: ClusterIP and NodePort listeners that forward to endpoints.

For each Service port it listens on ``<ClusterIP>:<port>`` and, for NodePort and
LoadBalancer Services, on ``<node IP>:<nodePort>``, and hands each connection to
the next ready endpoint (round robin). A ClusterIP that is not on any interface
is added to the node's loopback (``ip addr add <ip>/32 dev lo``), which only the
node's own processes reach, as only they reach a real node's iptables rules.
"""

from __future__ import annotations

import errno
import logging
import subprocess
import threading
import time
from typing import Any

from kubernetes import client

from meshstack.twin.kube.forward import Forwarder
from meshstack.twin.kube.rawapi import raw

log = logging.getLogger(__name__)

Listener = tuple[str, int]


class KubeProxy:
    def __init__(
        self,
        api_client: client.ApiClient,
        node_ip: str,
        sync_interval: float = 1.0,
        add_loopback: bool = False,
    ) -> None:
        # adding addresses to lo is only right inside the node's own namespace
        self.add_loopback = add_loopback
        self.core = client.CoreV1Api(api_client)
        self.node_ip = node_ip
        self.sync_interval = sync_interval
        self.backends: dict[tuple[str, str, int], list[tuple[str, int]]] = {}
        self.forwarders: dict[Listener, Forwarder] = {}
        self.failed: set[Listener] = set()
        self.stopping = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="kube-proxy").start()

    def stop(self) -> None:
        self.stopping.set()
        for fwd in self.forwarders.values():
            fwd.stop()
        self.forwarders.clear()

    def _loop(self) -> None:
        # TODO: a resync every sync_interval instead of a watch: up to one interval
        # (1 s) between an endpoint change and the forwarders following it.
        while not self.stopping.is_set():
            try:
                self.sync()
            except Exception as exc:
                log.warning(
                    "kube-proxy sync failed: %s; retrying in %.0f s",
                    exc,
                    self.sync_interval,
                )
            self.stopping.wait(self.sync_interval)

    def sync(self) -> None:
        services = raw(self.core.list_service_for_all_namespaces)["items"]
        endpoints = raw(self.core.list_endpoints_for_all_namespaces)["items"]
        eps = {
            (e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints
        }
        wanted: dict[Listener, tuple[str, str, int]] = {}
        backends: dict[tuple[str, str, int], list[tuple[str, int]]] = {}
        for svc in services:
            ns, name, spec = (
                svc["metadata"]["namespace"],
                svc["metadata"]["name"],
                svc["spec"],
            )
            for port in spec.get("ports") or []:
                if port.get("protocol", "TCP") != "TCP":
                    continue  # TODO: UDP services are not forwarded
                key = (ns, name, port["port"])
                backends[key] = _backends(eps.get((ns, name)), port)
                if spec.get("clusterIP") not in (None, "", "None"):
                    wanted[(spec["clusterIP"], port["port"])] = key
                if port.get("nodePort"):
                    wanted[(self.node_ip, port["nodePort"])] = key
        self.backends = backends
        self._reconcile(wanted)

    def _reconcile(self, wanted: dict[Listener, tuple[str, str, int]]) -> None:
        for listener in list(self.forwarders):
            if listener not in wanted:
                self.forwarders.pop(listener).stop()
        for listener, key in wanted.items():
            if listener in self.forwarders or listener in self.failed:
                continue
            fwd = self._listen(listener, key)
            if fwd is not None:
                self.forwarders[listener] = fwd.start()

    def _listen(
        self, listener: Listener, key: tuple[str, str, int]
    ) -> Forwarder | None:
        def current() -> list[tuple[str, int]]:
            return self.backends.get(key, [])

        for attempt in range(2):
            try:
                return Forwarder(listener[0], listener[1], current)
            except OSError as exc:
                if (
                    exc.errno == errno.EADDRNOTAVAIL
                    and attempt == 0
                    and self.add_loopback
                    and _add_loopback(listener[0])
                ):
                    continue
                log.warning(
                    "kube-proxy cannot listen on %s:%d for %s/%s: %s",
                    *listener,
                    key[0],
                    key[1],
                    exc,
                )
                self.failed.add(listener)
                return None
        return None


def _backends(ep: dict[str, Any] | None, port: dict[str, Any]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for subset in (ep or {}).get("subsets") or []:
        ports = subset.get("ports") or []
        match = next(
            (p for p in ports if p.get("name") == port.get("name")),
            ports[0] if len(ports) == 1 else None,
        )
        if match is None:
            continue
        out.extend((a["ip"], int(match["port"])) for a in subset.get("addresses") or [])
    return out


def _add_loopback(ip: str) -> bool:
    cmd = ["ip", "addr", "add", f"{ip}/32", "dev", "lo"]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", " ".join(cmd), exc)
        return False
    if done.returncode != 0 and "File exists" not in done.stderr:
        log.warning(
            "%s exited %d: %s", " ".join(cmd), done.returncode, done.stderr.strip()
        )
        return False
    time.sleep(0.05)
    return True
