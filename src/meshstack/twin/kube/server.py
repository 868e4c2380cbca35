"""The HTTP(S) front of the twin API server: routing, auth, JSON, chunked watches.

Paths follow kube-apiserver's: ``/api/v1[/namespaces/<ns>]/<plural>[/<name>[/<sub>]]``
and ``/apis/<group>/<version>/...``. Requests carry a bearer token (the admin
token of the kubeconfig, or a token the k3s join handed a node). Errors are
``Status`` objects with the reason and code a real server gives.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

from meshstack.twin.kube import discovery, errors
from meshstack.twin.kube.api import Api
from meshstack.twin.kube.errors import ApiError
from meshstack.twin.kube.resources import ResourceType

log = logging.getLogger(__name__)

# Core kinds whose DELETE answers with the deleted object rather than a Status, as
# the real API server's registries do (Service since Kubernetes 1.22); the official
# client's delete_* methods for them return that object's model.
RETURNS_DELETED = {
    "Pod",
    "Namespace",
    "Service",
    "ServiceAccount",
    "PersistentVolume",
    "PersistentVolumeClaim",
}

WATCH_DEFAULT_TIMEOUT = 1800.0
Route = Callable[["Handler"], None]
LogSource = Callable[[str, str, dict[str, str]], bytes]


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        tokens: set[str],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(address, Handler)
        self.api = api
        self.tokens = tokens
        self.tls = tls
        self.public_routes: dict[str, Route] = {}
        self.pod_logs: LogSource | None = None
        self.stopping = threading.Event()

    def finish_request(self, request: Any, client_address: Any) -> None:
        # the TLS handshake runs in the request's own thread, not in accept()
        if self.tls is not None:
            try:
                request.settimeout(10)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        super().finish_request(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes; with Nagle on, a keep-alive client's
    # delayed ACK would hold every response back by ~40 ms
    disable_nagle_algorithm = True
    server: ApiHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.client_address[0], format % args)

    # -- plumbing ------------------------------------------------------------------
    def send_json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, code: int, data: bytes, ctype: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            if "yaml" in (self.headers.get("Content-Type") or ""):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(
                f"the request body is not valid JSON: {exc}"
            ) from None

    @property
    def url(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.path)

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.url.query, keep_blank_values=True))

    def authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:].strip() in self.server.tokens

    def do_GET(self) -> None:  # noqa: N802
        self.dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self.dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self.dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        started = time.monotonic()
        try:
            route = self.server.public_routes.get(self.url.path)
            if route is not None:
                route(self)
            elif not self.authorized():
                raise ApiError("Unauthorized", "Unauthorized")
            else:
                self.route(method)
        except ApiError as exc:
            self.send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # the server answers 500, as kube-apiserver would
            log.exception("%s %s failed", method, self.path)
            self.send_json(
                500, ApiError("InternalError", f"internal error: {exc}").status()
            )
        log.debug(
            "%s %s %.1f ms", method, self.path, (time.monotonic() - started) * 1e3
        )

    # -- routing -------------------------------------------------------------------
    def route(self, method: str) -> None:
        parts = [p for p in self.url.path.split("/") if p]
        reg = self.server.api.registry
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return self.send_text(200, b"ok")
        if parts == ["version"]:
            return self.send_json(200, discovery.VERSION)
        if parts == ["api"]:
            host, port = self.server.server_address[:2]
            addr = f"{host!s}:{port}"
            return self.send_json(200, discovery.core_versions(addr))
        if parts == ["apis"]:
            return self.send_json(200, discovery.group_list(reg))
        if parts[:1] == ["api"] and len(parts) >= 2:
            return self.resource_route(method, "", parts[1], parts[2:])
        if parts[:1] == ["apis"] and len(parts) == 2:
            doc = discovery.group(reg, parts[1])
            return self._discovery(doc)
        if parts[:1] == ["apis"] and len(parts) >= 3:
            return self.resource_route(method, parts[1], parts[2], parts[3:])
        raise ApiError("NotFound", "the server could not find the requested resource")

    def _discovery(self, doc: dict[str, Any] | None) -> None:
        if doc is None:
            raise ApiError(
                "NotFound", "the server could not find the requested resource"
            )
        self.send_json(200, doc)

    def resource_route(
        self, method: str, group: str, version: str, rest: list[str]
    ) -> None:
        reg = self.server.api.registry
        if not rest:
            return self._discovery(discovery.resource_list(reg, group, version))
        ns = ""
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and rest[2] not in ("status", "finalize")
        ):
            ns, rest = rest[1], rest[2:]
        rt = reg.find(group, version, rest[0])
        if rt is None or (ns and not rt.namespaced):
            raise ApiError(
                "NotFound", "the server could not find the requested resource"
            )
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in rt.subresources and sub != "finalize":
            raise ApiError(
                "NotFound", "the server could not find the requested resource"
            )
        self.verb(method, rt, ns, name, sub)

    def verb(self, method: str, rt: ResourceType, ns: str, name: str, sub: str) -> None:
        api, q = self.server.api, self.query
        if method == "GET" and sub == "log":
            return self.pod_log(ns, name)
        if method == "GET" and not name:
            if q.get("watch") in ("true", "1"):
                return self.watch(rt, ns or None)
            listed = api.list(
                rt, ns or None, q.get("labelSelector", ""), q.get("fieldSelector", "")
            )
            return self.send_json(200, listed)
        if method == "GET":
            return self.send_json(200, api.get(rt, ns, name))
        if method == "POST" and not name:
            return self.send_json(201, api.create(rt, ns, self.read_body() or {}))
        if method == "PUT" and name:
            sub = "status" if sub == "finalize" else sub
            return self.send_json(
                200, api.update(rt, ns, name, self.read_body() or {}, sub)
            )
        if method == "PATCH" and name:
            ctype = self.headers.get("Content-Type", "application/merge-patch+json")
            return self.send_json(
                200, api.patch(rt, ns, name, self.read_body(), ctype, sub)
            )
        if method == "DELETE":
            return self.delete(rt, ns, name)
        raise ApiError("MethodNotAllowed", f"{method} is not supported here")

    def delete(self, rt: ResourceType, ns: str, name: str) -> None:
        api, q = self.server.api, self.query
        opts = self.read_body() or {}
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        if not name:
            listed = api.delete_collection(
                rt, ns or None, q.get("labelSelector", ""), q.get("fieldSelector", "")
            )
            return self.send_json(200, listed)
        obj = api.delete(rt, ns, name, opts)
        if rt.kind in RETURNS_DELETED or obj["metadata"].get("deletionTimestamp"):
            return self.send_json(200, obj)
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": obj["metadata"]["uid"],
            },
        }
        self.send_json(200, status)

    def watch(self, rt: ResourceType, ns: str | None) -> None:
        api, q = self.server.api, self.query
        try:
            w = api.watch(
                rt,
                ns,
                q.get("resourceVersion"),
                q.get("labelSelector", ""),
                q.get("fieldSelector", ""),
            )
        except ApiError as exc:
            if exc.code != 410:
                raise
            # as kube-apiserver: a 200 stream whose one event is the 410 Status
            event = json.dumps({"type": "ERROR", "object": exc.status()}).encode()
            return self.send_text(200, event + b"\n", "application/json")
        timeout = float(q.get("timeoutSeconds") or WATCH_DEFAULT_TIMEOUT)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            self._pump(w, rt, deadline)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            api.store.unwatch(w)

    def _pump(self, w: Any, rt: ResourceType, deadline: float) -> None:
        import queue

        while not self.server.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                item = w.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if item is None:
                return
            etype, obj = item
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            line = json.dumps({"type": etype, "object": obj}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()

    def pod_log(self, ns: str, name: str) -> None:
        self.server.api.get(self.server.api.registry.find("", "v1", "pods"), ns, name)  # type: ignore[arg-type]
        source = self.server.pod_logs
        if source is None:
            raise ApiError("InternalError", "no kubelet log source is configured")
        self.send_text(200, source(ns, name, self.query))


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(server: ApiHTTPServer) -> threading.Thread:
    t = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.2},
        daemon=True,
        name="apiserver",
    )
    t.start()
    return t


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
