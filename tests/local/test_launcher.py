"""`meshstack local up` refuses, before anything starts, when its ports are taken."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshstack.local import launcher
from meshstack.local.env import LocalEnv, LocalStackError, port_taken

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


def _started_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A root whose stack was started (its facts written), every component now
    reporting down; returns the list each stop is appended to."""
    root.mkdir(parents=True)
    (root / "stack.json").write_text("{}")
    stopped: list[str] = []
    for name, _ in launcher.COMPONENTS:
        module = launcher._module(name)
        monkeypatch.setattr(
            module, "status", lambda env: {"up": False, "detail": "not answering"}
        )
        monkeypatch.setattr(module, "stop", lambda env, n=name: stopped.append(n))
    return stopped


def test_a_partly_up_local_stack_is_left_alone_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One daemon hangs (Prometheus stopped) while the others, and the servers of a
    # kept stack, run: an attaching run must not restart the whole local stack.
    root = tmp_path / "root"
    stopped = _started_once(root, monkeypatch)
    env = LocalEnv(root)
    env.spawn("prometheus", ["sleep", "60"])
    try:
        with pytest.raises(LocalStackError, match="only partly up") as err:
            launcher.ensure_up(root)
    finally:
        env.kill("prometheus")
    assert stopped == []
    assert "`meshstack local down` then `meshstack local up`" in str(err.value)
    assert (root / "stack.json").exists()


def test_a_local_stack_whose_processes_all_ended_is_cleared_and_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    stopped = _started_once(root, monkeypatch)
    monkeypatch.setattr(launcher, "_check_ports", lambda env: None)

    def refuse(env: Any) -> dict[str, Any]:
        raise LocalStackError("start reached")

    monkeypatch.setattr(launcher._module("openstack"), "start", refuse)
    with pytest.raises(LocalStackError, match="start reached"):
        launcher.ensure_up(root)
    # every component stopped to clear the stale stack, before the start began
    every = {n for n, _ in launcher.COMPONENTS}
    assert set(stopped[: len(every)]) == every, stopped


def test_an_interrupted_start_says_so_and_stops_what_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[str] = []
    first, second = (name for name, _ in launcher.COMPONENTS[:2])
    monkeypatch.setattr(launcher, "_check_ports", lambda env: None)
    monkeypatch.setattr(launcher._module(first), "start", lambda env: {})

    def ctrl_c(env: Any) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher._module(second), "start", ctrl_c)
    for name, _ in launcher.COMPONENTS:
        module = launcher._module(name)
        monkeypatch.setattr(module, "stop", lambda env, n=name: stopped.append(n))
    said: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        launcher.up(tmp_path / "root", progress=lambda _, step: said.append(step))
    assert "start interrupted: stopping what was started" in said, said
    assert sorted(stopped) == sorted([first, second])
    assert not (tmp_path / "root" / "stack.json").exists()
