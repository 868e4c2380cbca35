"""The state file: what a stack is made of, who made it, and how healthy it is.

One JSON document, rewritten atomically after every change, so a crash, a failed
wait or Ctrl-C never leaves a record of less than what exists. A later run attaches
through it (``--stack=existing``) and ``meshstack down`` removes exactly what it
lists. Health records let every xdist worker gate on the same facts.

Two runs never share one stack: :class:`RunLock` is an exclusive ``flock`` held by
the run's main process for its whole life.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from meshstack import clock
from meshstack.providers.base import LayerState

T = TypeVar("T")


class StateError(Exception):
    """The state file is missing, unreadable or held by another run."""


def new_run_id() -> str:
    return f"ms-{clock.utcnow().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class StackState:
    path: Path
    run_id: str = ""
    profile: str = ""
    kept: bool = False
    layers: dict[str, LayerState] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> StackState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, ValueError) as exc:
            raise StateError(
                f"{path}: unreadable state file ({exc}); remove it"
            ) from None
        return cls(
            path=path,
            run_id=data.get("run_id", ""),
            profile=data.get("profile", ""),
            kept=bool(data.get("kept", False)),
            layers={
                name: LayerState.from_json(layer)
                for name, layer in data.get("layers", {}).items()
            },
            health=dict(data.get("health", {})),
        )

    @property
    def exists(self) -> bool:
        return any(layer.resources or layer.outputs for layer in self.layers.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "run_id": self.run_id,
            "profile": self.profile,
            "kept": self.kept,
            "layers": {name: layer.to_json() for name, layer in self.layers.items()},
            "health": self.health,
        }

    def save(self) -> None:
        """Write the state atomically (a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, indent=2, default=str)
        os.replace(tmp, self.path)

    def reload_health(self) -> dict[str, dict[str, Any]]:
        """Health as the file holds it now (another process may have written it)."""
        self.health = StackState.load(self.path).health
        return self.health


class RunLock:
    """An exclusive lock on a state file for the life of one run."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fh: Any = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the run's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise StateError(
                f"{self.path}: another meshstack run ({holder}) holds this stack; "
                "wait for it to finish or pass another --stack-state"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def once(
    directory: Path,
    key: str,
    fn: Callable[[], T],
    encode: Callable[[T], Any] = lambda v: v,
) -> Any:
    """Run ``fn`` once per directory and key, across processes; return its JSON result.

    The first caller runs it under a file lock and stores the result; every later
    caller (another xdist worker) waits for the lock and reads the stored result.
    """
    result = directory / f"once-{key}.json"
    with _locked(directory / f"once-{key}.lock"):
        if result.exists():
            return json.loads(result.read_text(encoding="utf-8"))["value"]
        started = time.time()
        value = encode(fn())
        result.write_text(
            json.dumps({"value": value, "seconds": time.time() - started}, default=str),
            encoding="utf-8",
        )
        return value
