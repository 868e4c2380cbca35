"""The twin's container runtime: a pod's containers as processes on the node.

Each container runs ``<python> -m <module> <image args> <container args>`` in its
own process group, with its output in
``<node dir>/pods/<ns>_<pod>_<uid>/<container>.log`` and its pid beside it (so that
``k3s-killall`` and a restarted kubelet stop exactly these processes). Ports: see
:func:`plan_ports`.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROXY_IMAGE = "cr.l5d.io/linkerd/proxy"
PROXY_ADMIN_PORT = 4191


class PortPool:
    """The node ports this node's pods listen on, handed out one owner at a time.

    They come from a range below the kernel's ephemeral ports (32768 and up by
    default), so no outgoing connection of the node can take a pod's port as its
    source port between the plan and the container's bind; a port stays taken
    until its pod stops, and each is checked free with a bind (on the node's
    address and on loopback, where a meshed app listens) before it is given. Each
    pool starts at a random place in the range, so that kubelets sharing one
    network namespace (as in the twin's own tests) rarely reach for the same port.
    """

    FIRST, LAST = 20000, 29999

    def __init__(self, host: str) -> None:
        self.host = host
        self._taken: set[int] = set()
        self._next = self.FIRST + random.randrange(self.LAST - self.FIRST + 1)
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            for _ in range(self.LAST - self.FIRST + 1):
                port, self._next = self._next, self._next + 1
                if self._next > self.LAST:
                    self._next = self.FIRST + random.randrange(
                        self.LAST - self.FIRST + 1
                    )
                if port not in self._taken and all(
                    _bindable(h, port) for h in (self.host, "127.0.0.1")
                ):
                    self._taken.add(port)
                    return port
        raise RuntimeError(
            f"no free pod port left on {self.host} in {self.FIRST}-{self.LAST}"
        )

    def give_back(self, ports: list[int]) -> None:
        with self._lock:
            self._taken.difference_update(ports)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def is_proxy(container: dict[str, Any]) -> bool:
    return container.get("name") == "linkerd-proxy" or str(
        container.get("image", "")
    ).startswith(PROXY_IMAGE)


@dataclass
class PortPlan:
    """Where each container listens, and what the pod publishes for each port."""

    listen: dict[str, dict[int, int]] = field(
        default_factory=dict
    )  # container -> {cport: port}
    published: dict[int, int] = field(
        default_factory=dict
    )  # cport -> port clients dial
    inbound: list[tuple[int, int]] = field(default_factory=list)  # proxy (listen, app)
    admin_port: int | None = None
    pooled: list[int] = field(default_factory=list)  # given back when the pod stops

    def taking_from(self, pool: PortPool) -> Callable[[], int]:
        def take() -> int:
            port = pool.take()
            self.pooled.append(port)
            return port

        return take


def plan_ports(spec: dict[str, Any], pool: PortPool) -> PortPlan:
    """Pick node ports for a pod's containerPorts.

    A hostPort is used as is. Other ports get a free port on the node. In a meshed
    pod (one with Linkerd's proxy container) each app port P gets two: the app
    listens on one (loopback), the proxy on the other, and the proxy's is what the
    pod publishes for P, as iptables makes the proxy the front of a real pod.
    """
    plan = PortPlan()
    free_port = plan.taking_from(pool)
    meshed = any(is_proxy(c) for c in spec.get("containers") or [])
    for c in spec.get("containers") or []:
        ports = plan.listen.setdefault(c["name"], {})
        for p in c.get("ports") or []:
            cport = int(p["containerPort"])
            ports[cport] = int(p.get("hostPort") or free_port())
            if meshed and not is_proxy(c) and not p.get("hostPort"):
                front = free_port()
                plan.inbound.append((front, ports[cport]))
                plan.published[cport] = front
            else:
                plan.published[cport] = ports[cport]
        if is_proxy(c):
            plan.admin_port = ports.get(PROXY_ADMIN_PORT) or free_port()
            ports[PROXY_ADMIN_PORT] = plan.admin_port
            plan.published[PROXY_ADMIN_PORT] = plan.admin_port
    return plan


@dataclass
class Container:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    pid_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: str = ""
    last_exit: int | None = None
    last_finished_at: str = ""
    next_start: float = 0.0
    exit_seen_pid: int = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        log.debug("start %s: %s", self.name, " ".join(self.argv))
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.log_path.parent,
            start_new_session=True,
        )
        out.close()
        self.pid_path.write_text(str(self.proc.pid))
        self.started_at = _now()

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace: float) -> None:
        if self.proc is None:
            return
        stop_group(self.proc.pid, grace)
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            log.warning(
                "container %s (pid %d) outlived SIGKILL", self.name, self.proc.pid
            )
        self.pid_path.unlink(missing_ok=True)


def stop_group(pid: int, grace: float) -> None:
    """SIGTERM the process group of ``pid``, then SIGKILL after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _gone(pid):
                return
            time.sleep(0.05)


def _gone(pid: int) -> bool:
    """The process has ended (reaped here if it is our child, or a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def kill_recorded(pods_dir: Path, grace: float = 2.0) -> int:
    """Stop every container process whose pid file lies under ``pods_dir``."""
    stopped = 0
    for pid_file in pods_dir.glob("*/*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            continue
        if _is_container(pid, pods_dir):
            stop_group(pid, grace)
            stopped += 1
        pid_file.unlink(missing_ok=True)
    return stopped


def _is_container(pid: int, pods_dir: Path) -> bool:
    """The pid still belongs to a container of this node (its cwd is a pod dir)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(pods_dir.resolve())
    except OSError:
        return False


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
