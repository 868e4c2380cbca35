"""The local cloud's daemons: their files and their command lines.

Each daemon's command line follows what ``/etc/init.d/<service> show-args`` prints
for the Debian package, pointed at our own files under ``<root>/openstack/etc``
and bound to 127.0.0.1. Daemons run as root: nova-compute needs it to make
namespaces, and the others keep their state under ``<root>``, not in the
packages' /var/lib directories.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from meshstack.local.openstack import config
from meshstack.local.openstack.config import HOST, PORTS, Layout, Secrets

PLUGINS = Path(__file__).with_name("plugins")
PLUGIN_MODULES = (
    "meshstack_nova_driver.py",
    "meshstack_nova_compute.py",
    "meshstack_ml2.py",
    "meshstack_neutron_api.py",
)
NEUTRON_API = "meshstack_neutron_api.py"
PLUGIN_DIST = "meshstack_cloud_plugins-0.1.dist-info"
UWSGI = "/usr/bin/uwsgi_python311"


@dataclass(frozen=True)
class Daemon:
    """One process the local cloud runs; ``url`` answers once it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None


def write_files(layout: Layout, s: Secrets) -> None:
    """Write every configuration file and the plugin path the daemons load."""
    _write_ini(layout.conf("keystone"), config.keystone(layout, s))
    _write_ini(layout.conf("glance"), config.glance(layout, s))
    _write_ini(layout.conf("placement"), config.placement(layout, s))
    _write_ini(layout.conf("nova"), config.nova(layout, s))
    _write_ini(layout.conf("neutron"), config.neutron(layout, s))
    _write_ini(layout.etc / "neutron" / "ml2_conf.ini", config.ml2())
    shutil.copyfile("/etc/nova/api-paste.ini", layout.etc / "nova" / "api-paste.ini")
    _write_uwsgi(layout)
    _write_rabbitmq(layout, s)
    _write_plugins(layout)
    for sub in ("glance/images", "glance/staging", "glance/tasks", "nova", "neutron"):
        (layout.state / sub).mkdir(parents=True, exist_ok=True)


def _write_ini(path: Path, sections: config.Ini) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.render(sections))
    path.chmod(0o600)


def _write_uwsgi(layout: Layout) -> None:
    etc = layout.etc
    apis = {
        "keystone": ("/usr/bin/keystone-wsgi-public", "OS_KEYSTONE_CONFIG_DIR"),
        "placement": ("/usr/bin/placement-api", "OS_PLACEMENT_CONFIG_DIR"),
        "nova": ("/usr/bin/nova-api-wsgi", "OS_NOVA_CONFIG_DIR"),
        "neutron": (str(layout.pylib / NEUTRON_API), "OS_NEUTRON_CONFIG_DIR"),
    }
    for service, (wsgi_file, dir_var) in apis.items():
        # The services find their files through these variables (not credentials).
        extra = [("env", f"{dir_var}={etc / service}"), ("chdir", str(layout.state))]
        if service == "neutron":
            extra += [
                ("env", "OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini"),
                ("pythonpath", str(layout.pylib)),
            ]
        port = PORTS["keystone" if service == "keystone" else f"{service}-api"]
        text = config.uwsgi(service, port, wsgi_file, extra)
        (etc / service / "uwsgi.ini").write_text(text)


def _write_rabbitmq(layout: Layout, s: Secrets) -> None:
    d = layout.etc / "rabbitmq"
    d.mkdir(parents=True, exist_ok=True)
    (d / "rabbitmq.conf").write_text(
        "\n".join(
            [
                f"listeners.tcp.1 = {HOST}:{PORTS['rabbitmq']}",
                f"default_user = {config.RABBIT_USER}",
                f"default_pass = {s.rabbit}",
                f"default_vhost = {config.RABBIT_VHOST}",
                "default_permissions.configure = .*",
                "default_permissions.read = .*",
                "default_permissions.write = .*",
                "loopback_users = none",
                "log.console = true",
                "log.file = false",
                "",
            ]
        )
    )
    (d / "rabbitmq.conf").chmod(0o600)
    (d / "enabled_plugins").write_text("[].\n")
    (d / "rabbitmq-env.conf").write_text("# meshstack: settings come from the env\n")


