"""A real OpenSSH server on a loopback address, for tests that need one."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_sshd(d: Path, ip: str) -> Iterator[dict[str, Any]]:
    """sshd on `ip`, accepting one generated key for root; yields its port and the
    client key file, and stops it (by its own pid) afterwards."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")])
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")])
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port(ip)
    (d / "sshd_config").write_text(
        f"ListenAddress {ip}:{port}\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPidFile {d / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    )
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((ip, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield {"port": port, "key": str(d / "client"), "host": ip}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
