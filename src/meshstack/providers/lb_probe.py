"""The lb probe's backend: a greeting TCP server on the harness host.

The lb check points a probe LoadBalancer Service at this server; reading its greeting
through the Service's address proves the whole path (announcement, forwarding,
backend) rather than only that an address was written into the Service's status.
"""

from __future__ import annotations

import logging
import socket
import threading

from meshstack import clock

log = logging.getLogger(__name__)


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
