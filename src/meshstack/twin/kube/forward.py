"""A TCP forwarder: the data path of the userspace kube-proxy and of klipper-lb."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Backends = Callable[[], list[tuple[str, int]]]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (dst,):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def relay(conn: socket.socket, up: socket.socket) -> None:
    """Copy bytes both ways until each side has finished sending, then close both.

    Each direction half-closes its destination when its source ends, so a client
    that shuts its write side still reads the whole answer.
    """
    up.settimeout(None)
    # A relay must not hold small writes back (Nagle): ~40 ms a request.
    for s in (conn, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = threading.Thread(target=_pump, args=(conn, up), daemon=True)
    t.start()
    _pump(up, conn)
    t.join(timeout=60)
    conn.close()
    up.close()


class Forwarder:
    """Listens on ``host:port``; each connection goes to the next backend."""

    def __init__(
        self, host: str, port: int, backends: Backends, connect_timeout: float = 3.0
    ) -> None:
        self.host, self.port = host, port
        self.backends = backends
        self.connect_timeout = connect_timeout
        self._rr = itertools.count()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self._stopped = False

    def start(self) -> Forwarder:
        threading.Thread(
            target=self._accept, daemon=True, name=f"fwd-{self.host}:{self.port}"
        ).start()
        return self

    def stop(self) -> None:
        self._stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        backends = self.backends()
        if not backends:
            log.debug("%s:%d: no endpoints; closing", self.host, self.port)
            conn.close()
            return
        target = backends[next(self._rr) % len(backends)]
        try:
            up = socket.create_connection(target, timeout=self.connect_timeout)
        except OSError as exc:
            log.debug("%s:%d -> %s:%d failed: %s", self.host, self.port, *target, exc)
            conn.close()
            return
        relay(conn, up)
