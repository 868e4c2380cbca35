"""The cloud layer on OpenStack: image, keypair, flavor, network and servers.

Everything goes through openstacksdk, configured *only* from the clouds.yaml the
profile names: never ``~/.config/openstack``, ``/etc/openstack`` or ``OS_*``
variables. Each resource is written to the state file as soon as the API returns
its id, before any wait, and carries the run id (``meshstack-run=<run id>``: a
Glance or Neutron tag, a server's metadata), so ``teardown`` removes exactly what
this run made and :func:`sweep` finds what a lost run left.

Errors are judged by the ``openstack-error`` analyzer from the API's own message.
A login the cloud refuses (HTTP 401) is HARNESS-ERROR ``credentials_missing``, as
that analyzer decides: the credentials are the harness's input, and a wrong
password is as unusable as an absent one; the stack itself is not at fault.
An API that does not answer is FAIL ``api_unreachable``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import asyncssh
import keystoneauth1.exceptions as ks_exc
import openstack.config
import openstack.connection
import openstack.exceptions as os_exc

from meshstack import clock
from meshstack.providers import cloud_openstack_checks as checks
from meshstack.providers.base import Provider, ProviderError
from meshstack.providers.cloud_openstack_checks import RUN_KEY
from meshstack.providers.cloud_openstack_servers import ServerBuilding
from meshstack.verdicts import Finding, harness_error

log = logging.getLogger(__name__)

_S = {"type": "str", "required": True}
SETTINGS_SCHEMA: dict[str, Any] = {
    "clouds_yaml": {"type": "path", "required": True},
    "cloud": _S,
    "image": {
        "type": "dict",
        "required": True,
        "keys": {
            "name": _S,
            "file": {"type": "path", "required": True},
            "disk_format": {"type": "str", "default": "raw"},
            "container_format": {"type": "str", "default": "bare"},
        },
    },
    "flavor": {
        "type": "dict",
        "required": True,
        "keys": {
            "name": _S,
            "vcpus": {"type": "int", "default": 1, "min": 1},
            "ram": {"type": "int", "default": 512, "min": 1},
            "disk": {"type": "int", "default": 1},
        },
    },
    "keypair": {
        "type": "dict",
        "required": True,
        "keys": {"name": _S, "private_key_file": {"type": "path"}},
    },
    "network": {
        "type": "dict",
        "required": True,
        "keys": {"name": _S, "cidr": {"type": "cidr", "required": True}},
    },
    "servers": {
        "type": "list",
        "required": True,
        "items": {"type": "dict", "keys": {"name": _S, "role": _S}},
    },
    "ssh": {"type": "dict", "default": {"user": "root"}, "keys": {"user": _S}},
    "api_timeout": {"type": "seconds", "default": 30},
    "image_active_timeout": {"type": "seconds", "default": 120},
    "image_active_interval": {"type": "seconds", "default": 0.5},
    "server_active_timeout": {"type": "seconds", "default": 120},
    "server_active_interval": {"type": "seconds", "default": 1.0},
    "ssh_timeout": {"type": "seconds", "default": 60},
    "ssh_interval": {"type": "seconds", "default": 0.5},
    "delete_timeout": {"type": "seconds", "default": 120},
}


def connect(
    clouds_yaml: Path, cloud: str, api_timeout: float = 30
) -> openstack.connection.Connection:
    """A connection built only from this clouds.yaml: no home dir, /etc or OS_*."""
    if not clouds_yaml.is_file():
        raise FileNotFoundError(f"clouds.yaml {clouds_yaml} does not exist")
    cfg = openstack.config.OpenStackConfig(
        config_files=[str(clouds_yaml)],
        vendor_files=[],
        secure_files=[],
        load_envvars=False,
    )
    region = cfg.get_one(cloud=cloud, api_timeout=api_timeout)
    return openstack.connection.Connection(config=region)


API_ERRORS = (os_exc.SDKException, ks_exc.ClientException)


class OpenStackCloud(ServerBuilding, Provider):
    layer = "cloud"

    def __init__(self, settings: dict[str, Any], ctx: Any) -> None:
        super().__init__(settings, ctx)
        self._conn: openstack.connection.Connection | None = None

    # -- plumbing -----------------------------------------------------------------
    @property
    def tag(self) -> str:
        return f"{RUN_KEY}={self.ctx.run_id}"

    @property
    def conn(self) -> Any:
        if self._conn is None:
            path = self.ctx.path(self.settings["clouds_yaml"])
            try:
                self._conn = connect(path, self.settings["cloud"], self.api_timeout)
            except (FileNotFoundError, os_exc.ConfigException) as exc:
                msg = (
                    f"cloud.clouds_yaml: expected cloud {self.settings['cloud']!r} in "
                    f"{path}: {exc}; start the cloud (`meshstack local up`) or fix "
                    "the profile"
                )
                raise ProviderError(
                    harness_error("cloud", "credentials_missing", msg), msg
                ) from exc
        return self._conn

    @property
    def api_timeout(self) -> float:
        return float(self.settings.get("api_timeout", 30))

    def call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call; any failure becomes a ProviderError judged from its body.

        ``fn`` is a callable or a path on the connection (``"image.get_image"``).
        """
        log.debug("[cloud] %s", doing)
        try:
            if isinstance(fn, str):  # resolved here: the first use logs in
                fn = functools.reduce(getattr, fn.split("."), self.conn)
            return fn(*args, **kwargs)
        except API_ERRORS as exc:
            finding = checks.judge_error(exc, doing)
            raise ProviderError(finding, f"cloud: {doing} failed: {exc}") from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _record(self, type_: str, id_: str, **attrs: Any) -> None:
        self.ctx.record("cloud", type_, id_, **attrs)
        log.info("[cloud/%s] created %s %s", attrs.get("name", id_), type_, id_)

    # -- provisioning ---------------------------------------------------------------
    def provision(self) -> None:
        self.ctx.progress("cloud", "image")
        image_id = self._image()
        key_file, key_name = self._keypair()
        flavor_id = self._flavor()
        self.ctx.progress("cloud", "network")
        net_id = self._network()
        self.ctx.progress("cloud", "servers")
        ids = [
            self._server(s["name"], image_id, flavor_id, net_id, key_name)
            for s in self.settings["servers"]
        ]
        self._wait_image_active(image_id)
        # One deadline for all servers: they were requested together.
        deadline = clock.monotonic() + self.settings["server_active_timeout"]
        servers = [self._wait_active(i, deadline) for i in ids]
        out = [self._describe(s, key_file) for s in servers]
        self.state.outputs.update(
            servers=out,
            network={"id": net_id, "name": self.settings["network"]["name"]},
            cidr=self.settings["network"]["cidr"],
            image_id=image_id,
            keypair=key_name,
        )
        self.ctx.save()
        self.ctx.progress("cloud", "ssh")
        for server in out:
            self._wait_ssh(server)

    def _image(self) -> str:
        spec = self.settings["image"]
        path = self.ctx.path(spec["file"])
        if not path.is_file():
            msg = f"cloud.image.file: expected an image file at {path}, found none"
            raise ProviderError(harness_error("cloud", "unrecognised_input", msg), msg)
        # Created empty first, so that its id is recorded before the upload.
        img = self.call(
            f"creating image {spec['name']}",
            "image.create_image",
            spec["name"],
            disk_format=spec["disk_format"],
            container_format=spec["container_format"],
            tags=[self.tag],
            allow_duplicates=True,
        )
        self._record("image", img.id, name=spec["name"])
        with path.open("rb") as fh:
            self.call(f"uploading {path}", img.upload, self.conn.image, data=fh)
        return str(img.id)

    def _wait_image_active(self, image_id: str) -> None:
        def status() -> str:
            img = self.call("reading image", "image.get_image", image_id)
            return str(img.status)

        self._wait(
            f"[cloud/image {image_id}] active",
            status,
            lambda s: s == "active",
            self.settings["image_active_timeout"],
            interval=self.settings["image_active_interval"],
            terminal=lambda s: s in ("killed", "deleted", "deactivated"),
            code="image_not_active",
        )

    def _keypair(self) -> tuple[str, str]:
        spec = self.settings["keypair"]
        key_file = self._private_key(spec.get("private_key_file"))
        public = (
            asyncssh.read_private_key(key_file).export_public_key().decode().strip()
        )
        found = self.call("reading keypair", "compute.find_keypair", spec["name"])
        if found is not None:
            if found.public_key.split()[:2] != public.split()[:2]:
                msg = (
                    f"keypair {spec['name']!r} exists in the cloud with another public "
                    f"key than {key_file}'s: rename cloud.keypair.name or delete it"
                )
                raise ProviderError(
                    harness_error("cloud", "credentials_missing", msg), msg
                )
            return str(key_file), spec["name"]
        kp = self.call(
            f"creating keypair {spec['name']}",
            "compute.create_keypair",
            name=spec["name"],
            public_key=public,
        )
        self._record("keypair", kp.name, name=kp.name)
        return str(key_file), spec["name"]

    def _private_key(self, named: str | None) -> Path:
        if named:
            path = self.ctx.path(named)
            if not path.is_file():
                msg = f"cloud.keypair.private_key_file: {path} does not exist"
                raise ProviderError(
                    harness_error("cloud", "credentials_missing", msg), msg
                )
            return path
        path = Path(self.ctx.workdir) / "cloud_id_ed25519"
        if not path.exists():
            key = asyncssh.generate_private_key("ssh-ed25519", comment=self.tag)
            path.parent.mkdir(parents=True, exist_ok=True)
            key.write_private_key(str(path))
            path.chmod(0o600)
        return path

    def _flavor(self) -> str:
        spec = self.settings["flavor"]
        found = self.call("reading flavor", "compute.find_flavor", spec["name"])
        if found is not None:
            return str(found.id)
        flavor = self.call(
            f"creating flavor {spec['name']}",
            "compute.create_flavor",
            name=spec["name"],
            vcpus=spec["vcpus"],
            ram=spec["ram"],
            disk=spec["disk"],
        )
        self._record("flavor", flavor.id, name=spec["name"])
        return str(flavor.id)

    def _network(self) -> str:
        spec = self.settings["network"]
        net = self.call("creating network", "network.create_network", name=spec["name"])
        self._record("network", net.id, name=spec["name"])
        self._tag_neutron(net)
        sub = self.call(
            "creating subnet",
            "network.create_subnet",
            network_id=net.id,
            name=spec["name"],
            cidr=spec["cidr"],
            ip_version=4,
            enable_dhcp=False,
        )
        self._record("subnet", sub.id, name=spec["name"])
        self._tag_neutron(sub)
        router = self.call(
            "creating router", "network.create_router", name=spec["name"]
        )
        self._record("router", router.id, name=spec["name"])
        self._tag_neutron(router)
        self.call(
            "attaching subnet to router",
            "network.add_interface_to_router",
            router,
            subnet=sub.id,
        )
        self._record("router_interface", router.id, subnet_id=sub.id, name=spec["name"])
        return str(net.id)

    def _tag_neutron(self, resource: Any) -> None:
        self.call("tagging", "network.set_tags", resource, [self.tag])

    # -- probing and removing: see cloud_openstack_checks ---------------------------
    def probe(self) -> Finding:
        return checks.probe(self)

    def _guarded(self, doing: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except API_ERRORS as exc:
            finding = checks.judge_error(exc, doing)
            raise ProviderError(finding, f"cloud: {doing} failed: {exc}") from exc

    def judge(self, *parts: str) -> Finding:
        """Judge some of: image, keypair, servers, ssh (see checks.probe)."""
        unknown = set(parts) - set(checks.PARTS)
        if unknown:
            raise ValueError(f"unknown parts {sorted(unknown)}; known: {checks.PARTS}")
        return checks.probe(self, parts)

    def teardown(self) -> None:
        self._guarded("tearing down", checks.teardown, self)

    def sweep(self, run_id: str | None = None) -> list[str]:
        """Remove what any past run (or the one named) tagged; see checks.sweep."""
        return self._guarded("sweeping", lambda: checks.sweep(self.conn, run_id))


PROVIDER = OpenStackCloud
