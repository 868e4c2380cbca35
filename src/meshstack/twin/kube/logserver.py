"""The kubelet's log endpoint, which the API server reads for ``pods/log``.

``GET /containerLogs/<ns>/<pod>/<container>?tailLines=N`` on the node's address
and the port the Node publishes in ``status.daemonEndpoints``.
# TODO: plain HTTP without authentication, where a real kubelet serves HTTPS and
# checks the API server's client certificate.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class LogServer:
    def __init__(self, host: str, port: int, kubelet: Any) -> None:
        self.host, self.kubelet = host, kubelet
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                code, body = outer.answer(self.path)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer((host, port), H)
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        threading.Thread(
            target=self.httpd.serve_forever, daemon=True, name="kubelet-logs"
        ).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str) -> tuple[int, bytes]:
        url = urllib.parse.urlsplit(path)
        parts = url.path.strip("/").split("/")
        if len(parts) not in (3, 4) or parts[0] != "containerLogs":
            return 404, b"not found"
        ns, pod = parts[1], parts[2]
        with self.kubelet.lock:
            run = next(
                (r for r in self.kubelet.runs.values() if (r.ns, r.name) == (ns, pod)),
                None,
            )
        if run is None:
            return 404, f'pod "{pod}" is not running on this node'.encode()
        names = [c["name"] for c in run.pod["spec"].get("containers") or []]
        name = (
            parts[3]
            if len(parts) == 4 and parts[3]
            else (names[0] if len(names) == 1 else "")
        )
        if name not in run.containers:
            choices = " ".join(names)
            return (
                400,
                (
                    f"a container name must be specified for pod {pod}, "
                    f"choose one of: [{choices}]"
                ).encode(),
            )
        data = (
            run.containers[name].log_path.read_bytes()
            if run.containers[name].log_path.exists()
            else b""
        )
        q = dict(urllib.parse.parse_qsl(url.query))
        if q.get("tailLines"):
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-int(q["tailLines"]) :])
        return 200, data


def fetch_log(node: dict[str, Any], ns: str, pod: str, query: dict[str, str]) -> bytes:
    """Read a container's log from the kubelet of ``node`` (the API server's side)."""
    import urllib.request

    from meshstack.twin.kube.errors import ApiError

    ip = next(
        (
            a["address"]
            for a in node.get("status", {}).get("addresses") or []
            if a["type"] == "InternalIP"
        ),
        None,
    )
    port = (
        (node.get("status", {}).get("daemonEndpoints") or {}).get("kubeletEndpoint")
        or {}
    ).get("Port")
    if not ip or not port:
        raise ApiError(
            "InternalError",
            f"node {node['metadata']['name']} publishes no kubelet endpoint",
        )
    qs = {k: v for k, v in query.items() if k in ("tailLines", "container")}
    container = qs.pop("container", "")
    url = f"http://{ip}:{port}/containerLogs/{ns}/{pod}/{container}?{urllib.parse.urlencode(qs)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        raise ApiError("BadRequest", exc.read().decode(errors="replace")) from None
    except OSError as exc:
        raise ApiError("InternalError", f'Get "{url}": {exc}') from None
