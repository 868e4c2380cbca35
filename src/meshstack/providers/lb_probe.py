"""The lb layer's probe: a LoadBalancer Service whose backend is the harness host.

The lb check makes a probe Service, waits for MetalLB to give it an address and a
speaker to announce it, and reads a greeting through that address from a TCP server
on the harness host (``Banner``). The greeting proves the whole path (announcement,
forwarding, backend), not only that an address was written into the Service's
status. Mixed into the lb provider's checks, which judge what the probe saw.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Any

from kubernetes import client

from meshstack import clock
from meshstack.providers.kube_apply import KubeClient
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

PROBE_LABEL = "meshstack.io/lb-probe"


class AllocationProbe:
    """The probe Service's life: made, addressed, announced, removed."""

    settings: dict[str, Any]
    ctx: Any
    _backend: Banner

    @property
    def kube(self) -> KubeClient:  # provided by the provider
        raise NotImplementedError

    def _probe_service(self) -> dict[str, Any]:
        ns, port = self.settings["probe_namespace"], self.settings["probe_port"]
        name = f"lb-probe-{self.ctx.run_id[-8:]}".lower()
        if self.kube.ensure_namespace(ns):
            self.ctx.record("lb", "Namespace", ns, api_version="v1")
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {PROBE_LABEL: "1"}},
            "spec": {
                "type": "LoadBalancer",
                "ports": [{"name": "http", "port": port, "targetPort": port}],
            },
        }
        self.kube.apply(body)
        self.ctx.record("lb", "Service", f"{ns}/{name}", api_version="v1", probe=True)
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns},
                "subsets": [
                    {
                        "addresses": [{"ip": self._host_ip()}],
                        "ports": [{"name": "http", "port": self._echo()}],
                    }
                ],
            }
        )
        return body

    def _host_ip(self) -> str:
        """The harness host's address towards the pool: the probe's backend."""
        if self.settings.get("probe_backend_address"):
            return str(self.settings["probe_backend_address"])
        host = self.ctx.outputs("overlay").get("host_address")
        if host:
            return str(host)
        first = self.settings["pools"][0]["addresses"][0]
        target = first.split("-")[0].split("/")[0].strip()
        # connecting a UDP socket sends nothing; it asks the kernel for the route
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((target, 9))
            return str(s.getsockname()[0])

    def _echo(self) -> int:
        """A TCP answerer on the host's overlay address: the probe Service's backend."""
        self._backend = Banner(self._host_ip(), self.settings["reachability_timeout"])
        return self._backend.port

    def _await_address(self, svc: dict[str, Any]) -> tuple[str | None, str]:
        """The probe Service's address (None if none came) and its uid."""
        meta = svc["metadata"]
        core = self.kube.core
        uid = core.read_namespaced_service(meta["name"], meta["namespace"]).metadata.uid

        def current() -> str | None:
            got = core.read_namespaced_service(meta["name"], meta["namespace"])
            ingress = (
                (got.status.load_balancer.ingress or [])
                if got.status.load_balancer
                else []
            )
            return ingress[0].ip if ingress else None

        def probe() -> str | None:
            # No address yet: wait for the next change to a Service there (a watch),
            # not for a fixed interval, then look again.
            ip = current()
            if ip is None:
                self.kube.await_change(
                    core.list_namespaced_service, meta["namespace"], 2.0, "services"
                )
                ip = current()
            return ip

        try:
            ip = wait_for(
                f"[{meta['namespace']}/{meta['name']}] LoadBalancer address",
                probe,
                lambda v: bool(v),
                self.settings["ip_allocation_timeout"],
                interval=0.0,
                retry_on=(client.ApiException,),
            )
        except WaitTimeout:
            ip = None
        return ip, uid

    def _events(self, meta: dict[str, Any], uid: str) -> list[str]:
        """The probe Service's own events, oldest first, as one line each.

        Events name their object by uid too: an earlier probe Service of the same
        name (an earlier check of this run) has events of its own.
        """
        items = self.kube.core.list_namespaced_event(meta["namespace"]).items
        return [
            f"{e.type} {e.reason} {e.source.component if e.source else ''}: {e.message}"
            for e in items
            if e.involved_object
            and e.involved_object.name == meta["name"]
            and e.involved_object.uid in (uid, None)
        ]

    def _await_announcement(
        self, meta: dict[str, Any], uid: str, deadline: float
    ) -> bool:
        """Whether a speaker said it announces the address before ``deadline``.

        MetalLB's speaker records a ``nodeAssigned`` event on the Service once it
        answers for the address. Connecting before that costs a lost ARP request
        and the kernel's one-second retry; waiting for the event (a watch) does not.
        """
        ns = meta["namespace"]
        core = self.kube.core

        def announced() -> bool:
            if any(" nodeAssigned " in e for e in self._events(meta, uid)):
                return True
            self.kube.await_change(core.list_namespaced_event, ns, 1.0, "events")
            return any(" nodeAssigned " in e for e in self._events(meta, uid))

        try:
            return wait_for(
                f"[{ns}/{meta['name']}] announcement",
                announced,
                bool,
                max(0.0, deadline - clock.monotonic()),
                interval=0.0,
                retry_on=(client.ApiException,),
            )
        except WaitTimeout:
            return False

    def _in_pools(self, ip: str) -> bool:
        return any(_in_ranges(ip, p["addresses"]) for p in self.settings["pools"])

    def _remove_probe(self, svc: dict[str, Any]) -> None:
        meta = svc["metadata"]
        self.kube.delete("v1", "Service", meta["name"], meta["namespace"])
        self.ctx.forget("lb", "Service", f"{meta['namespace']}/{meta['name']}")
        backend = getattr(self, "_backend", None)
        if backend is not None:
            backend.close()


class Banner:
    """A TCP server that greets each connection; its greeting proves the path."""

    GREETING = b"meshstack-lb-probe\n"

    def __init__(self, host: str, timeout: float) -> None:
        self.timeout = timeout
        self.sock = socket.create_server((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.served = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.served += 1
                conn.sendall(self.GREETING)

    def await_probe(
        self, ip: str, port: int, deadline: float | None = None
    ) -> str | None:
        """The greeting read through ip:port, or None once the timeout is spent
        (or the ``deadline`` on the monotonic clock, when one is given)."""
        if deadline is None:
            deadline = clock.monotonic() + self.timeout
        while clock.monotonic() < deadline:
            try:
                with socket.create_connection((ip, port), timeout=2) as conn:
                    conn.settimeout(2)
                    data = conn.recv(64)
                if data == self.GREETING:
                    return data.decode().strip()
            except OSError as exc:
                log.debug("[lb-probe] %s:%s not answering yet: %s", ip, port, exc)
            clock.sleep(0.5)
        return None

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave
        # the socket listening until that accept returned
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def _in_ranges(ip: str, ranges: list[str]) -> bool:
    n = ipaddress.ip_address(ip)
    for r in ranges:
        if "/" in r and n in ipaddress.ip_network(r, strict=False):
            return True
        lo, _, hi = r.partition("-")
        first, last = (int(ipaddress.ip_address(x.strip())) for x in (lo, hi or lo))
        if first <= int(n) <= last:
            return True
    return False
