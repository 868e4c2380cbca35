"""Start, stop and report the local cloud (component 1 of `meshstack local up`).

``start`` refuses, before touching anything, when the stack is already up or a
port it needs is taken; once it has begun, any failure stops whatever it started.
``stop`` removes every server namespace, daemon, the cloud bridge, the databases
(the whole MariaDB data directory under <root>) and RabbitMQ's node (its users and
vhost with it), and is safe to run twice.
"""

from __future__ import annotations

import logging
import shutil
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from meshstack import clock
from meshstack.local import bridge
from meshstack.local.env import LocalEnv, LocalStackError, port_taken
from meshstack.local.openstack import bootstrap, config, image, servers, services
from meshstack.local.openstack.config import HOST, PORTS, Layout, Secrets
from meshstack.local.openstack.services import Daemon
from meshstack.wait import WaitFailed, WaitTimeout, wait_for

log = logging.getLogger(__name__)

API_TIMEOUT = 120.0
COMPUTE_TIMEOUT = 120.0
# Nothing the cloud keeps outlives a stop (the data directories go with it), so a
# daemon that lingers after SIGTERM (neutron's uwsgi worker does) is not waited on.
STOP_TIMEOUT = 5.0


def start(env: LocalEnv) -> dict[str, Any]:
    """Bring the cloud up; returns what it offers (clouds.yaml, URLs, timings)."""
    layout = Layout(env.root)
    _preflight(env)
    begun = clock.monotonic()
    try:
        return _start(env, layout, begun)
    except BaseException as exc:
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        log.error("[openstack] start %s: stopping what was started", why)
        stop(env)
        raise


def _start(env: LocalEnv, layout: Layout, begun: float) -> dict[str, Any]:
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(clock.monotonic() - begun, 1)
        log.info("[openstack] %s after %.1fs", name, phases[name])

    s = Secrets.generate()
    s.save(layout.secrets_file)
    services.write_files(layout, s)
    servers.create_bridge(env)
    _start_backends(env, layout)
    phase("database up")
    bootstrap.create_databases(env, layout, s)
    schemas = bootstrap.sync_schemas(env, layout, s)
    phase("schemas ready")
    _spawn_and_wait(env, services.keystone(layout))
    _write_clouds_yaml(layout, s)
    _wait_port("rabbitmq", PORTS["rabbitmq"], "rabbitmq")
    phase("keystone answering")
    _start_services(env, layout, s)
    phase("all APIs answering")
    bootstrap.discover_compute(env, layout, COMPUTE_TIMEOUT)
    phase("compute ready")
    return {
        "clouds_yaml": str(layout.clouds_yaml),
        "cloud": config.CLOUD_NAME,
        "auth_url": f"{config.KEYSTONE_URL}/v3",
        "bridge": servers.BRIDGE,
        "image_file": str(image.write(env.root)),
        "schemas": schemas,
        "apis_seconds": phases["all APIs answering"],
        "ready_seconds": phases["compute ready"],
        "phases": phases,
        "rss_mib": rss_mib(env),
    }


def _start_services(env: LocalEnv, layout: Layout, s: Secrets) -> None:
    # The APIs boot while the service users are made: they ask keystone only once
    # a request arrives. nova's conductor, scheduler and compute log in at start
    # (and die or stall without their user): they wait for the users.
    daemons = services.apis(layout)
    late = [d for d in daemons if d.name in services.NEED_USERS_AT_START]
    for daemon in daemons:
        if daemon not in late:
            _spawn(env, daemon)
    bootstrap.register_services(layout.clouds_yaml, s)
    for daemon in late:
        _spawn(env, daemon)
    for daemon in daemons:
        _wait_ready(env, daemon)


def _start_backends(env: LocalEnv, layout: Layout) -> None:
    bootstrap.init_mariadb(env, layout)
    (layout.state / "rabbitmq").mkdir(parents=True, exist_ok=True)
    _spawn(env, services.mariadb(layout))
    _spawn(env, services.epmd())
    _spawn(env, services.rabbitmq(layout))
    wait_for(
        "[openstack/mariadb] answering on its socket",
        lambda: (
            _alive_or_fail(env, "mariadb") and bootstrap.sql(env, layout, "SELECT 1;")
        ),
        lambda out: bool(out),
        timeout=60,
        interval=0.2,
        retry_on=(LocalStackError,),
    )


def stop(env: LocalEnv) -> None:
    """Remove everything the cloud made; quiet about what is already gone."""
    layout = Layout(env.root)
    servers.remove_all(env, layout)
    # The OpenStack services all at once, then RabbitMQ, epmd and MariaDB.
    first = services.STOP_ORDER[: services.STOP_ORDER.index("rabbitmq")]
    with ThreadPoolExecutor(max_workers=len(first)) as pool:
        list(pool.map(lambda name: env.kill(name, timeout=STOP_TIMEOUT), first))
    for name in services.STOP_ORDER[len(first) :]:
        env.kill(name, timeout=STOP_TIMEOUT)
    servers.delete_bridge(env)
    for path in (layout.state, layout.etc, layout.pylib, layout.instances):
        shutil.rmtree(path, ignore_errors=True)
    layout.secrets_file.unlink(missing_ok=True)
    layout.clouds_yaml.unlink(missing_ok=True)


