"""The local cloud's configuration files, all under ``<root>/openstack/etc``.

Nothing in /etc is edited: every daemon is started with these files. Passwords are
generated per stack (``Secrets``) and kept in ``<root>/openstack/secrets.json``
(mode 0600). Every service binds 127.0.0.1 and runs one or two workers, which is
what two cores can carry.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
REGION = "RegionOne"
CLOUD_NAME = "meshstack-local"
DB_USER = "meshstack"
RABBIT_USER = "meshstack"
RABBIT_VHOST = "meshstack"
DATABASES = (
    "keystone",
    "glance",
    "placement",
    "nova_api",
    "nova",
    "nova_cell0",
    "neutron",
)
SERVICE_USERS = ("glance", "placement", "nova", "neutron")
KEYSTONE_URL = f"http://{HOST}:5000"
PORTS = {
    "mariadb": 3306,
    "epmd": 4369,
    "rabbitmq": 5672,
    "rabbitmq-dist": 25672,
    "keystone": 5000,
    "glance-api": 9292,
    "placement-api": 8778,
    "nova-api": 8774,
    "neutron-api": 9696,
}

Ini = dict[str, dict[str, str | int | bool]]


@dataclass(frozen=True)
class Secrets:
    """The passwords of one stack; made once per `local up`."""

    admin: str
    service: str
    database: str
    rabbit: str

    @classmethod
    def generate(cls) -> Secrets:
        # hex: safe in URLs, config files and SQL, and never starts with "-"
        return cls(*(secrets.token_hex(18) for _ in range(4)))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh)

    @classmethod
    def load(cls, path: Path) -> Secrets:
        return cls(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Layout:
    """Where the local cloud keeps its files."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root / "openstack"

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def pylib(self) -> Path:
        return self.base / "pylib"

    @property
    def mysql_socket(self) -> Path:
        return self.state / "mysql.sock"

    @property
    def secrets_file(self) -> Path:
        return self.base / "secrets.json"

    @property
    def instances(self) -> Path:
        return self.base / "instances"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    def conf(self, service: str) -> Path:
        return self.etc / service / f"{service}.conf"


def db_url(s: Secrets, database: str) -> str:
    return f"mysql+pymysql://{DB_USER}:{s.database}@{HOST}/{database}?charset=utf8"


def rabbit_url(s: Secrets) -> str:
    return f"rabbit://{RABBIT_USER}:{s.rabbit}@{HOST}:5672/{RABBIT_VHOST}"


def service_auth(s: Secrets, user: str) -> dict[str, str | int | bool]:
    """A [keystone_authtoken]-style section for one service user."""
    return {
        "www_authenticate_uri": KEYSTONE_URL,
        "auth_url": KEYSTONE_URL,
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": user,
        "password": s.service,
        "region_name": REGION,
    }


