"""The local stack's working environment: its directory, its processes, its commands.

Every daemon the local stack starts is spawned through :class:`LocalEnv`, which
writes its pid to ``<root>/pids/<name>.pid`` and its output to
``<root>/logs/<name>.log``. Stopping a daemon ends exactly the recorded process
(and its process group), never anything found by name.
"""

from __future__ import annotations

import errno
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class LocalStackError(Exception):
    """A local-stack step failed; the message says what and what to do."""


def namespace_pids(netns: str) -> list[int]:
    """The processes running in network namespace ``netns`` (none if it is gone)."""
    res = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=10
    )
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def end_namespace_processes(netns: str, timeout: float = 5.0) -> list[int]:
    """End every process in a namespace: SIGTERM, then SIGKILL, each given
    ``timeout`` seconds to take effect. Returns the pids that survived both.

    Deleting a namespace does not end the processes in it; this does.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in namespace_pids(netns):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while namespace_pids(netns) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not namespace_pids(netns):
            return []
        log.warning("[%s] processes survived %s", netns, sig.name)
    return namespace_pids(netns)


def port_taken(host: str, port: int) -> bool:
    """Something else listens on (or holds) ``host:port``.

    An address this machine does not have yet (a bridge not made) is not taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


@dataclass
class LocalEnv:
    root: Path
    python: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    # -- paths -------------------------------------------------------------------
    def path(self, *parts: str) -> Path:
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def log(self, name: str) -> Path:
        return self.path("logs", f"{name}.log")

    def pidfile(self, name: str) -> Path:
        return self.path("pids", f"{name}.pid")

    # -- processes ---------------------------------------------------------------
    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        netns: str | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a daemon in its own process group and record its pid."""
        if self.running(name):
            raise LocalStackError(
                f"{name} is already running (pid {self.pid(name)}); "
                "stop it with `meshstack local down` first"
            )
        full = list(argv)
        if user:
            full = ["runuser", "-u", user, "--", *full]
        if netns:
            full = ["ip", "netns", "exec", netns, *full]
        log.debug("spawn %s: %s", name, shlex.join(full))
        out = open(self.log(name), "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        out.close()
        self.pidfile(name).write_text(f"{proc.pid}\n{_start_time(proc.pid)}\n")
        return proc

    def pid(self, name: str) -> int | None:
        """The recorded pid, if that very process (same start time) still exists."""
        try:
            lines = self.pidfile(name).read_text().split()
            pid = int(lines[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        # A pid can be reused once our process is gone: never signal a stranger.
        if len(lines) > 1 and _start_time(pid) not in (lines[1], ""):
            return None
        return pid

    def running(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and _alive(pid)

    def kill(self, name: str, timeout: float = 10.0) -> bool:
        """End the recorded process group: SIGTERM, then SIGKILL after timeout.

        Returns True if something was running.
        """
        pid = self.pid(name)
        if pid is None:
            return False
        was_running = _alive(pid)
        if was_running:
            log.info("[%s] stopping pid %d", name, pid)
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                log.warning(
                    "[%s] pid %d ignored SIGTERM for %.0fs: SIGKILL", name, pid, timeout
                )
                _signal_group(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        self.pidfile(name).unlink(missing_ok=True)
        return was_running

    def recorded(self) -> list[str]:
        d = self.root / "pids"
        return sorted(p.stem for p in d.glob("*.pid")) if d.is_dir() else []

    # -- commands ----------------------------------------------------------------
    def run(
        self,
        argv: Sequence[str],
        timeout: float = 60.0,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command with a timeout; raise with its output on failure."""
        log.debug("run: %s", shlex.join(argv))
        try:
            res = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                env={**os.environ, **(env or {})},
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(
                f"`{shlex.join(argv)}` did not finish within {timeout:.0f}s"
            ) from exc
        if check and res.returncode != 0:
            raise LocalStackError(
                f"`{shlex.join(argv)}` exited {res.returncode}\n"
                f"stdout: {res.stdout[-4000:]}\nstderr: {res.stderr[-4000:]}"
            )
        return res


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone once reaped.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot, '' if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return ""


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
