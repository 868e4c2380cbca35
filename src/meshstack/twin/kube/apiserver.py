"""One running twin API server: store, registry, semantics, HTTPS front, bootstrap.

:class:`ApiServer` is what both the k3s server entry point and the self-tests
start. It bootstraps what every cluster has before anyone writes to it: the
namespaces default/kube-system/kube-public/kube-node-lease, their ``default``
ServiceAccounts, and the ``kubernetes`` Service whose Endpoints name the
address the API is advertised on.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshstack.twin.kube import kubeconfig, tls
from meshstack.twin.kube.admission import Admission
from meshstack.twin.kube.api import CORE_NS, Api
from meshstack.twin.kube.controllers import ControllerOptions, start_all
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.resources import Registry
from meshstack.twin.kube.server import ApiHTTPServer, serve, tls_context
from meshstack.twin.kube.store import Store

log = logging.getLogger(__name__)


@dataclass
class ApiServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = "127.0.0.1"
    service_cidr: str = "10.43.0.0/16"
    tls_sans: list[str] = field(default_factory=list)
    persist: bool = True
    watch_history: int = 5000  # changes a watch may resume across
    controllers: ControllerOptions | None = field(default_factory=ControllerOptions)


class ApiServer:
    def __init__(self, cfg: ApiServerConfig) -> None:
        self.cfg = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        snapshot = cfg.data_dir / "state.json" if cfg.persist else None
        self.store = Store(snapshot, cfg.watch_history)
        self.registry = Registry()
        self.api = Api(self.store, self.registry, cfg.service_cidr)
        self.api.admit = Admission(self.api)
        self.admin_token = self._admin_token()
        self.tokens: set[str] = {self.admin_token}
        self.tls_dir = cfg.data_dir / "tls"
        self._server: ApiHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self._restore()

    def _admin_token(self) -> str:
        path = self.cfg.data_dir / "admin.token"
        if not path.exists():
            kubeconfig.write(path, secrets.token_hex(24))
        return path.read_text(encoding="utf-8").strip()

    def _restore(self) -> None:
        """Re-register the CRDs and addresses a snapshot holds."""
        crds = self.registry.find(
            "apiextensions.k8s.io", "v1", "customresourcedefinitions"
        )
        assert crds is not None
        for crd in self.store.list(crds.key)[0]:
            self.registry.register_crd(crd)
        for svc in self.store.list(("", "services"))[0]:
            spec = svc.get("spec", {})
            if spec.get("clusterIP") not in (None, "", "None"):
                self.api.alloc.take_ip(spec["clusterIP"])
            for p in spec.get("ports", []):
                if p.get("nodePort"):
                    self.api.alloc.take_port(p["nodePort"])

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"https://{self.cfg.advertise_address}:{self._server.server_address[1]}"

    @property
    def ca_pem(self) -> bytes:
        return (self.tls_dir / "server-ca.crt").read_bytes()

    def kubeconfig(self, server_url: str | None = None) -> str:
        return kubeconfig.render(server_url or self.url, self.ca_pem, self.admin_token)

    def start(self) -> None:
        sans = [
            self.cfg.advertise_address,
            self.cfg.bind_address,
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            self.api.alloc.kubernetes_ip(),
            *self.cfg.tls_sans,
        ]
        crt, key = tls.issue_serving(self.tls_dir, [s for s in sans if s != "0.0.0.0"])
        self._server = ApiHTTPServer(
            (self.cfg.bind_address, self.cfg.port),
            self.api,
            self.tokens,
            tls_context(str(crt), str(key)),
        )
        self._threads.append(serve(self._server))
        self.bootstrap()
        if self.cfg.controllers is not None:
            start_all(self.api, self.stopping, self.cfg.controllers)
        log.info("API server listening on %s", self.url)

    @property
    def http(self) -> ApiHTTPServer:
        assert self._server is not None
        return self._server

    def bootstrap(self) -> None:
        for ns in CORE_NS:
            self._ensure("v1", "Namespace", {"metadata": {"name": ns}})
            self._ensure(
                "v1",
                "ServiceAccount",
                {"metadata": {"name": "default", "namespace": ns}},
            )
        port = self.http.server_address[1]
        self._ensure(
            "v1",
            "Service",
            {
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"},
                },
                "spec": {
                    "clusterIP": self.api.alloc.kubernetes_ip(),
                    "ports": [
                        {
                            "name": "https",
                            "port": 443,
                            "targetPort": port,
                            "protocol": "TCP",
                        }
                    ],
                },
            },
        )
        endpoints = {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": self.cfg.advertise_address}],
                    "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                }
            ],
        }
        self.api.apply(self.api.resource("v1", "Endpoints"), endpoints)

    def _ensure(self, api_version: str, kind: str, obj: dict[str, Any]) -> None:
        rt = self.api.resource(api_version, kind)
        try:
            self.api.create(rt, obj["metadata"].get("namespace", ""), obj)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.stopping.set()
            self.store.close_watchers()
            self._server.shutdown()
            self._server.server_close()
        self.store.save()
        log.info("API server stopped")