def status(env: LocalEnv) -> dict[str, Any]:
    names = services.STOP_ORDER
    down = [n for n in names if not env.running(n)]
    if len(down) == len(names):
        left = bridge.owner(env, servers.BRIDGE) == str(env.root)
        return {
            "up": False,
            "detail": "not running"
            + (
                f"; bridge {servers.BRIDGE} is left from an earlier start "
                "(`meshstack local down` removes it, `meshstack local up` replaces it)"
                if left
                else ""
            ),
        }
    if down:
        return {
            "up": False,
            "detail": f"partly running: {', '.join(down)} not running; "
            "run `meshstack local down`, then `meshstack local up`",
        }
    silent = [
        d.name for d in _http_daemons(Layout(env.root)) if not _answers(d.url or "")
    ]
    if silent:
        return {
            "up": False,
            "detail": f"running, but {', '.join(silent)} do not answer",
        }
    count = len(servers.recorded(Layout(env.root)))
    return {
        "up": True,
        "detail": f"{len(names)} daemons, APIs answering on {HOST}, {count} servers",
    }


# -- preflight -------------------------------------------------------------------


def _preflight(env: LocalEnv) -> None:
    """Refuse to start over a running or half-removed stack, or on taken ports."""
    running = [n for n in services.STOP_ORDER if env.running(n)]
    if running:
        raise LocalStackError(
            f"the local cloud is already (partly) running under {env.root} "
            f"({', '.join(running)}); use it as it is, or run `meshstack local down` "
            "and start again"
        )
    bridge.check_free(env, servers.BRIDGE)
    taken = [
        f"{h}:{port} ({name})" for h, port, name in listens(env) if port_taken(h, port)
    ]
    if taken:
        raise LocalStackError(
            "the local cloud needs these ports, which something else holds: "
            f"{', '.join(taken)}; stop what listens there (see `ss -ltnp`) and run "
            "`meshstack local up` again; nothing was started"
        )


def listens(env: LocalEnv) -> list[tuple[str, int, str]]:
    """The addresses the cloud's daemons listen on: (host, port, daemon)."""
    return [(HOST, port, name) for name, port in PORTS.items()]


# -- daemons ---------------------------------------------------------------------


def _spawn(env: LocalEnv, daemon: Daemon) -> None:
    env.spawn(daemon.name, daemon.argv, env=daemon.env, cwd=env.root)


def _spawn_and_wait(env: LocalEnv, daemon: Daemon) -> None:
    _spawn(env, daemon)
    _wait_ready(env, daemon)


def _wait_ready(env: LocalEnv, daemon: Daemon) -> None:
    if daemon.url is None:
        return
    url = daemon.url
    try:
        wait_for(
            f"[openstack/{daemon.name}] answering at {url}",
            lambda: "answering" if _answers(url) else _alive_state(env, daemon.name),
            lambda state: state == "answering",
            timeout=API_TIMEOUT,
            interval=0.25,
            terminal=lambda state: state == "exited",
        )
    except (WaitFailed, WaitTimeout) as exc:
        raise LocalStackError(f"{exc}\n{_log_tail(env, daemon.name)}") from exc


def _alive_state(env: LocalEnv, name: str) -> str:
    return "starting" if env.running(name) else "exited"


def _alive_or_fail(env: LocalEnv, name: str) -> bool:
    if not env.running(name):
        raise LocalStackError(f"{name} exited during start\n{_log_tail(env, name)}")
    return True


def _log_tail(env: LocalEnv, name: str, lines: int = 30) -> str:
    try:
        text = env.log(name).read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return f"(no log at {env.log(name)})"
    return f"last lines of {env.log(name)}:\n" + "\n".join(text)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, urllib.error.URLError):
        return False


def _wait_port(what: str, port: int, name: str) -> None:
    def connects() -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex((HOST, port)) == 0

    wait_for(f"[openstack/{name}] accepting on {HOST}:{port}", connects, bool, 60, 0.2)


def _http_daemons(layout: Layout) -> list[Daemon]:
    return [d for d in (services.keystone(layout), *services.apis(layout)) if d.url]


def _write_clouds_yaml(layout: Layout, s: Secrets) -> Path:
    path = layout.clouds_yaml
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.clouds_yaml(s), sort_keys=False))
    path.chmod(0o600)
    return path


def rss_mib(env: LocalEnv) -> int:
    """Resident memory of every process in the cloud daemons' process groups."""
    groups = {pid for n in services.STOP_ORDER if (pid := env.pid(n)) is not None}
    total_pages = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) in groups:
            total_pages += int(fields[21])
    return total_pages * 4096 // (1024 * 1024)
