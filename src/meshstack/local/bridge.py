"""Linux bridges the local stack makes, each labelled with the stack that owns it.

The owner is written on the link itself (its alias, ``meshstack-local <root>``), so
the label outlives the files under the stack's root: a stack whose root was deleted,
or whose removal was cut short, still leaves a bridge that says whose it is. A stack
removes only the bridges labelled with its own root, and refuses to start over a
bridge that another stack owns, naming that stack.
"""

from __future__ import annotations

import logging
from pathlib import Path

from meshstack.local.env import LocalEnv, LocalStackError

log = logging.getLogger("meshstack.local")

LABEL = "meshstack-local"


def exists(env: LocalEnv, name: str) -> bool:
    return owner(env, name) is not None


def owner(env: LocalEnv, name: str) -> str | None:
    """The root written on the bridge, '' for a bridge with no meshstack label, or
    None when there is no such link."""
    res = env.run(["ip", "-o", "link", "show", "dev", name], check=False, timeout=10)
    if res.returncode != 0:
        return None
    # One line; its parts are separated by backslashes, the alias last of them.
    for part in res.stdout.split("\\"):
        alias = part.strip()
        if alias.startswith(f"alias {LABEL} "):
            return alias[len(f"alias {LABEL} ") :]
    return ""


def claim(env: LocalEnv, name: str, address: str) -> None:
    """Make the bridge for this stack; one this stack left behind earlier is
    replaced, anyone else's is refused."""
    check_free(env, name)
    release(env, name)
    env.run(["ip", "link", "add", name, "type", "bridge"], timeout=10)
    env.run(["ip", "link", "set", name, "alias", f"{LABEL} {env.root}"], timeout=10)
    env.run(["ip", "addr", "add", address, "dev", name], timeout=10)
    env.run(["ip", "link", "set", name, "up"], timeout=10)
    log.info("[bridge/%s] up with %s", name, address)


def check_free(env: LocalEnv, name: str) -> None:
    """Refuse early when a bridge by that name exists that this stack did not make
    (a stale one of this stack's own is fine: `claim` replaces it)."""
    found = owner(env, name)
    if found is not None and found != str(env.root):
        raise LocalStackError(_taken_message(name, found))


def release(env: LocalEnv, name: str) -> None:
    """Remove the bridge and its ports if this stack owns it; else leave it be."""
    if owner(env, name) != str(env.root):
        return
    ports = env.run(
        ["ip", "-o", "link", "show", "master", name], check=False, timeout=10
    )
    for line in ports.stdout.splitlines():
        port = line.split(":", 2)[1].strip().split("@", 1)[0]
        env.run(["ip", "link", "del", port], check=False, timeout=10)
    env.run(["ip", "link", "del", name], check=False, timeout=10)
    log.info("[bridge/%s] removed", name)


def _taken_message(name: str, found: str) -> str:
    if found:
        gone = "" if Path(found).is_dir() else " (that directory no longer exists)"
        return (
            f"bridge {name} belongs to the local stack at {found}{gone}; run "
            f"`meshstack local down` in that checkout, or `ip link del {name}` if "
            "nothing uses it any more"
        )
    return (
        f"a network link named {name} exists and was not made by meshstack; "
        "the local stack needs that name: remove the link or free the name"
    )
