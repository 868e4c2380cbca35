"""A pytest plugin that measures how much of a run is spent inside external calls.

Loaded with ``-p benchmarks.external_time``, it wraps the harness's ways out of the
process (subprocesses, SSH commands, HTTP requests of the Kubernetes, OpenStack and
plain-urllib clients, Kubernetes watch streams) and sums the wall time spent in them,
counting nested calls once. At the end it writes the run's wall time, the external
time and their ratio to the JSON file named by ``MESHSTACK_BENCH_OUT``.

The wall time is the session's, from the first hook to the last; the plugin's own
bookkeeping is a few microseconds a call.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

_local = threading.local()
_totals: dict[str, float] = defaultdict(float)
_counts: dict[str, int] = defaultdict(int)
_lock = threading.Lock()
_started = time.monotonic()


def _timed(category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_local, "depth", 0)
        _local.depth = depth + 1
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            _local.depth = depth
            if depth == 0:
                with _lock:
                    _totals[category] += time.monotonic() - t0
                    _counts[category] += 1

    return wrapper


def _timed_stream(
    category: str, fn: Callable[..., Iterator[Any]]
) -> Callable[..., Any]:
    """A generator whose every step (waiting for the next event) counts as external."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        it = fn(*args, **kwargs)
        step = _timed(category, lambda: next(it))
        while True:
            try:
                yield step()
            except StopIteration:
                return

    return wrapper


def _patch(owner: Any, name: str, category: str, stream: bool = False) -> None:
    original = getattr(owner, name)
    setattr(owner, name, (_timed_stream if stream else _timed)(category, original))


def pytest_configure(config: pytest.Config) -> None:
    global _started
    _started = time.monotonic()
    _patch(subprocess, "run", "subprocess")
    _patch(subprocess.Popen, "communicate", "subprocess")
    _patch(subprocess.Popen, "wait", "subprocess")
    _patch(urllib.request, "urlopen", "http")
    from meshstack import ssh

    _patch(ssh, "run", "ssh")
    _patch(ssh, "run_all", "ssh")
    import urllib3

    _patch(urllib3.connectionpool.HTTPConnectionPool, "urlopen", "http")
    import requests

    _patch(requests.adapters.HTTPAdapter, "send", "http")
    from kubernetes import watch

    _patch(watch.Watch, "stream", "watch", stream=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("MESHSTACK_BENCH_OUT")
    if not out:
        return
    wall = time.monotonic() - _started
    external = sum(_totals.values())
    result = {
        "wall_seconds": round(wall, 3),
        "external_seconds": round(external, 3),
        "ratio_wall_over_external": round(wall / external, 3) if external else None,
        "by_kind_seconds": {k: round(v, 3) for k, v in _totals.items()},
        "calls": dict(_counts),
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=2)
