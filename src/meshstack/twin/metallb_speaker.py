"""The MetalLB twin's speaker process: L2 election, VIP on the overlay, forwarding.

See :mod:`meshstack.twin.metallb` for the behaviour it reproduces. It runs inside
its node's network namespace (as the real speaker runs with hostNetwork), finds the
interface holding the node's address, and for every address it wins adds
``<ip>/32`` to that interface and forwards TCP to the Service's ready endpoints.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from meshstack.twin import metallb as m
from meshstack.twin.kube.forward import relay
from meshstack.twin.metallb_controller import (
    api,
    await_service_change,
    current_ip,
    event,
    load_pools,
    plain,
    say,
    serve_metrics,
)

CMD_TIMEOUT = 10


def ip_cmd(*args: str) -> str:
    proc = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False
    )
    if proc.returncode != 0 and "File exists" not in proc.stderr:
        raise RuntimeError(
            f"ip {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        )
    return proc.stdout


def interface_for(address: str) -> str:
    """The interface in this namespace that holds ``address``."""
    for line in ip_cmd("-o", "-4", "addr", "show").splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3].split("/")[0] == address:
            return parts[1]
    raise RuntimeError(f"no interface holds {address} in this network namespace")


class Forwarder:
    """TCP on (vip, port) to the first reachable endpoint, round robin."""

    def __init__(self, vip: str, port: int) -> None:
        self.targets: list[tuple[str, int]] = []
        self.turn = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((vip, port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        targets = list(self.targets)
        for i in range(len(targets)):
            target = targets[(self.turn + i) % len(targets)]
            try:
                upstream = socket.create_connection(target, timeout=5)
            except OSError:
                continue
            self.turn += 1
            relay(conn, upstream)
            return
        conn.close()

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave
        # the socket listening until that accept returned
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _node_ready(node: Any) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def endpoints_for(
    core: client.CoreV1Api, svc: dict
) -> dict[int, list[tuple[str, int]]]:
    """Service port -> ready (ip, port) endpoints, matched by port name."""
    meta = svc["metadata"]
    try:
        ep = plain(core.read_namespaced_endpoints(meta["name"], meta["namespace"]))
    except client.ApiException:
        return {}
    out: dict[int, list[tuple[str, int]]] = {}
    for sp in (svc.get("spec") or {}).get("ports") or []:
        for subset in ep.get("subsets") or []:
            ports = subset.get("ports") or []
            match = [p for p in ports if p.get("name") == sp.get("name")] or ports[:1]
            for addr in subset.get("addresses") or []:
                for p in match:
                    out.setdefault(int(sp["port"]), []).append(
                        (addr["ip"], int(p["port"]))
                    )
    return out


@dataclass
class Announcement:
    forwarders: dict[int, Forwarder]


class Speaker:
    def __init__(self, cl: client.ApiClient, tag: str, node: str, iface: str) -> None:
        self.cl, self.tag, self.node, self.iface = cl, tag, node, iface
        self.core: Any = client.CoreV1Api(cl)
        self.held: dict[str, Announcement] = {}
        self.said: dict[str, str] = {}
        self.services_version: str | None = None

    def desired(self) -> dict[str, dict]:
        """VIP -> Service, for the addresses this node must announce."""
        pools = load_pools(self.cl, self.tag)
        adverts = self._adverts()
        speakers = self._speaker_nodes()
        out = {}
        listed = self.core.list_service_for_all_namespaces()
        self.services_version = str(listed.metadata.resource_version)
        for s in listed.items:
            svc = plain(s)
            ip = current_ip(svc)
            pool = next((p for p in pools if ip and p.contains(ip)), None)
            if ip is None or pool is None:
                continue
            nodes = self._eligible(pool, adverts, speakers)
            if nodes is None:
                self._note(ip, "no L2Advertisement selects pool", pool=pool.name)
                continue
            if m.elect(ip, sorted(nodes)) != self.node:
                continue
            if self._interface_allowed(pool, adverts):
                out[ip] = svc
            else:
                self._note(
                    ip,
                    "elected, but no advertisement allows the interface",
                    interface=self.iface,
                )
        return out

    def _adverts(self) -> list[dict] | None:
        if not m.reads_crds(self.tag):
            return None  # legacy: a layer2 pool announces itself
        got: Any = client.CustomObjectsApi(self.cl).list_namespaced_custom_object(
            m.GROUP, m.VERSION, m.NS, "l2advertisements"
        )
        return list(got["items"])

    def _speaker_nodes(self) -> dict[str, dict[str, str]]:
        pods = self.core.list_namespaced_pod(
            m.NS, label_selector="component=speaker"
        ).items
        ready = {
            p.spec.node_name
            for p in pods
            if p.status.phase == "Running"
            and all(c.ready for c in p.status.container_statuses or [])
        }
        # a node that is not Ready takes no part in the election, as in MetalLB
        return {
            n.metadata.name: dict(n.metadata.labels or {})
            for n in self.core.list_node().items
            if n.metadata.name in ready and _node_ready(n)
        }

    def _eligible(
        self,
        pool: m.Pool,
        adverts: list[dict] | None,
        speakers: dict[str, dict[str, str]],
    ) -> set[str] | None:
        if adverts is None:
            return set(speakers)
        chosen = [a for a in adverts if m.selects(a, pool)]
        if not chosen:
            return None
        return {
            name
            for adv in chosen
            for name, labels in speakers.items()
            if m.node_allowed(adv, labels)
        }

    def _interface_allowed(self, pool: m.Pool, adverts: list[dict] | None) -> bool:
        """Whether an advertisement for the pool lets this node use its interface.

        Interfaces do not enter the election (every speaker must elect the same
        node); a winner whose interface no advertisement allows stays silent.
        """
        if adverts is None:
            return True
        for adv in adverts:
            ifaces = (adv.get("spec") or {}).get("interfaces") or []
            if m.selects(adv, pool) and (not ifaces or self.iface in ifaces):
                return True
        return False

    def sync(self) -> None:
        want = self.desired()
        for ip in set(self.held) - set(want):
            self._withdraw(ip)
        for ip, svc in want.items():
            if ip not in self.held:
                self._announce(ip, svc)
            self._retarget(ip, svc)

    def _announce(self, ip: str, svc: dict) -> None:
        ip_cmd("addr", "add", f"{ip}/32", "dev", self.iface)
        fwd = {
            int(p["port"]): Forwarder(ip, int(p["port"]))
            for p in (svc.get("spec") or {}).get("ports") or []
        }
        self.held[ip] = Announcement(fwd)
        say(
            "info",
            "service has IP, announcing",
            ip=ip,
            node=self.node,
            service=f"{svc['metadata']['namespace']}/{svc['metadata']['name']}",
            interface=self.iface,
            protocol="layer2",
        )
        event(
            self.cl,
            svc,
            "Normal",
            "nodeAssigned",
            f'announcing from node "{self.node}" with protocol "layer2"',
            "metallb-speaker",
        )

    def _retarget(self, ip: str, svc: dict) -> None:
        eps = endpoints_for(self.core, svc)
        for port, fwd in self.held[ip].forwarders.items():
            fwd.targets = eps.get(port, [])

    def _withdraw(self, ip: str) -> None:
        for fwd in self.held.pop(ip).forwarders.values():
            fwd.close()
        try:
            ip_cmd("addr", "del", f"{ip}/32", "dev", self.iface)
        except RuntimeError as exc:
            say("warn", "could not remove address", ip=ip, error=str(exc))
        say("info", "withdrawing service announcement", ip=ip, node=self.node)

    def _await_service_change(self, timeout: float) -> None:
        """Until a Service changes after the last sync's list, or ``timeout``.

        A Service's address is announced as soon as it is written; changes to
        pools, advertisements, nodes and endpoints are picked up by the next
        resync, at most ``timeout`` later.
        """
        await_service_change(self.core, self.services_version or "", timeout)

    def _note(self, ip: str | None, msg: str, **kw: Any) -> None:
        if ip and self.said.get(ip) != msg:
            say("info", msg, ip=ip, **kw)
            self.said[ip] = msg

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sync()
                self._await_service_change(1.0)
            except Exception as exc:  # the API may come and go; retry after a pause
                say("error", "sync failed; retrying in 1s", error=str(exc))
                stop.wait(1.0)
        for ip in list(self.held):
            self._withdraw(ip)


def run_speaker() -> int:
    tag = os.environ.get("MESHSTACK_IMAGE_TAG", "v0.14.5")
    node = os.environ.get("MESHSTACK_NODE_NAME", "")
    iface = interface_for(os.environ.get("MESHSTACK_POD_IP", ""))
    serve_metrics(7472)
    say("info", "MetalLB speaker starting", version=tag, node=node, interface=iface)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Speaker(api(), tag, node, iface).run(stop)
    return 0
