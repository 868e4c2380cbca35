"""The object store: every object as JSON, a global resourceVersion, watch fan-out.

Objects are kept per storage key ``(group, plural)`` and ``(namespace, name)``
("" for cluster-scoped). Every write takes the next value of one global counter as
the object's ``metadata.resourceVersion`` and is offered to the live watchers;
the last ``HISTORY`` writes are kept so that a watch may resume from an older
resourceVersion, as an etcd-backed server allows within its compaction window
(older than that: 410 Gone, and the client relists).
"""

from __future__ import annotations

import builtins
import collections
import copy
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshstack.twin.kube.errors import ApiError

log = logging.getLogger(__name__)

HISTORY = 5000
Key = tuple[str, str]
Obj = dict[str, Any]


@dataclass
class Change:
    rv: int
    key: Key
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj
    old: Obj | None


@dataclass
class Watcher:
    """One open watch: a key, a filter and the queue of changes it receives."""

    key: Key | None  # None: every type (the garbage collector's view)
    accepts: Callable[[Obj], bool]
    events: queue.Queue[tuple[str, Obj] | None] = field(default_factory=queue.Queue)

    def offer(self, change: Change) -> None:
        if self.key is not None and change.key != self.key:
            return
        now = change.type != "DELETED" and self.accepts(change.obj)
        before = change.old is not None and self.accepts(change.old)
        if change.type == "DELETED":
            before = self.accepts(change.obj)
        if now and not before:
            self.events.put(("ADDED", change.obj))
        elif now:
            self.events.put(("MODIFIED", change.obj))
        elif before:
            self.events.put(("DELETED", change.obj))


def _ident(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


class Store:
    def __init__(self, snapshot: Path | None = None, history: int = HISTORY) -> None:
        self.cond = threading.Condition(threading.RLock())
        self._objs: dict[Key, dict[tuple[str, str], Obj]] = {}
        self._rv = 0
        self._history: collections.deque[Change] = collections.deque(maxlen=history)
        self._watchers: list[Watcher] = []
        self._snapshot = snapshot
        self._dirty = False
        if snapshot is not None and snapshot.exists():
            self._load(snapshot)

    @property
    def rv(self) -> int:
        with self.cond:
            return self._rv

    def get(self, key: Key, ns: str, name: str) -> Obj | None:
        with self.cond:
            obj = self._objs.get(key, {}).get((ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        key: Key,
        ns: str | None = None,
        accepts: Callable[[Obj], bool] | None = None,
    ) -> tuple[list[Obj], int]:
        with self.cond:
            items = [
                copy.deepcopy(o)
                for (ons, _), o in sorted(self._objs.get(key, {}).items())
                if (ns is None or ons == ns) and (accepts is None or accepts(o))
            ]
            return items, self._rv

    def put(self, key: Key, obj: Obj, expect_rv: str | None = None) -> Obj:
        """Write ``obj``; with ``expect_rv``, only over that version (else 409)."""
        with self.cond:
            ident = _ident(obj)
            old = self._objs.get(key, {}).get(ident)
            if (
                expect_rv
                and old is not None
                and old["metadata"]["resourceVersion"] != expect_rv
            ):
                raise ApiError("Conflict", "resourceVersion mismatch")
            self._rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self._rv)
            self._objs.setdefault(key, {})[ident] = stored
            self._publish(
                Change(self._rv, key, "MODIFIED" if old else "ADDED", stored, old)
            )
            return copy.deepcopy(stored)

    def remove(self, key: Key, ns: str, name: str) -> Obj | None:
        with self.cond:
            old = self._objs.get(key, {}).pop((ns, name), None)
            if old is None:
                return None
            self._rv += 1
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            self._publish(Change(self._rv, key, "DELETED", gone, old))
            return copy.deepcopy(gone)

    def _publish(self, change: Change) -> None:
        self._dirty = True
        self._history.append(change)
        for w in self._watchers:
            w.offer(change)
        self.cond.notify_all()

    def watch(
        self,
        key: Key | None,
        accepts: Callable[[Obj], bool],
        since: int | None,
        events: queue.Queue[tuple[str, Obj] | None] | None = None,
    ) -> Watcher:
        """Open a watch; ``since=None`` first sends every current object as ADDED.

        Several watches may share one ``events`` queue (a controller's work queue).
        """
        w = Watcher(key, accepts) if events is None else Watcher(key, accepts, events)
        with self.cond:
            if since is None:
                keys = [key] if key is not None else list(self._objs)
                for k in keys:
                    for obj in self._objs.get(k, {}).values():
                        if accepts(obj):
                            w.events.put(("ADDED", copy.deepcopy(obj)))
            else:
                self._replay(w, since)
            self._watchers.append(w)
        return w

    def _replay(self, w: Watcher, since: int) -> None:
        oldest = self._history[0].rv if self._history else self._rv + 1
        if since < oldest - 1 and since < self._rv:
            raise ApiError(
                "Gone", f"too old resource version: {since} ({oldest - 1})", code=410
            )
        for change in self._history:
            if change.rv > since:
                w.offer(change)

    def keys(self) -> builtins.list[Key]:
        with self.cond:
            return [*self._objs]

    def unwatch(self, w: Watcher) -> None:
        with self.cond:
            if w in self._watchers:
                self._watchers.remove(w)
        w.events.put(None)

    def close_watchers(self) -> None:
        with self.cond:
            for w in list(self._watchers):
                self.unwatch(w)

    # -- snapshot ----------------------------------------------------------------
    def save(self) -> None:
        """Write every object to the snapshot file, if one is configured."""
        if self._snapshot is None or not self._dirty:
            return
        with self.cond:
            data = {
                "rv": self._rv,
                "objects": [
                    {"key": list(k), "obj": o}
                    for k, objs in self._objs.items()
                    for o in objs.values()
                ],
            }
            self._dirty = False
        tmp = self._snapshot.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self._snapshot)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self._rv = int(data["rv"])
        for entry in data["objects"]:
            key = (entry["key"][0], entry["key"][1])
            self._objs.setdefault(key, {})[_ident(entry["obj"])] = entry["obj"]
        log.info("loaded %d objects from %s", len(data["objects"]), path)
