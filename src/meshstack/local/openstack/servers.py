"""The cloud bridge and the server namespaces, seen from the host side.

nova-compute's driver (plugins/meshstack_nova_driver.py) makes one namespace per
server and registers it in ``<root>/openstack/instances/<netns>.json`` before it
makes it. Stopping the cloud removes each registered namespace here, whatever
state nova was in, so a crash cannot leave one behind.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from meshstack.local import bridge
from meshstack.local.env import LocalEnv, end_namespace_processes
from meshstack.local.openstack.config import Layout

log = logging.getLogger(__name__)

BRIDGE = "mscloud0"
BRIDGE_ADDRESS = "198.18.10.1/24"
KILL_TIMEOUT = 5.0


def bridge_exists(env: LocalEnv) -> bool:
    return bridge.exists(env, BRIDGE)


def create_bridge(env: LocalEnv) -> None:
    bridge.claim(env, BRIDGE, BRIDGE_ADDRESS)


def delete_bridge(env: LocalEnv) -> None:
    bridge.release(env, BRIDGE)


def recorded(layout: Layout) -> list[dict[str, Any]]:
    """Every server namespace the driver registered and did not remove."""
    if not layout.instances.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(layout.instances.glob("*.json"))]


def namespaces(env: LocalEnv) -> set[str]:
    out = env.run(["ip", "netns", "list"], timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def remove_all(env: LocalEnv, layout: Layout) -> None:
    existing = namespaces(env)
    for rec in recorded(layout):
        if rec["netns"] in existing:
            end_namespace_processes(rec["netns"], KILL_TIMEOUT)
            env.run(["ip", "link", "del", rec["host_link"]], check=False, timeout=10)
            env.run(["ip", "netns", "del", rec["netns"]], timeout=10)
        _remove_node_dir(rec)
        (layout.instances / f"{rec['netns']}.json").unlink(missing_ok=True)
        log.info("[openstack/%s] namespace %s removed", rec["name"], rec["netns"])


def _remove_node_dir(rec: dict[str, Any]) -> None:
    marker = Path(rec["node_dir"]) / ".meshstack-node"
    try:
        owner = json.loads(marker.read_text()).get("uuid")
    except (FileNotFoundError, ValueError):
        return
    # The directory is named after the server: never remove another server's.
    if owner == rec["uuid"]:
        shutil.rmtree(rec["node_dir"], ignore_errors=True)
