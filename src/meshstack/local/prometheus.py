"""Local-stack component: the real Prometheus (Debian's package) on loopback.

Prometheus scrapes every meshed pod's proxy admin port. It finds them through
file-based service discovery: the twin kubelet writes one JSON target file per
meshed pod into ``<root>/prometheus/targets/`` (labels ``namespace``, ``pod``,
``deployment``) and removes it when the pod stops; Prometheus re-reads the folder
every second. Scrapes and rule evaluation run every ``SCRAPE_INTERVAL`` seconds, so
an objective's window of four intervals or more is a few seconds long.

Measured here: ``/-/ready`` answers well under a second after start, but the first
scrape of a target lands ~5-6 s after start whatever the interval, so callers that
need data wait for ``up == 1`` (:func:`wait_target_up`), not only for ready.

The process is stopped with ``POST /-/quit`` (``--web.enable-lifecycle``), then by
SIGTERM to its recorded pid; the Popen handle is kept and waited on, so no zombie is
left behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from meshstack import clock
from meshstack.local.env import LocalEnv, LocalStackError, port_taken
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

NAME = "prometheus"
LISTEN = "127.0.0.1:9090"
SCRAPE_INTERVAL = 1
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
JOB = "linkerd-proxy"

# Popen handles of the Prometheus processes this process started, by root, so stop()
# can reap them.
_children: dict[Path, subprocess.Popen[bytes]] = {}


def config_text(targets_dir: Path, interval: int = SCRAPE_INTERVAL) -> str:
    """The Prometheus configuration: one file_sd job for the proxies, and itself."""
    config = {
        "global": {
            "scrape_interval": f"{interval}s",
            "evaluation_interval": f"{interval}s",
            "scrape_timeout": f"{interval}s",
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}
                ],
            },
        ],
    }
    # JSON is YAML: no YAML writer needed, and nothing to quote by hand.
    return json.dumps(config, indent=2) + "\n"


def _binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if not found:
        raise LocalStackError(
            "the prometheus binary is not installed; install Debian's package: "
            "apt-get install -y --no-install-recommends prometheus"
        )
    return found


def argv(env: LocalEnv, listen: str = LISTEN) -> list[str]:
    base = env.root / "prometheus"
    return [
        _binary(),
        f"--config.file={base / 'prometheus.yml'}",
        f"--storage.tsdb.path={base / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        "--log.level=info",
    ]


def listens(env: LocalEnv, listen: str = LISTEN) -> list[tuple[str, int, str]]:
    """The address Prometheus listens on: (host, port, what)."""
    host, port = listen.rsplit(":", 1)
    return [(host, int(port), NAME)]


def start(
    env: LocalEnv, listen: str = LISTEN, interval: int = SCRAPE_INTERVAL
) -> dict[str, Any]:
    """Write the configuration, start Prometheus, wait until it says it is ready."""
    taken = [f"{h}:{p}" for h, p, _ in listens(env, listen) if port_taken(h, p)]
    if taken:
        raise LocalStackError(
            f"Prometheus needs {', '.join(taken)}, which another program holds; "
            "stop it (see `ss -ltnp`), then `meshstack local up` again"
        )
    base = env.root / "prometheus"
    targets = base / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    (base / "data").mkdir(parents=True, exist_ok=True)
    (base / "prometheus.yml").write_text(config_text(targets, interval))
    url = f"http://{listen}"
    started = clock.monotonic()
    proc = env.spawn(NAME, argv(env, listen))
    _children[env.root] = proc
    try:
        wait_for(
            f"[local/prometheus] {url}/-/ready",
            lambda: _ready(url, proc),
            lambda ok: ok,
            timeout=READY_TIMEOUT,
            interval=0.1,
            terminal=lambda _ok: proc.poll() is not None,
        )
    except Exception as exc:
        tail = _log_tail(env)
        stop(env, listen)
        raise LocalStackError(
            f"Prometheus did not become ready at {url} ({exc}); its log ends:\n{tail}"
        ) from exc
    ready_seconds = round(clock.monotonic() - started, 2)
    log.info("[local/prometheus] ready at %s after %.2fs", url, ready_seconds)
    return {
        "url": url,
        "targets_dir": str(targets),
        "scrape_interval": interval,
        "job": JOB,
        "pid": proc.pid,
        "ready_seconds": ready_seconds,
    }


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        return False
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _log_tail(env: LocalEnv, lines: int = 30) -> str:
    try:
        return "\n".join(
            env.log(NAME).read_text(errors="replace").splitlines()[-lines:]
        )
    except OSError:
        return "(no log)"


def stop(env: LocalEnv, listen: str = LISTEN) -> None:
    """Ask Prometheus to quit, then SIGTERM its recorded pid; reap our child."""
    url = f"http://{listen}"
    proc = _children.pop(env.root, None)
    if env.running(NAME):
        try:
            req = urllib.request.Request(f"{url}/-/quit", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=3).close()
        except (OSError, urllib.error.URLError) as exc:
            log.info(
                "[local/prometheus] /-/quit not answered (%s); sending SIGTERM", exc
            )
        _wait_exit(env, proc)
    env.kill(NAME, timeout=STOP_TIMEOUT)
    if proc is not None:
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("[local/prometheus] pid %d did not exit after kill", proc.pid)


def _wait_exit(env: LocalEnv, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = clock.monotonic() + STOP_TIMEOUT
    while clock.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not env.running(NAME):
            return
        clock.sleep(0.1)


def status(env: LocalEnv, listen: str = LISTEN) -> dict[str, Any]:
    if not env.running(NAME):
        return {"up": False, "detail": "not running (no live recorded pid)"}
    try:
        with urllib.request.urlopen(f"http://{listen}/-/ready", timeout=2) as resp:
            ok = resp.status == 200
    except (OSError, urllib.error.URLError) as exc:
        return {"up": False, "detail": f"pid {env.pid(NAME)} runs, /-/ready: {exc}"}
    return {"up": ok, "detail": f"pid {env.pid(NAME)}, ready at http://{listen}"}


def write_target(
    targets_dir: Path, name: str, address: str, labels: dict[str, str]
) -> Path:
    """One file_sd target file (what the twin kubelet writes for each meshed pod)."""
    path = targets_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": labels}]))
    # Prometheus may read the folder at any moment: rename, never a half-written file.
    tmp.rename(path)
    return path


def query(url: str, promql: str, at: float | None = None, timeout: float = 10.0) -> Any:
    """``/api/v1/query`` -> the decoded JSON answer (status, data or error)."""
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    full = f"{url}/api/v1/query?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(full, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


def wait_target_up(url: str, address: str, timeout: float = 30.0) -> float:
    """Wait until Prometheus has scraped ``address`` successfully; seconds waited."""
    started = clock.monotonic()
    promql = f'up{{job="{JOB}",instance="{address}"}} == 1'
    try:
        wait_for(
            f"[local/prometheus] first scrape of {address}",
            lambda: query(url, promql).get("data", {}).get("result", []),
            lambda result: bool(result),
            timeout=timeout,
            interval=0.2,
            retry_on=(OSError,),
            describe=lambda r: "scraped" if r else "not scraped yet",
        )
    except WaitTimeout as exc:
        raise LocalStackError(
            f"Prometheus at {url} has not scraped {address} within {timeout:.0f}s; "
            "check the target file and that the proxy's admin port answers /metrics"
        ) from exc
    return clock.monotonic() - started
