"""Bring the local stack up and down: the lab this project can run on one machine.

Components start in order (the cloud first, since the overlay's controller listens
on the cloud bridge) and stop in reverse. Each component module has
``start(env) -> dict``, ``stop(env)`` and ``status(env) -> dict``. What a started
stack offers (URLs, file paths) is written to ``<root>/stack.json``; its presence
with every component answering means "up". A start that fails part-way stops what
it started, so nothing is left half-made.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from meshstack import clock
from meshstack.local.env import LocalEnv, LocalStackError, port_taken

log = logging.getLogger(__name__)

# module under meshstack.local -> what it is, in start order
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("openstack", "OpenStack (Debian packages) with namespace-backed servers"),
    ("zerotier", "ZeroTier controller twin and the overlay segment"),
    ("prometheus", "Prometheus"),
    ("linkerd_cli", "the linkerd command twin"),
)

Progress = Callable[[str, str], None]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"meshstack.local.{name}")


def _facts_file(env: LocalEnv) -> Path:
    return env.root / "stack.json"


@contextlib.contextmanager
def _exclusive(env: LocalEnv) -> Iterator[None]:
    """One `local up`/`down` at a time per root."""
    env.root.mkdir(parents=True, exist_ok=True)
    with open(env.root / "launcher.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LocalStackError(
                f"another `meshstack local up|down` is working on {env.root}; "
                "wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def status(root: Path) -> dict[str, Any]:
    env = LocalEnv(root)
    out: dict[str, Any] = {"root": str(env.root), "components": {}}
    for name, what in COMPONENTS:
        try:
            st = _module(name).status(env)
        except Exception as exc:  # a broken component must still be reported
            st = {"up": False, "detail": f"{type(exc).__name__}: {exc}"}
        out["components"][name] = {"what": what, **st}
    out["up"] = all(c["up"] for c in out["components"].values())
    out["started"] = _facts_file(env).exists()
    return out


def facts(root: Path) -> dict[str, Any]:
    try:
        return json.loads(_facts_file(LocalEnv(root)).read_text())
    except FileNotFoundError:
        return {}


def up(root: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Start every component; stop the started ones again if one fails."""
    progress = progress or (lambda layer, step: None)
    env = LocalEnv(root)
    with _exclusive(env):
        if _facts_file(env).exists():
            st = status(root)
            if st["up"]:
                raise AlreadyUp(root)
            alive = [n for n in env.recorded() if env.running(n)]
            if alive:
                # Partly up: a daemon hangs or died while others run, and the
                # servers on it may hold a kept stack. Restarting would remove
                # them; that is the user's call, not a run's.
                raise LocalStackError(
                    f"the local stack at {root} is only partly up "
                    f"({_down_parts(st)}); nothing was changed. See its logs in "
                    f"{env.root / 'logs'}; `meshstack local down` then `meshstack "
                    "local up` restarts it, removing every server on it"
                )
            # A stack this checkout started earlier whose processes have all ended
            # (the machine was restarted): clear it, start anew.
            progress("local", f"clearing a stale local stack ({_down_parts(st)})")
            _stop(env, [n for n, _ in COMPONENTS], progress)
            _facts_file(env).unlink(missing_ok=True)
        _check_ports(env)
        started: list[str] = []
        found: dict[str, Any] = {
            "root": str(env.root),
            "started_at": clock.utcnow().isoformat(),
        }
        try:
            for name, what in COMPONENTS:
                t0 = clock.monotonic()
                progress("local", f"starting {what}")
                found[name] = _module(name).start(env)
                started.append(name)
                found[name]["start_seconds"] = round(clock.monotonic() - t0, 2)
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            progress("local", f"start {why}: stopping what was started")
            _stop(env, [n for n, _ in COMPONENTS if n in started or n == name])
            raise
        _facts_file(env).write_text(json.dumps(found, indent=2))
        return found


def _check_ports(env: LocalEnv) -> None:
    """Refuse, before anything starts, when another program holds a port that a
    component needs: all such ports in one message, rather than a component
    failing halfway through the start with its cause in a log."""
    taken = []
    for name, what in COMPONENTS:
        listens = getattr(_module(name), "listens", None)
        for host, port, daemon in listens(env) if listens else []:
            if port_taken(host, port):
                taken.append(f"{host}:{port} ({daemon}, for {what})")
    if taken:
        raise LocalStackError(
            "the local stack needs these ports, which another program holds: "
            + "; ".join(taken)
            + ". Stop what listens there (see `ss -ltnp`) and run `meshstack local "
            "up` again; nothing was started"
        )


class AlreadyUp(LocalStackError):
    def __init__(self, root: Path) -> None:
        super().__init__(
            f"a local stack is already up at {root}; it is reused as it is "
            "(`meshstack local down` removes it)"
        )


def ensure_up(root: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Start the local stack unless this checkout's one is already up."""
    try:
        return up(root, progress)
    except AlreadyUp:
        return facts(root)


def down(root: Path, progress: Progress | None = None) -> list[str]:
    """Stop every component in reverse order; return what could not be stopped."""
    progress = progress or (lambda layer, step: None)
    env = LocalEnv(root)
    with _exclusive(env):
        left = _stop(env, [n for n, _ in COMPONENTS], progress)
        _facts_file(env).unlink(missing_ok=True)
        return left


def _stop(
    env: LocalEnv, names: list[str], progress: Progress | None = None
) -> list[str]:
    left = []
    for name, what in reversed(COMPONENTS):
        if name not in names:
            continue
        if progress:
            progress("local", f"stopping {what}")
        try:
            _module(name).stop(env)
        except Exception as exc:  # keep stopping the rest
            log.exception("[local/%s] stop failed", name)
            left.append(f"{name}: {exc}")
    return left


def _down_parts(st: dict[str, Any]) -> str:
    parts = [f"{n}: {c['detail']}" for n, c in st["components"].items() if not c["up"]]
    return "; ".join(parts) or "unknown"
