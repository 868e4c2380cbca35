"""Shared by the load and SLO provider self-tests: a context, a demo app, a proxy.

A plain module (not a conftest) so it cannot collide with other layers' helpers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from meshstack.providers.base import StackContext


def make_context(tmp_path: Path, profile_dir: Path | None = None) -> StackContext:
    """A context whose state lives in memory and whose bundle is under tmp_path."""
    base = profile_dir or tmp_path
    return StackContext(
        run_id="selftest",
        profile_path=base / "profile.yaml",
        workdir=tmp_path / "work",
        layers={},
        save=lambda: None,
        progress=lambda layer, step: None,
        secret=lambda spec, what: "",
        path=lambda p: (base / p).resolve(),
        bundle_dir=tmp_path / "bundle",
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def serving(
    module: str, env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m module`` on loopback until the block ends; stop it by pid."""
    full_env = {**os.environ, "MESHSTACK_BIND_ADDRESS": "127.0.0.1",
                "MESHSTACK_PROXY_LISTEN_ADDRESS": "127.0.0.1", **env}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", module], env=full_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_listening(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def webdemo_behind_proxy() -> Iterator[dict[str, int]]:
    """The web demo on loopback with the proxy twin in front; the three ports."""
    app, inbound, admin = free_port(), free_port(), free_port()
    proxy_env = {
        "MESHSTACK_INBOUND": f"{inbound}:{app}",
        "MESHSTACK_ADMIN_PORT": str(admin),
    }
    with (
        serving("meshstack.demoapps.webdemo", {"PORT": str(app)}, app),
        serving("meshstack.twin.proxy", proxy_env, admin),
    ):
        wait_listening(inbound)
        yield {"app": app, "inbound": inbound, "admin": admin}


@contextlib.contextmanager
def prometheus_running(root: Path) -> Iterator[dict[str, object]]:
    """The real Prometheus on a free loopback port, its state under ``root``."""
    from meshstack.local import prometheus
    from meshstack.local.env import LocalEnv

    env = LocalEnv(root)
    listen = f"127.0.0.1:{free_port()}"
    facts = prometheus.start(env, listen=listen, interval=1)
    try:
        yield {**facts, "env": env, "listen": listen}
    finally:
        prometheus.stop(env, listen=listen)


@contextlib.contextmanager
def emojivoto_behind_proxy() -> Iterator[dict[str, int]]:
    """emojivoto's three services on loopback, web behind the proxy twin."""
    emoji, voting, web, inbound, admin = (free_port() for _ in range(5))
    web_env = {
        "WEB_PORT": str(web),
        "EMOJISVC_HOST": f"127.0.0.1:{emoji}",
        "VOTINGSVC_HOST": f"127.0.0.1:{voting}",
    }
    proxy_env = {
        "MESHSTACK_INBOUND": f"{inbound}:{web}",
        "MESHSTACK_ADMIN_PORT": str(admin),
    }
    with (
        serving("meshstack.demoapps.emojivoto.emoji", {"GRPC_PORT": str(emoji)}, emoji),
        serving(
            "meshstack.demoapps.emojivoto.voting", {"GRPC_PORT": str(voting)}, voting
        ),
        serving("meshstack.demoapps.emojivoto.web", web_env, web),
        serving("meshstack.twin.proxy", proxy_env, admin),
    ):
        wait_listening(inbound)
        yield {"web": web, "inbound": inbound, "admin": admin}
