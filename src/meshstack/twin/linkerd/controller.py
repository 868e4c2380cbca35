"""``python -m meshstack.twin.linkerd.controller <component>``: a control-plane process.

The twin kubelet runs this for the images ``cr.l5d.io/linkerd/controller`` (with the
component as the container's first argument: identity, destination,
proxy-injector) and the viz images (metrics-api, tap, web). Every component serves
its admin port (``/ready``, ``/ping``, ``/metrics``) on the host port the kubelet
mapped (``MESHSTACK_PORT_<containerPort>``) and accepts connections on its other
ports. The proxy injector also serves its mutating webhook over TLS with the
serving certificate ``linkerd install`` put in ``linkerd-proxy-injector-k8s-tls``.

Twin simplifications: identity signs no certificates (the twin proxy needs none) but
is ready only once the issuer Secret is readable and in its validity period; the
destination service answers no gRPC; the injector reads its certificate through the
API instead of a mounted volume.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from meshstack.twin.linkerd import certs
from meshstack.twin.linkerd.injector import Injector, logline
from meshstack.twin.linkerd.kube import Kube, connect
from meshstack.twin.linkerd.manifests import COMPONENTS, VIZ_COMPONENTS

ALL = {**COMPONENTS, **VIZ_COMPONENTS}
# Pods listen on every address of their (node's) namespace, as real pods do;
# self-tests that run this in the host namespace narrow it to loopback.
BIND = os.environ.get("MESHSTACK_BIND_ADDRESS", "0.0.0.0")


def host_port(container_port: int) -> int:
    return int(os.environ.get(f"MESHSTACK_PORT_{container_port}", container_port))


def say(line: str) -> None:
    print(line, flush=True)


class _Admin(BaseHTTPRequestHandler):
    ready: threading.Event = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/ready"):
            ok = self.ready.is_set()
            self._send(200 if ok else 503, "ready\n" if ok else "not ready\n")
        elif self.path.startswith(("/ping", "/live")):
            self._send(200, "pong\n")
        elif self.path.startswith("/metrics"):
            self._send(200, f"process_start_time_seconds {START}\n")
        else:
            self._send(404, "not found\n")

    def _send(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


START = int(dt.datetime.now(dt.UTC).timestamp())


def _listen_plain(port: int) -> None:
    """Accept and close connections: enough for TCP probes of a gRPC port."""
    sock = socket.create_server((BIND, host_port(port)), reuse_port=False)

    def loop() -> None:
        while True:
            conn, _ = sock.accept()
            conn.close()

    threading.Thread(target=loop, daemon=True).start()


class _Webhook(BaseHTTPRequestHandler):
    injector: Injector

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            answer = self.injector.review(body)
            code = 200
        except Exception as exc:  # answer the API server rather than hang up
            say(logline("error", f"failed to process admission review: {exc}"))
            answer, code = {"error": str(exc)}, 500
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


def _serving_context(kube: Kube) -> ssl.SSLContext:
    secret = kube.core.read_namespaced_secret(
        "linkerd-proxy-injector-k8s-tls", "linkerd"
    )
    data = secret.data or {}
    tmp = tempfile.mkdtemp(prefix="l5d-injector-")
    crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    for path, field in ((crt, "tls.crt"), (key, "tls.key")):
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data[field]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


def _serve_injector(kube: Kube) -> None:
    version = os.environ.get("MESHSTACK_IMAGE_TAG", "unknown")
    _Webhook.injector = Injector(kube, version, emit=say)
    server = ThreadingHTTPServer((BIND, host_port(8443)), _Webhook)
    server.socket = _serving_context(kube).wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _issuer_usable(kube: Kube) -> bool:
    secret = kube.core.read_namespaced_secret("linkerd-identity-issuer", "linkerd")
    start, end = certs.validity(base64.b64decode(secret.data["crt.pem"]).decode())
    now = dt.datetime.now(dt.UTC)
    return start <= now <= end


def run(component: str) -> int:
    if component not in ALL:
        say(logline("fatal", f"unknown component {component!r}"))
        return 2
    ports, admin = ALL[component]
    admin_server = ThreadingHTTPServer((BIND, host_port(admin)), _Admin)
    threading.Thread(target=admin_server.serve_forever, daemon=True).start()
    for port in ports.values():
        if port not in (admin, 8443):
            _listen_plain(port)
    kube = connect(os.environ.get("MESHSTACK_KUBECONFIG"))
    if component == "proxy-injector":
        _serve_injector(kube)
    if component == "identity" and not _issuer_usable(kube):
        say(logline("error", "issuer certificate is not valid now; not ready"))
    else:
        _Admin.ready.set()
    say(logline("info", f"{component} ready on admin port {host_port(admin)}"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else ""))
