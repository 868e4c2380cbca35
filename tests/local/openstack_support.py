"""One real local cloud shared by the self-tests that need it (it takes ~1 min).

``shared_cloud(config)`` starts it on first use and stops it when the pytest
session ends; a test that stops it itself calls ``forget()`` so that the next
user starts a fresh one. Both tests/local/test_openstack.py and
tests/providers/test_cloud_openstack.py import this module by its full name
(``tests.local.openstack_support``) so they share the one instance.

The cloud binds fixed loopback ports and makes the bridge ``mscloud0``, so only
one can run: if this checkout's local stack (``.meshstack/local``) is up, its
cloud is used and never stopped here; if something else holds the ports, the
tests are skipped, naming it.
Its root is ``<checkout>/.meshstack/selftest-cloud``, so the schema cache there
survives between sessions (the first session migrates, later ones load).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from meshstack.local import openstack
from meshstack.local.env import LocalEnv, LocalStackError
from meshstack.local.openstack import config as cloud_config

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2] / ".meshstack" / "selftest-cloud"


LAB_ROOT = ROOT.parent / "local"


@dataclass
class SharedCloud:
    env: LocalEnv
    facts: dict[str, Any]
    start_seconds: float
    owned: bool = True  # False: the running local stack's cloud, never stopped here
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clouds_yaml(self) -> Path:
        return Path(self.facts["clouds_yaml"])


_current: SharedCloud | None = None


def available() -> str | None:
    """Why the cloud cannot start here, or None."""
    if os.geteuid() != 0:
        return "the local cloud needs root (namespaces, bridge, daemons as root)"
    if not Path("/usr/bin/keystone-manage").exists():
        return (
            "OpenStack packages are not installed (meshstack.local.openstack.install)"
        )
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", 5000)) == 0 and _current is None:
            return "something already listens on 127.0.0.1:5000 (a local stack is up?)"
    return None


def shared_cloud(config: pytest.Config) -> SharedCloud:
    global _current
    if _current is not None:
        return _current
    lab = LocalEnv(LAB_ROOT)
    if openstack.status(lab)["up"]:
        # This checkout's local stack is up: use its cloud rather than clash.
        facts = {
            "clouds_yaml": str(cloud_config.Layout(lab.root).clouds_yaml),
            "rss_mib": 0,
        }
        _current = SharedCloud(lab, facts, 0.0, owned=False)
        return _current
    reason = available()
    if reason:
        pytest.skip(f"local cloud not startable: {reason}")
    env = LocalEnv(ROOT)
    openstack.stop(env)  # a previous session killed mid-way leaves its parts
    began = time.monotonic()
    try:
        facts = openstack.start(env)
    except LocalStackError as exc:
        pytest.fail(f"the local cloud did not start: {exc}")
    _current = SharedCloud(env, facts, time.monotonic() - began)
    config.add_cleanup(lambda: openstack.stop(env))
    return _current


def forget() -> None:
    """The shared cloud was stopped by a test: the next user starts another."""
    global _current
    _current = None
