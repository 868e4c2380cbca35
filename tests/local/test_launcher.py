"""`meshstack local up` refuses, before anything starts, when its ports are taken."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshstack.local import launcher
from meshstack.local.env import LocalStackError, port_taken

# Prometheus's and the ZeroTier controller's loopback ports.
HELD = (9090, 9993)


@contextlib.contextmanager
def _listening(port: int) -> Iterator[None]:
    """Hold ``127.0.0.1:port`` as another program would, unless something already
    does (a developer's own local stack): then it is taken all the same."""
    if port_taken("127.0.0.1", port):
        yield
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        yield


def test_taken_ports_are_all_named_before_any_component_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    for name, _ in launcher.COMPONENTS:
        module = launcher._module(name)
        monkeypatch.setattr(module, "start", lambda env, n=name: started.append(n))
    with _listening(HELD[0]), _listening(HELD[1]):
        with pytest.raises(LocalStackError) as err:
            launcher.up(tmp_path / "root")
    message = str(err.value)
    assert "127.0.0.1:9090 (prometheus" in message, message
    assert "127.0.0.1:9993 (zerotier-controller" in message, message
    assert "nothing was started" in message
    assert started == []
    assert not (tmp_path / "root" / "stack.json").exists()


def test_a_free_port_is_not_reported_as_taken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not port_taken("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_taken("127.0.0.1", port)
