"""The local cloud: a real OpenStack whose servers are namespaces answering SSH.

One cloud is started for the session (tests.local.openstack_support); the last
test here stops it and checks that nothing is left. Times are printed and kept
as user properties (``--junitxml`` shows them).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml

from meshstack.local import openstack
from meshstack.local.env import LocalStackError
from meshstack.local.openstack import config, servers, services
from meshstack.providers.cloud_openstack import connect
from tests.local.openstack_support import SharedCloud, forget, shared_cloud

pytestmark = [pytest.mark.xdist_group("openstack")]


@pytest.fixture(scope="module")
def cloud(request: pytest.FixtureRequest) -> SharedCloud:
    return shared_cloud(request.config)


@pytest.fixture(scope="module")
def conn(cloud: SharedCloud) -> Iterator[Any]:
    c = connect(cloud.clouds_yaml, config.CLOUD_NAME)
    yield c
    c.close()


def _ip(*args: str) -> str:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    return res.stdout


def _listeners() -> list[str]:
    res = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 0, res.stderr
    return [line.split()[3] for line in res.stdout.splitlines()]


def test_a_started_cloud_reports_up_and_writes_a_clouds_yaml_for_loopback(
    cloud: SharedCloud, record_property: Any
) -> None:
    record_property("start_seconds", round(cloud.start_seconds, 1))
    record_property("rss_now_mib", openstack.lifecycle.rss_mib(cloud.env))
    record_property("rss_mib", cloud.facts["rss_mib"])
    print(f"start {cloud.start_seconds:.1f}s, facts {cloud.facts}")
    assert openstack.status(cloud.env)["up"], openstack.status(cloud.env)
    data = yaml.safe_load(cloud.clouds_yaml.read_text())
    entry = data["clouds"]["meshstack-local"]
    assert entry["auth"]["auth_url"] == "http://127.0.0.1:5000/v3"
    assert len(entry["auth"]["password"]) >= 20
    assert cloud.clouds_yaml.stat().st_mode & 0o077 == 0


def test_every_cloud_port_listens_on_loopback_only(cloud: SharedCloud) -> None:
    listeners = _listeners()
    for name, port in config.PORTS.items():
        bound = [a for a in listeners if a.rsplit(":", 1)[1] == str(port)]
        assert bound, f"{name}: nothing listens on port {port}: {listeners}"
        loopback = all(a.startswith(("127.0.0.1:", "[::1]:")) for a in bound)
        assert loopback, (name, bound)


def test_concurrent_requests_leave_the_eventlet_apis_answering_without_green_errors(
    cloud: SharedCloud, conn: Any
) -> None:
    # nova-api and neutron-api monkey-patch themselves with eventlet; run under
    # several uwsgi threads they logged "cannot switch to a different thread" under
    # concurrent requests, and a stuck green lock once left POST /servers to time
    # out. Ports are among the reads: a fresh neutron API process once failed to
    # list them (its database mappers were set up on first query). Bounded: 48
    # reads, 8 at a time.
    from concurrent.futures import ThreadPoolExecutor

    marker = "cannot switch to a different thread"
    logs = [cloud.env.log(name) for name in ("nova-api", "neutron-api")]
    before = [log.read_text(errors="replace").count(marker) for log in logs]
    calls = [
        lambda: list(conn.compute.servers()),
        lambda: list(conn.compute.keypairs()),
        lambda: list(conn.network.networks()),
        lambda: list(conn.network.ports()),
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: calls[i % 4](), range(48)))
    assert len(answers) == 48
    after = [log.read_text(errors="replace").count(marker) for log in logs]
    assert after == before, dict(zip([log.name for log in logs], after, strict=True))


def test_starting_again_while_up_refuses_with_one_message_and_changes_nothing(
    cloud: SharedCloud,
) -> None:
    pids = {n: cloud.env.pid(n) for n in services.STOP_ORDER}
    with pytest.raises(LocalStackError, match="already .*running.*local down"):
        openstack.start(cloud.env)
    assert {n: cloud.env.pid(n) for n in services.STOP_ORDER} == pids
    assert openstack.status(cloud.env)["up"]


def _make_network(conn: Any) -> tuple[Any, Any]:
    net = conn.network.create_network(name="selftest-net")
    sub = conn.network.create_subnet(
        network_id=net.id, cidr="198.18.10.0/24", ip_version=4, enable_dhcp=False
    )
    return net, sub


def _hostname_over_ssh(address: str, key: asyncssh.SSHKey) -> str:
    async def run() -> str:
        async with asyncssh.connect(
            address,
            username="root",
            client_keys=[key],
            known_hosts=None,
            agent_path=None,
            config=[],
            connect_timeout=10,
        ) as c:
            res = await c.run("hostname", check=True, timeout=10)
            return str(res.stdout).strip()

    return asyncio.run(run())


def test_a_server_is_a_namespace_answering_ssh_as_its_name_until_deleted(
    cloud: SharedCloud, conn: Any, record_property: Any
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    image = conn.image.create_image(
        "selftest-image", data=b"\0" * 4096, disk_format="raw", container_format="bare"
    )
    flavor = conn.compute.create_flavor(name="selftest", vcpus=1, ram=64, disk=1)
    conn.compute.create_keypair(
        name="selftest", public_key=key.export_public_key().decode()
    )
    net, _ = _make_network(conn)
    began = time.monotonic()
    server = conn.create_server(
        "selftest-node",
        image=image.id,
        flavor=flavor.id,
        nics=[{"net-id": net.id}],
        key_name="selftest",
        auto_ip=False,
        wait=False,
    )
    server = conn.compute.wait_for_server(server, wait=120, interval=1)
    active = time.monotonic() - began
    record_property("server_active_seconds", round(active, 2))
    address = server.addresses["selftest-net"][0]["addr"]
    netns = "ms-" + server.id.replace("-", "")[:8]

    assert netns in _ip("netns", "list")
    assert address in _ip("-n", netns, "-br", "addr")
    node_dir = cloud.env.root / "nodes" / "selftest-node"
    assert key.export_public_key().decode().split()[1] in (
        (node_dir / "authorized_keys").read_text()
    )
    began = time.monotonic()
    assert _hostname_over_ssh(address, key) == "selftest-node"
    record_property("ssh_seconds", round(time.monotonic() - began, 2))
    print(f"server ACTIVE after {active:.1f}s at {address} in {netns}")

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60, interval=1)
    assert netns not in _ip("netns", "list")
    assert "msv" + server.id[:8] not in _ip("-br", "link")
    assert not node_dir.exists()
    for cleanup in (
        lambda: conn.network.delete_network(net),
        lambda: conn.compute.delete_keypair("selftest"),
        lambda: conn.compute.delete_flavor(flavor),
        lambda: conn.image.delete_image(image),
    ):
        cleanup()


def test_a_server_whose_namespace_cannot_be_made_goes_to_error_with_the_reason(
    cloud: SharedCloud, conn: Any
) -> None:
    # A server with no port at all: the driver refuses it with a message.
    image = conn.image.create_image(
        "selftest-image-2",
        data=b"\0" * 4096,
        disk_format="raw",
        container_format="bare",
    )
    flavor = conn.compute.create_flavor(name="selftest-2", vcpus=1, ram=64, disk=1)
    try:
        server = conn.compute.create_server(
            name="selftest-noport",
            image_id=image.id,
            flavor_id=flavor.id,
            networks="none",
        )
        server = conn.compute.wait_for_server(
            server, status="ERROR", failures=["ACTIVE"], wait=120, interval=1
        )
        assert "no port" in (server.fault or {}).get("message", ""), server.fault
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)
    finally:
        conn.compute.delete_flavor(flavor)
        conn.image.delete_image(image)


def test_stop_leaves_no_daemon_namespace_bridge_database_or_broker_behind(
    cloud: SharedCloud, conn: Any, record_property: Any
) -> None:
    if not cloud.owned:
        pytest.skip("the cloud in use is the running local stack's: not stopping it")
    # A server left running: stop must remove its namespace and sshd too.
    key = asyncssh.generate_private_key("ssh-ed25519")
    image = conn.image.create_image(
        "left", data=b"\0" * 4096, disk_format="raw", container_format="bare"
    )
    flavor = conn.compute.create_flavor(name="left", vcpus=1, ram=64, disk=1)
    conn.compute.create_keypair(
        name="left", public_key=key.export_public_key().decode()
    )
    net, _ = _make_network(conn)
    server = conn.create_server(
        "left-node",
        image=image.id,
        flavor=flavor.id,
        nics=[{"net-id": net.id}],
        key_name="left",
        auto_ip=False,
        wait=True,
        timeout=120,
    )
    netns = "ms-" + server.id.replace("-", "")[:8]
    assert netns in _ip("netns", "list")
    pids = [cloud.env.pid(n) for n in services.STOP_ORDER]
    assert all(pids), pids

    began = time.monotonic()
    openstack.stop(cloud.env)
    forget()
    record_property("stop_seconds", round(time.monotonic() - began, 1))

    assert not any(Path(f"/proc/{p}").exists() for p in pids if p)
    assert netns not in _ip("netns", "list")
    assert not servers.bridge_exists(cloud.env)
    layout = config.Layout(cloud.env.root)
    assert not (layout.state / "mysql").exists()
    assert not (layout.state / "rabbitmq").exists()
    assert not layout.clouds_yaml.exists()
    assert not (cloud.env.root / "nodes" / "left-node").exists()
    assert not [a for a in _listeners() if re.search(r":(3306|5672|5000|8774)$", a)]
    assert openstack.status(cloud.env) == {"up": False, "detail": "not running"}


def test_install_runs_no_apt_when_every_package_is_present(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meshstack.local.openstack import packages

    if packages.missing():
        pytest.skip(f"packages missing here: {packages.missing()}")
    calls: list[list[str]] = []
    real_run = packages._run

    def recording_run(argv: list[str], timeout: float, check: bool = True) -> Any:
        calls.append(argv)
        return real_run(argv, timeout, check)

    monkeypatch.setattr(packages, "_run", recording_run)

    assert packages.install() == []
    assert [argv[0] for argv in calls] == ["dpkg-query"]


def test_a_package_dpkg_does_not_know_counts_as_missing() -> None:
    from meshstack.local.openstack import packages

    assert packages.missing(("openssh-client", "meshstack-no-such-package")) == [
        "meshstack-no-such-package"
    ]
