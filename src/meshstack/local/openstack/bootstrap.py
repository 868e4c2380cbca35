"""One-time steps of a fresh local cloud: databases, schemas, identity, cells.

The schema migrations are the slow part of a start (each project runs its own
alembic or sqlalchemy-migrate chain); they run in parallel, one thread each.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from meshstack.local.env import LocalEnv, LocalStackError
from meshstack.local.openstack import config
from meshstack.local.openstack.config import HOST, PORTS, REGION, Layout, Secrets
from meshstack.providers.cloud_openstack import connect
from meshstack.wait import wait_for

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 300.0


def init_mariadb(env: LocalEnv, layout: Layout) -> None:
    """Make a fresh, empty data directory under <root> (the machine's stays unused)."""
    datadir = layout.state / "mysql"
    datadir.mkdir(parents=True, exist_ok=True)
    env.run(
        [
            "/usr/bin/mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ],
        timeout=120,
    )


def sql(env: LocalEnv, layout: Layout, statements: str, timeout: float = 30) -> str:
    """Run SQL as the database's root over its own socket; returns the output."""
    argv = ["/usr/bin/mariadb", "--no-defaults", "-S", str(layout.mysql_socket)]
    argv += ["-u", "root", "-N", "-B"]
    return env.run(argv, timeout=timeout, input=statements).stdout


def create_databases(env: LocalEnv, layout: Layout, s: Secrets) -> None:
    user = f"'{config.DB_USER}'@'{HOST}'"
    lines = [f"CREATE USER {user} IDENTIFIED BY '{s.database}';"]
    for db in config.DATABASES:
        lines.append(f"CREATE DATABASE {db} CHARACTER SET utf8;")
        lines.append(f"GRANT ALL PRIVILEGES ON {db}.* TO {user};")
    sql(env, layout, "\n".join(lines))


def sync_schemas(env: LocalEnv, layout: Layout, s: Secrets) -> str:
    """Make every project's schema; returns "migrated" or "restored from cache".

    The first start runs each project's migrations (in parallel) and keeps a dump
    of the resulting empty schemas in ``<root>/cache``, keyed by the packages'
    versions; later starts load that dump instead, which takes seconds rather
    than a minute or two. The dump holds no secrets: it is taken before keystone
    is bootstrapped, and without the rows of nova's cell mappings (which name the
    database and RabbitMQ passwords); both are made afresh on every start.
    """
    cache = schema_cache(env, layout)
    if cache.is_file():
        log.info("[openstack] loading schemas from %s", cache)
        sql(env, layout, cache.read_text(), timeout=SYNC_TIMEOUT)
        _parallel(
            {
                "nova cells": lambda: _nova_cells(env, layout, s),
                "keystone": lambda: _keystone_bootstrap(env, layout, s),
            }
        )
        return f"restored from {cache}"
    _parallel(
        {
            "keystone": lambda: _keystone_sync(env, layout),
            "glance": lambda: _glance_chain(env, layout),
            "placement": lambda: _placement_chain(env, layout),
            "nova": lambda: _nova_chain(env, layout, s),
            "neutron": lambda: _neutron_chain(env, layout),
        }
    )
    _dump_schemas(env, layout, cache)
    _keystone_bootstrap(env, layout, s)
    return "migrated"


def schema_cache(env: LocalEnv, layout: Layout) -> Path:
    """Where the schema dump for the installed package versions lives."""
    packages = ["keystone", "glance-common", "placement-common", "nova-common"]
    packages += ["neutron-common", "mariadb-server"]
    fmt = "${Package}=${Version}\n"
    out = env.run(["dpkg-query", "-W", "-f", fmt, *packages], timeout=30).stdout
    digest = hashlib.sha256(out.encode()).hexdigest()[:16]
    return layout.root / "cache" / f"openstack-schemas-{digest}.sql"


def _dump_schemas(env: LocalEnv, layout: Layout, cache: Path) -> None:
    argv = ["/usr/bin/mariadb-dump", "--no-defaults", "-S", str(layout.mysql_socket)]
    argv += ["-u", "root", "--skip-dump-date", "--no-create-db"]
    argv += ["--ignore-table-data=nova_api.cell_mappings", "--databases"]
    dump = env.run([*argv, *config.DATABASES], timeout=SYNC_TIMEOUT).stdout
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial")
    partial.write_text(dump)
    partial.replace(cache)


def _parallel(steps: dict[str, Callable[[], None]]) -> None:
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        futures = {name: pool.submit(fn) for name, fn in steps.items()}
    errors = [
        f"{name}: {f.exception()}" for name, f in futures.items() if f.exception()
    ]
    if errors:
        raise LocalStackError("schema setup failed:\n" + "\n".join(errors))


def _keystone_sync(env: LocalEnv, layout: Layout) -> None:
    manage = ["/usr/bin/keystone-manage", "--config-file", str(layout.conf("keystone"))]
    env.run([*manage, "db_sync"], timeout=SYNC_TIMEOUT)


def _keystone_bootstrap(env: LocalEnv, layout: Layout, s: Secrets) -> None:
    manage = ["/usr/bin/keystone-manage", "--config-file", str(layout.conf("keystone"))]
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    env.run([*manage, "fernet_setup", *owner], timeout=60)
    env.run([*manage, "credential_setup", *owner], timeout=60)
    url = f"{config.KEYSTONE_URL}/v3/"
    # The password goes in the environment keystone-manage reads it from, never on
    # the command line (where `ps` and an error message would show it).
    env.run(
        [
            *manage,
            "bootstrap",
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
            "--bootstrap-region-id",
            REGION,
        ],
        timeout=120,
        env={"OS_BOOTSTRAP_PASSWORD": s.admin},
    )


def _glance_chain(env: LocalEnv, layout: Layout) -> None:
    conf = ["--config-file", str(layout.conf("glance"))]
    env.run(["/usr/bin/glance-manage", *conf, "db_sync"], timeout=SYNC_TIMEOUT)


def _placement_chain(env: LocalEnv, layout: Layout) -> None:
    conf = ["--config-file", str(layout.conf("placement"))]
    env.run(["/usr/bin/placement-manage", *conf, "db", "sync"], timeout=SYNC_TIMEOUT)


def _nova_chain(env: LocalEnv, layout: Layout, s: Secrets) -> None:
    manage = ["/usr/bin/nova-manage", "--config-file", str(layout.conf("nova"))]
    env.run([*manage, "api_db", "sync"], timeout=SYNC_TIMEOUT)
    _nova_cells(env, layout, s)
    env.run([*manage, "db", "sync"], timeout=SYNC_TIMEOUT)


def _nova_cells(env: LocalEnv, layout: Layout, s: Secrets) -> None:
    manage = ["/usr/bin/nova-manage", "--config-file", str(layout.conf("nova"))]
    cell0 = config.db_url(s, "nova_cell0")
    env.run(
        [*manage, "cell_v2", "map_cell0", "--database_connection", cell0], timeout=60
    )
    env.run([*manage, "cell_v2", "create_cell", "--name", "cell1"], timeout=60)


def _neutron_chain(env: LocalEnv, layout: Layout) -> None:
    conf = ["--config-file", str(layout.conf("neutron"))]
    conf += ["--config-file", str(layout.etc / "neutron" / "ml2_conf.ini")]
    argv = ["/usr/bin/neutron-db-manage", *conf, "upgrade", "heads"]
    env.run(argv, timeout=SYNC_TIMEOUT)


def register_services(clouds_yaml: Path, s: Secrets) -> None:
    """Service project, one user per service, and the catalog of endpoints."""
    conn: Any = connect(clouds_yaml, config.CLOUD_NAME)
    try:
        project = conn.identity.create_project(name="service", domain_id="default")
        role = conn.identity.find_role("admin")
        for name in config.SERVICE_USERS:
            user = conn.identity.create_user(
                name=name, password=s.service, domain_id="default"
            )
            conn.identity.assign_project_role_to_user(project, user, role)
        for kind, name, url in _catalog():
            svc = conn.identity.create_service(name=name, type=kind)
            for interface in ("public", "internal", "admin"):
                conn.identity.create_endpoint(
                    service_id=svc.id, interface=interface, url=url, region_id=REGION
                )
    finally:
        conn.close()


def _catalog() -> list[tuple[str, str, str]]:
    return [
        ("image", "glance", f"http://{HOST}:{PORTS['glance-api']}"),
        ("placement", "placement", f"http://{HOST}:{PORTS['placement-api']}"),
        ("compute", "nova", f"http://{HOST}:{PORTS['nova-api']}/v2.1"),
        ("network", "neutron", f"http://{HOST}:{PORTS['neutron-api']}"),
    ]


def discover_compute(env: LocalEnv, layout: Layout, timeout: float) -> None:
    """Wait for nova-compute's node and its resource provider, then map the host."""
    query = (
        "SELECT (SELECT COUNT(*) FROM nova.compute_nodes WHERE deleted = 0)"
        " + 0, (SELECT COUNT(*) FROM placement.resource_providers);"
    )
    wait_for(
        "[openstack] compute node registered (nodes, resource providers)",
        lambda: sql(env, layout, query).split(),
        lambda counts: len(counts) == 2 and all(int(c) > 0 for c in counts),
        timeout=timeout,
        interval=0.5,
    )
    manage = ["/usr/bin/nova-manage", "--config-file", str(layout.conf("nova"))]
    env.run([*manage, "cell_v2", "discover_hosts", "--verbose"], timeout=60)
