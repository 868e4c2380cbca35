"""Stand-ins for k3s's system images, run by the twin kubelet as processes.

``python -m meshstack.twin.kube.sysimages <component>``:

- ``coredns``: the health (/health) and readiness (/ready) endpoints on the
  mapped container ports 8080 and 8181. # TODO: no DNS is served; the twin has
  no cluster DNS (the kubelet rewrites service names in env values instead).
- ``metrics-server``: /readyz and /livez on its mapped port (10250).
- ``local-path-provisioner``, ``pause``: run until stopped.
- ``traefik``: answers 404 on its web (8000) and websecure (8443) ports.
- ``klipper-lb``: for each ``lb-*`` container, listens on the hostPort
  (``MESHSTACK_PORT_<SRC_PORT>``) and forwards TCP to ``DEST_IPS:DEST_PORT``.
- ``echo``: on every mapped port, answers 200 with its pod and node names.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from meshstack.twin.kube.forward import Forwarder

log = logging.getLogger("meshstack.twin.kube.sysimages")


def _ports() -> dict[int, int]:
    out = {}
    for key, value in os.environ.items():
        if key.startswith("MESHSTACK_PORT_"):
            out[int(key.removeprefix("MESHSTACK_PORT_"))] = int(value)
    return out


def _http(port: int, answer: Callable[[str], tuple[int, dict[str, object]]]) -> None:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            code, body = answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(
        (os.environ.get("MESHSTACK_BIND_ADDRESS", "0.0.0.0"), port), H
    )
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log.info("listening on :%d", port)


def _ok(path: str) -> tuple[int, dict[str, object]]:
    return 200, {"status": "ok", "path": path}


def _echo(path: str) -> tuple[int, dict[str, object]]:
    return 200, {
        "pod": os.environ.get("MESHSTACK_POD_NAME"),
        "namespace": os.environ.get("MESHSTACK_POD_NAMESPACE"),
        "node": os.environ.get("MESHSTACK_NODE_NAME"),
        "path": path,
    }


def _not_found(path: str) -> tuple[int, dict[str, object]]:
    return 404, {"message": "404 page not found"}


def _serve_all(answer: Callable[[str], tuple[int, dict[str, object]]]) -> None:
    for port in _ports().values():
        _http(port, answer)


def _klipper() -> None:
    dest_ips = [ip for ip in os.environ.get("DEST_IPS", "").split() if ip]
    src, dest = int(os.environ["SRC_PORT"]), int(os.environ["DEST_PORT"])
    listen = _ports().get(src, src)
    if not dest_ips:
        raise SystemExit("klipper-lb: DEST_IPS is empty: nothing to forward to")
    # a hostPort is held on the node's address (each node is its own namespace)
    host = os.environ.get("MESHSTACK_POD_IP", "0.0.0.0")
    Forwarder(host, listen, lambda: [(dest_ips[0], dest)]).start()
    log.info("forwarding :%d -> %s:%d", listen, dest_ips[0], dest)


COMPONENTS: dict[str, Callable[[], None]] = {
    "coredns": lambda: _serve_all(_ok),
    "metrics-server": lambda: _serve_all(_ok),
    "traefik": lambda: _serve_all(_not_found),
    "echo": lambda: _serve_all(_echo),
    "klipper-lb": _klipper,
    "local-path-provisioner": lambda: None,
    "pause": lambda: None,
}


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    if not argv or argv[0] not in COMPONENTS:
        print(
            f"usage: sysimages {{{','.join(COMPONENTS)}}}; got {argv!r}",
            file=sys.stderr,
        )
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    COMPONENTS[argv[0]]()
    stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
