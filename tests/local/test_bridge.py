"""Bridges carry the root of the stack that made them, and only that stack removes
them (a half-removed stack of this checkout no longer blocks `local up`; another
checkout's is named, never taken over).

The bridges here use names of their own (``mstb`` + random), never the stack's.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshstack.local import bridge
from meshstack.local.env import LocalEnv, LocalStackError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bridges need root")


@pytest.fixture
def name() -> Iterator[str]:
    name = "mstb" + secrets.token_hex(3)
    yield name
    subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)


def test_a_claimed_bridge_names_its_stack_and_its_release_removes_it(
    tmp_path: Path, name: str
) -> None:
    env = LocalEnv(tmp_path / "a b")  # a root with a space in it
    bridge.claim(env, name, "198.18.250.1/24")
    assert bridge.owner(env, name) == str(env.root)
    addr = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", name], capture_output=True, text=True
    ).stdout
    assert "198.18.250.1/24" in addr
    bridge.release(env, name)
    assert bridge.owner(env, name) is None


def test_another_stacks_bridge_is_refused_by_its_root_and_never_removed(
    tmp_path: Path, name: str
) -> None:
    mine, theirs = LocalEnv(tmp_path / "mine"), LocalEnv(tmp_path / "theirs")
    theirs.root.mkdir()
    bridge.claim(theirs, name, "198.18.251.1/24")
    with pytest.raises(LocalStackError) as err:
        bridge.claim(mine, name, "198.18.251.1/24")
    assert str(theirs.root) in str(err.value)
    assert "meshstack local down" in str(err.value)
    bridge.release(mine, name)
    assert bridge.owner(mine, name) == str(theirs.root)


def test_a_bridge_this_stack_left_behind_is_replaced_not_refused(
    tmp_path: Path, name: str
) -> None:
    env = LocalEnv(tmp_path)
    bridge.claim(env, name, "198.18.252.1/24")
    bridge.check_free(env, name)  # no error: it is this stack's own
    bridge.claim(env, name, "198.18.252.1/24")
    assert bridge.owner(env, name) == str(env.root)


def test_a_link_meshstack_did_not_make_is_refused_and_left_alone(
    tmp_path: Path, name: str
) -> None:
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    env = LocalEnv(tmp_path)
    assert bridge.owner(env, name) == ""
    with pytest.raises(LocalStackError, match="not made by meshstack"):
        bridge.check_free(env, name)
    bridge.release(env, name)
    assert bridge.exists(env, name)
