"""The MetalLB twin's controller process, run on loopback for a test."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.sshd_support import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def metallb_controller(
    kubeconfig: str, webhook_port: int, tag: str, log_path: Path
) -> Iterator[Path]:
    """Run the controller (allocation, events, the webhook on ``webhook_port``)
    against the API server ``kubeconfig`` names; yield the path of its log, and
    end it when the block ends."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "MESHSTACK_KUBECONFIG": kubeconfig,
        "MESHSTACK_PORT_9443": str(webhook_port),
        "MESHSTACK_PORT_7472": str(free_port("127.0.0.1")),
        "MESHSTACK_IMAGE_TAG": tag,
        "MESHSTACK_BIND_ADDRESS": "127.0.0.1",
    }
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshstack.twin.metallb", "controller"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield log_path
        finally:
            proc.terminate()
            proc.wait(timeout=10)