def _write_plugins(layout: Layout) -> None:
    lib = layout.pylib
    lib.mkdir(parents=True, exist_ok=True)
    for module in PLUGIN_MODULES:
        shutil.copyfile(PLUGINS / module, lib / module)
    # neutron finds mechanism drivers only through entry points.
    dist = lib / PLUGIN_DIST
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: meshstack-cloud-plugins\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[neutron.ml2.mechanism_drivers]\n"
        "meshstack_bindall = meshstack_ml2:BindEveryPortDriver\n"
    )


def mariadb(layout: Layout) -> Daemon:
    datadir = layout.state / "mysql"
    return Daemon(
        "mariadb",
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={layout.mysql_socket}",
            f"--pid-file={layout.state / 'mysql.pid'}",
            f"--bind-address={HOST}",
            f"--port={PORTS['mariadb']}",
            "--user=root",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=128M",
            # A throwaway lab database: durability traded for start time (one
            # tablespace, no doublewrite, no fsync: ~500 tables load in seconds).
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-file-per-table=0",
            "--innodb-doublewrite=0",
            "--innodb-flush-method=nosync",
            "--max-connections=400",
            "--character-set-server=utf8mb4",
        ],
    )


def epmd() -> Daemon:
    return Daemon("epmd", ["/usr/bin/epmd", "-address", HOST])


def rabbitmq(layout: Layout) -> Daemon:
    d = layout.etc / "rabbitmq"
    state = layout.state / "rabbitmq"
    env = {
        "HOME": str(state),
        "RABBITMQ_NODENAME": "meshstack@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(PORTS["rabbitmq"]),
        "RABBITMQ_DIST_PORT": str(PORTS["rabbitmq-dist"]),
        "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(state / "mnesia"),
        "RABBITMQ_LOG_BASE": str(state / "log"),
        "RABBITMQ_PID_FILE": str(state / "rabbitmq.pid"),
        "ERL_EPMD_ADDRESS": HOST,
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface "
        "{127,0,0,1}",
    }
    return Daemon("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env)


def apis(layout: Layout) -> list[Daemon]:
    """The daemons started once keystone answers, in start order."""
    etc = layout.etc
    plugins = {
        "PYTHONPATH": str(layout.pylib),
        "MESHSTACK_LOCAL_ROOT": str(layout.root),
    }
    nova = ["--config-file", str(layout.conf("nova"))]
    compute = str(layout.pylib / "meshstack_nova_compute.py")
    neutron = [
        f"--config-file={layout.conf('neutron')}",
        f"--config-file={etc / 'neutron' / 'ml2_conf.ini'}",
    ]
    return [
        Daemon(
            "glance-api",
            ["/usr/bin/glance-api", f"--config-file={layout.conf('glance')}"],
            url=f"http://{HOST}:{PORTS['glance-api']}/versions",
        ),
        _uwsgi(etc, "placement", PORTS["placement-api"], "/"),
        _uwsgi(etc, "neutron", PORTS["neutron-api"], "/", plugins),
        Daemon(
            "neutron-rpc-server", ["/usr/bin/neutron-rpc-server", *neutron], plugins
        ),
        _uwsgi(etc, "nova", PORTS["nova-api"], "/"),
        Daemon("nova-conductor", ["/usr/bin/nova-conductor", *nova]),
        Daemon("nova-scheduler", ["/usr/bin/nova-scheduler", *nova]),
        Daemon("nova-compute", ["/usr/bin/python3", compute, *nova], plugins),
    ]


def keystone(layout: Layout) -> Daemon:
    return _uwsgi(layout.etc, "keystone", PORTS["keystone"], "/v3")


def _uwsgi(
    etc: Path, service: str, port: int, path: str, env: dict[str, str] | None = None
) -> Daemon:
    name = "keystone" if service == "keystone" else f"{service}-api"
    argv = [UWSGI, "--ini", str(etc / service / "uwsgi.ini")]
    return Daemon(name, argv, env or {}, url=f"http://{HOST}:{port}{path}")


NEED_USERS_AT_START = ("nova-conductor", "nova-scheduler", "nova-compute")

# Stop order: the reverse of start, with neutron's RPC server before RabbitMQ
# (it ignores SIGTERM once RabbitMQ is gone).
STOP_ORDER = (
    "nova-compute",
    "nova-api",
    "nova-scheduler",
    "nova-conductor",
    "neutron-rpc-server",
    "neutron-api",
    "placement-api",
    "glance-api",
    "keystone",
    "rabbitmq",
    "epmd",
    "mariadb",
)