def render(sections: Ini) -> str:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    for name, values in sections.items():
        parser[name] = {k: _ini_value(v) for k, v in values.items()}
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _ini_value(v: str | int | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _common(layout: Layout, name: str) -> dict[str, str | int | bool]:
    return {
        "use_stderr": True,
        "debug": False,
        "state_path": str(layout.state / name),
    }


def keystone(layout: Layout, s: Secrets) -> Ini:
    keys = layout.state / "keystone"
    return {
        "DEFAULT": {"use_stderr": True},
        "database": {"connection": db_url(s, "keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": str(keys / "fernet-keys")},
        "fernet_receipts": {"key_repository": str(keys / "fernet-keys")},
        "credential": {"key_repository": str(keys / "credential-keys")},
        "cache": {"enabled": False},
        # bcrypt's cheapest cost: every password login (each service's token, the
        # harness's) costs ~0.3 s of CPU at the default 12 on a loaded 2-core box.
        # TODO: a lab-only shortcut; a production keystone keeps the default.
        "identity": {"password_hash_rounds": 4},
    }


def glance(layout: Layout, s: Secrets) -> Ini:
    store = layout.state / "glance"
    return {
        "DEFAULT": {
            **_common(layout, "glance"),
            "bind_host": HOST,
            "bind_port": PORTS["glance-api"],
            "workers": 1,
            "enabled_backends": "file:file",
        },
        "database": {"connection": db_url(s, "glance")},
        "glance_store": {"default_backend": "file"},
        "file": {"filesystem_store_datadir": str(store / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(store / "staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(store / "tasks")},
        "keystone_authtoken": service_auth(s, "glance"),
        "paste_deploy": {
            "flavor": "keystone",
            "config_file": "/etc/glance/glance-api-paste.ini",
        },
        "oslo_concurrency": {"lock_path": str(store / "lock")},
    }


def placement(layout: Layout, s: Secrets) -> Ini:
    return {
        "DEFAULT": {"use_stderr": True},
        "api": {"auth_strategy": "keystone"},
        "placement_database": {"connection": db_url(s, "placement")},
        "keystone_authtoken": service_auth(s, "placement"),
    }


def nova(layout: Layout, s: Secrets) -> Ini:
    state = layout.state / "nova"
    return {
        "DEFAULT": {
            **_common(layout, "nova"),
            "host": "meshstack-compute",
            "my_ip": HOST,
            "transport_url": rabbit_url(s),
            "compute_driver": "meshstack_nova_driver.NamespaceDriver",
            "enabled_apis": "osapi_compute",
            "osapi_compute_listen": HOST,
            "osapi_compute_workers": 1,
            "instances_path": str(state / "instances"),
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": str(layout.etc / "nova" / "api-paste.ini")},
        "api_database": {"connection": db_url(s, "nova_api")},
        "database": {"connection": db_url(s, "nova")},
        "keystone_authtoken": service_auth(s, "nova"),
        "placement": service_auth(s, "placement"),
        # A call to neutron that hangs fails after this, instead of a spawn
        # waiting for its port forever.
        "neutron": {**service_auth(s, "neutron"), "timeout": 60},
        "glance": {"region_name": REGION},
        "conductor": {"workers": 1},
        "scheduler": {"workers": 1, "max_attempts": 1},
        "vnc": {"enabled": False},
        "oslo_concurrency": {"lock_path": str(state / "lock")},
        "oslo_messaging_notifications": {"driver": "noop"},
    }


def neutron(layout: Layout, s: Secrets) -> Ini:
    state = layout.state / "neutron"
    return {
        "DEFAULT": {
            **_common(layout, "neutron"),
            "bind_host": HOST,
            "core_plugin": "ml2",
            "service_plugins": "router",
            "auth_strategy": "keystone",
            "transport_url": rabbit_url(s),
            "api_workers": 1,
            "rpc_workers": 1,
            "rpc_state_report_workers": 1,
            "notify_nova_on_port_status_changes": False,
            "notify_nova_on_port_data_changes": False,
            "dhcp_agent_notification": False,
        },
        "database": {"connection": db_url(s, "neutron")},
        "keystone_authtoken": service_auth(s, "neutron"),
        "oslo_concurrency": {"lock_path": str(state / "lock")},
        "oslo_messaging_notifications": {"driver": "noop"},
    }


def ml2() -> Ini:
    return {
        "ml2": {
            "type_drivers": "local,flat",
            "tenant_network_types": "local",
            "mechanism_drivers": "meshstack_bindall",
            "extension_drivers": "port_security",
        },
        "securitygroup": {"enable_security_group": True, "firewall_driver": "noop"},
    }


# APIs whose WSGI entry point monkey-patches the process with eventlet (nova's
# and neutron's do, on import). eventlet's hub belongs to one native thread: under
# several uwsgi threads a green lock taken in one thread and released in another
# fails ("greenlet.error: cannot switch to a different thread") and leaves its
# waiter stuck, so a request, then the API, hangs. These run as single-threaded
# processes instead, as their projects deploy them.
EVENTLET_APIS = frozenset({"nova", "neutron"})


def uwsgi(name: str, port: int, wsgi_file: str, extra: list[tuple[str, str]]) -> str:
    """A uwsgi ini for one API, loopback only. A plain WSGI app runs as one process
    of eight threads (a few requests stuck on a slow RPC must not stop the API from
    answering others); an eventlet-patched one as two single-threaded processes.

    The packaged inis are not used: they bind every address, run 8-16 processes
    and (keystone) ask for an AppArmor profile uwsgi cannot enter here.
    """
    processes, threads = (2, 1) if name in EVENTLET_APIS else (1, 8)
    lines = [
        "[uwsgi]",
        f"http-socket = {HOST}:{port}",
        "plugins = python3",
        "master = true",
        f"processes = {processes}",
        f"threads = {threads}",
        "enable-threads = true",
        "lazy-apps = true",
        "die-on-term = true",
        "no-orphans = true",
        "buffer-size = 65535",
        # uwsgi's http-socket closes each connection after one response: say so,
        # or clients that reuse connections see "Remote end closed connection".
        "add-header = Connection: close",
        "http-auto-chunked = true",
        "http-chunked-input = true",
        "http-raw-body = true",
        "wsgi-manage-chunked-input = true",
        f"name = {name}",
        f"wsgi-file = {wsgi_file}",
    ]
    lines += [f"{key} = {value}" for key, value in extra]
    return "\n".join(lines) + "\n"


def clouds_yaml(s: Secrets) -> dict[str, object]:
    return {
        "clouds": {
            CLOUD_NAME: {
                "auth": {
                    "auth_url": f"{KEYSTONE_URL}/v3",
                    "username": "admin",
                    "password": s.admin,
                    "project_name": "admin",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": REGION,
                "identity_api_version": 3,
                "interface": "public",
            }
        }
    }
