"""What every demo service shares: its port, its HTTP server, its upstream client.

The demo services are ordinary threaded HTTP/1.1 servers (keep-alive on, so a load
generator and the proxies in front of them reuse connections). Each one learns the
port it should listen on the way a pod's container does in the local stack: it is
told its *container* port (``WEB_PORT``, ``GRPC_PORT`` ... as the real images are),
and the kubelet maps that to a host port through ``MESHSTACK_PORT_<containerPort>``.
Outside the stack (a developer's shell, a self-test) the container port is used as is.

Each request is logged as one access line on stdout, in the common log format with
the time the handler took appended, so a pod's log reads like a web server's.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)
access = logging.getLogger("meshstack.demoapps.access")

# Seconds an upstream call may take before the caller answers 5xx.
UPSTREAM_TIMEOUT = 5.0


def listen_port(port_env: str, default: int) -> int:
    """The host port to listen on for the container port named by ``port_env``."""
    container_port = int(os.environ.get(port_env, default))
    return int(os.environ.get(f"MESHSTACK_PORT_{container_port}", container_port))


def bind_address() -> str:
    """Where to listen: ``MESHSTACK_BIND_ADDRESS``, else every address of the pod."""
    return os.environ.get("MESHSTACK_BIND_ADDRESS", "0.0.0.0")


class Handler(BaseHTTPRequestHandler):
    """A keep-alive request handler with JSON helpers and one access line each."""

    # Headers and body go out in separate writes: without this, Nagle and the
    # peer's delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "meshstack-demo/1"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 30

    def send_body(
        self, status: int, body: bytes, content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        self._size = len(body)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any) -> None:
        self.send_body(status, json.dumps(obj).encode())

    def read_json(self) -> Any:
        """The request's JSON body; an empty body reads as ``{}``."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def handle_one_request(self) -> None:
        self._started = time.perf_counter()
        self._code: int | str | None = None
        self._size = 0
        super().handle_one_request()
        if self._code is not None:
            self._access_line()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Called as the status line is sent: remember it, log once the body is out.
        self._code = code

    def _access_line(self) -> None:
        took = time.perf_counter() - self._started
        access.info(
            '%s - - [%s] "%s" %s %d %.1fms',
            self.client_address[0],
            self.log_date_time_string(),
            self.requestline,
            self._code,
            self._size,
            took * 1000,
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.warning("%s: %s", self.client_address[0], format % args)


class Upstream:
    """A keep-alive HTTP client for one ``host:port``, one connection per thread."""

    def __init__(self, hostport: str, timeout: float = UPSTREAM_TIMEOUT) -> None:
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                f"upstream address {hostport!r} is not host:port; set it like "
                "'emoji-svc.emojivoto:8080'"
            )
        self.host, self.port, self.timeout = host, int(port), timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
            self._local.conn = conn
        return conn

    def call(self, path: str, payload: Any = None) -> tuple[int, Any]:
        """POST JSON to ``path``; the status and the decoded JSON answer.

        A kept-alive connection the server already closed is retried once on a
        fresh one; any other failure raises ``OSError``.
        """
        body = json.dumps(payload or {}).encode()
        headers = {
            "Content-Type": "application/json",
            "Host": f"{self.host}:{self.port}",
        }
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, (json.loads(data) if data else None)
            except (http.client.HTTPException, ConnectionError) as exc:
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise OSError(f"{self.host}:{self.port}{path}: {exc}") from exc
        raise AssertionError("unreachable")


def serve(handler: type[Handler], port: int, name: str) -> None:
    """Serve until SIGTERM or SIGINT, then close the socket and return."""
    logging.basicConfig(
        level=os.environ.get("MESHSTACK_LOG_LEVEL", "INFO"),
        stream=sys.stdout,
        format="%(message)s",
    )
    server = ThreadingHTTPServer((bind_address(), port), handler)
    server.daemon_threads = True

    def _stop(signum: int, _frame: object) -> None:
        log.info("[%s] signal %d: shutting down", name, signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("[%s] listening on %s:%d", name, bind_address(), server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
