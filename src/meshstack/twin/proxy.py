"""A twin of Linkerd's data-plane proxy: forwards inbound HTTP, counts it, exports it.

The local stack cannot run linkerd2-proxy, so the twin kubelet runs this in its place
for every pod the proxy injector meshed (image ``cr.l5d.io/linkerd/proxy``). It
learns from the kubelet:

* ``MESHSTACK_INBOUND="<listen>:<app>,..."``: for each of the app's container ports,
  the port the proxy listens on (the one published in Endpoints) and the app's own
  port on ``MESHSTACK_APP_ADDRESS`` (default 127.0.0.1, the pod's loopback);
* ``MESHSTACK_ADMIN_PORT``: Linkerd's admin port (4191 in a real pod), serving
  ``/metrics``, ``/ready`` and ``/live``.

It is a plain HTTP/1.1 reverse proxy (keep-alive on both sides, one upstream
connection per thread), and exports what Linkerd's proxy exports for inbound HTTP,
with the same metric names, label names and histogram bounds:

* ``request_total`` and ``response_total`` (``status_code``, ``classification``
  ``success|failure``: a 5xx answer or no answer at all is a failure, as Linkerd's
  default classifier has it), ``response_latency_ms_bucket/_sum/_count``, each with
  ``direction="inbound"``, ``authority``, ``target_addr`` and ``tls``;
* the per-route families ``route_request_total``, ``route_response_total`` and
  ``route_response_latency_ms_*`` with ``dst`` and ``rt_route``.

Twin simplifications, by design:

* ``namespace``, ``pod`` and ``deployment`` are not exported by the proxy: Prometheus
  attaches them from the scrape target's labels (the kubelet's file_sd target), as
  Linkerd's own Prometheus does from pod metadata.
* A real proxy names routes from a ServiceProfile. This one names each route
  ``"<METHOD> <path>[?<query>]"`` from the request target itself (at most
  ``MESHSTACK_PROXY_MAX_ROUTES`` distinct, default 512; later ones count under
  ``rt_route="overflow"``), so a declared failure class such as emojivoto's votes for
  :poop: (``GET /api/vote?choice=:poop:`` at ``web``, ``POST
  /emojivoto.v1.VotingService/VotePoop`` at ``voting``) is its own series and an
  objective can exclude it by label.
* No mTLS: ``tls="no_identity"`` on every series.

# TODO: no outbound side: a real proxy also counts what its app sends
# (``direction="outbound"``, per destination). Here web's calls to emoji and voting
# are counted only by their inbound proxies, so outbound/edge views have no data.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meshstack.twin.proxy_metrics import Registry

log = logging.getLogger(__name__)

# Headers that describe one hop, not the message: never forwarded.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    )
)
UPSTREAM_TIMEOUT = 30.0


@dataclass(frozen=True)
class Inbound:
    listen: int
    app: int


def parse_inbound(spec: str) -> list[Inbound]:
    """``"4143:8080,4144:8801"`` -> listeners; ValueError names the bad part."""
    out: list[Inbound] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        listen, sep, app = part.partition(":")
        if not sep or not listen.isdigit() or not app.isdigit():
            raise ValueError(
                f"MESHSTACK_INBOUND part {part!r} is not <listen port>:<app port> "
                f"(whole value {spec!r})"
            )
        out.append(Inbound(int(listen), int(app)))
    if not out:
        raise ValueError(f"MESHSTACK_INBOUND={spec!r} names no listener")
    return out


class ProxyHandler(BaseHTTPRequestHandler):
    """Forwards one inbound request to the app and records what happened."""

    # Headers and body go out in separate writes: without this, Nagle and the
    # peer's delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    timeout = 60
    registry: Registry
    app_host: str
    app_port: int

    def _forward(self) -> None:
        started = time.perf_counter()
        authority = self.headers.get("Host", "")
        route = self.registry.route_name(self.command, self.path)
        self.registry.request(authority, self.target_addr, route)
        try:
            body = self._read_body()
            status, headers, payload = self._upstream(body)
        except (OSError, http.client.HTTPException) as exc:
            log.warning(
                "[inbound :%d] %s %s: %s", self.app_port, self.command, self.path, exc
            )
            status, headers = 502, [("l5d-proxy-error", "connection to the app failed")]
            payload = b""
        self._answer(status, headers, payload)
        took_ms = (time.perf_counter() - started) * 1000
        self.registry.response(authority, self.target_addr, route, status, took_ms)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward

    @property
    def target_addr(self) -> str:
        return f"{self.app_host}:{self.app_port}"

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers are dropped
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            conn = _connection(self.app_host, self.app_port)
            try:
                conn.request(
                    self.command, self.path, body=body or None, headers=headers
                )
                resp = conn.getresponse()
                payload = resp.read()
                kept = [
                    (k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP
                ]
                return resp.status, kept, payload
            except (
                http.client.RemoteDisconnected,
                BrokenPipeError,
                ConnectionResetError,
                http.client.BadStatusLine,
            ):
                # A kept-alive connection the app closed meanwhile: once more, fresh.
                _drop_connection(self.app_host, self.app_port)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _answer(
        self, status: int, headers: list[tuple[str, str]], payload: bytes
    ) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the proxy keeps no access log; its metrics are the record

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.warning("[inbound :%d] %s", self.app_port, format % args)


_local = threading.local()


def _connection(host: str, port: int) -> http.client.HTTPConnection:
    conns: dict[tuple[str, int], http.client.HTTPConnection] = (
        _local.__dict__.setdefault("conns", {})
    )
    conn = conns.get((host, port))
    if conn is None:
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
        conns[(host, port)] = conn
    return conn


def _drop_connection(host: str, port: int) -> None:
    conn = _local.__dict__.get("conns", {}).pop((host, port), None)
    if conn is not None:
        conn.close()


class AdminHandler(BaseHTTPRequestHandler):
    """Linkerd's admin endpoints: /metrics, /ready, /live."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    registry: Registry

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, ctype = self.registry.expose().encode(), "text/plain; version=0.0.4"
        elif path in ("/ready", "/live"):
            body, ctype = path[1:].encode() + b"\n", "text/plain"
        else:
            body, ctype = b"not found\n", "text/plain"
        self.send_response(200 if path in ("/metrics", "/ready", "/live") else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.warning("[admin] %s", format % args)


def build_servers(
    inbound: list[Inbound], admin_port: int, registry: Registry, listen: str, app: str
) -> list[ThreadingHTTPServer]:
    """One server per inbound listener, then the admin server (not yet serving)."""
    servers: list[ThreadingHTTPServer] = []
    for ib in inbound:
        handler = type(
            f"Inbound{ib.listen}",
            (ProxyHandler,),
            {"registry": registry, "app_host": app, "app_port": ib.app},
        )
        servers.append(ThreadingHTTPServer((listen, ib.listen), handler))
    admin = type("Admin", (AdminHandler,), {"registry": registry})
    servers.append(ThreadingHTTPServer((listen, admin_port), admin))
    for server in servers:
        server.daemon_threads = True
    return servers


def run(servers: list[ThreadingHTTPServer]) -> None:
    """Serve every server on its own thread until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [
        threading.Thread(
            target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        for s in servers
    ]
    for t in threads:
        t.start()
    stop.wait()
    log.info("[proxy] shutting down %d listeners", len(servers))
    for s in servers:
        s.shutdown()
        s.server_close()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("MESHSTACK_LOG_LEVEL", "INFO"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        inbound = parse_inbound(os.environ.get("MESHSTACK_INBOUND", ""))
        admin_port = int(os.environ["MESHSTACK_ADMIN_PORT"])
    except (KeyError, ValueError) as exc:
        raise SystemExit(
            f"linkerd-proxy twin: bad environment ({exc}); expected "
            "MESHSTACK_INBOUND='<listen>:<app>,...' and MESHSTACK_ADMIN_PORT=<port>"
        ) from None
    registry = Registry(
        max_routes=int(os.environ.get("MESHSTACK_PROXY_MAX_ROUTES", 512))
    )
    listen = os.environ.get("MESHSTACK_PROXY_LISTEN_ADDRESS", "0.0.0.0")
    app = os.environ.get("MESHSTACK_APP_ADDRESS", "127.0.0.1")
    servers = build_servers(inbound, admin_port, registry, listen, app)
    log.info("[proxy] inbound %s, admin :%d", inbound, admin_port)
    run(servers)


if __name__ == "__main__":
    main()
