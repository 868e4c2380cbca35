"""Probing and removing the OpenStack cloud layer (the provider's second half).

``probe`` judges what the state says this run made: the image active, the
keypair present, every server ACTIVE on the run's network, tagged with the run id
and answering SSH. ``teardown`` deletes exactly the recorded resources, newest
first, waiting for each server to be gone before the network under it goes.
``sweep`` removes whatever carries a past run's tag (``meshstack sweep``).
``judge_error`` and ``host_key`` are the helpers both halves use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import asyncssh
import openstack.exceptions as os_exc

from meshstack import analyzers, clock, ssh
from meshstack.analyzers import Context, Evidence
from meshstack.providers.base import ProviderError
from meshstack.verdicts import Finding
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

RUN_KEY = "meshstack-run"


def judge_error(exc: BaseException, doing: str) -> Finding:
    """The openstack-error analyzer's verdict on an exception and its body."""
    text = f"{type(exc).__name__}: {exc}"
    response = getattr(exc, "response", None)
    body = str(getattr(response, "text", "") or "") if response is not None else ""
    if body:
        text += "\n" + body
    finding = analyzers.get("openstack-error").judge(
        Evidence(text, name=doing), Context()
    )
    # what was being done, then the error once: the analyzer's evidence quotes the
    # message and body already
    quoted = "\n".join(finding.evidence)
    told = [ln[:300] for ln in text.splitlines() if ln.strip() and ln not in quoted]
    finding.evidence.insert(
        0, f"while {doing}" + (f": {' | '.join(told)[:500]}" if told else "")
    )
    return finding


def host_key(address: str, timeout: float = 10) -> str | None:
    """The SSH host key a server presents (OpenSSH format), None if it does not."""

    async def fetch() -> Any:
        return await asyncio.wait_for(
            asyncssh.get_server_host_key(address, 22, config=[]), timeout
        )

    try:
        key = asyncio.run(fetch())
    except (TimeoutError, OSError, asyncssh.Error):
        return None
    return key.export_public_key().decode().strip() if key is not None else None


# -- probe ------------------------------------------------------------------------


PARTS = ("image", "keypair", "servers", "ssh")


def probe(cloud: Any, parts: tuple[str, ...] = PARTS) -> Finding:
    """Judge the named parts of the layer from the live API and SSH.

    ``image``: the image is active; ``keypair``: it exists; ``servers``: each is
    ACTIVE on the run's network and tagged with the run id; ``ssh``: each answers
    SSH with the profile's key. An API failure is judged as the error it is.
    """
    finding = Finding(layer="cloud", kind="cloud-probe")
    outputs = cloud.state.outputs
    if not outputs.get("servers"):
        finding.add(
            "context_missing",
            "the state records no servers: provision the cloud layer first "
            "(--stack=fresh or reuse)",
        )
        return finding
    try:
        if "image" in parts:
            _probe_image(cloud, outputs["image_id"], finding)
        if "keypair" in parts:
            _probe_keypair(cloud, outputs["keypair"], finding)
        for server in outputs["servers"]:
            if "servers" in parts:
                _probe_server(cloud, server, outputs["network"]["name"], finding)
            if "ssh" in parts:
                _probe_ssh(server, finding)
    except ProviderError as exc:
        return exc.finding
    return finding


def _probe_image(cloud: Any, image_id: str, finding: Finding) -> None:
    img = cloud.call("reading image", "image.find_image", image_id)
    status = img.status if img is not None else "absent"
    finding.evidence.append(f"image {image_id}: {status}")
    if status != "active":
        finding.add("image_not_active", f"image {image_id} is {status}, not active")


def _probe_keypair(cloud: Any, name: str, finding: Finding) -> None:
    kp = cloud.call("reading keypair", "compute.find_keypair", name)
    finding.evidence.append(f"keypair {name}: {'present' if kp else 'absent'}")
    if kp is None:
        finding.add(
            "check_failed",
            f"keypair {name} is gone: servers made from now on would refuse the key",
            check="keypair present",
        )


def _probe_server(
    cloud: Any, server: dict[str, Any], net: str, finding: Finding
) -> None:
    name = server["name"]
    live = cloud.call(f"reading server {name}", "compute.find_server", server["id"])
    if live is None or live.status != "ACTIVE":
        status = live.status if live is not None else "absent"
        fault = (live.fault or {}).get("message", "") if live is not None else ""
        finding.evidence.append(f"server {name}: {status} {fault}".strip())
        finding.add("server_error_state", f"server {name} is {status}", fault=fault)
        return
    tagged = (live.metadata or {}).get(RUN_KEY)
    on_net = server["address"] in [a["addr"] for a in live.addresses.get(net, [])]
    finding.evidence.append(
        f"server {name}: ACTIVE, {net}={server['address']}, {RUN_KEY}={tagged}"
    )
    if tagged != cloud.ctx.run_id:
        finding.add(
            "check_failed",
            f"server {name} carries {RUN_KEY}={tagged!r}, not this run's "
            f"{cloud.ctx.run_id!r}: teardown and sweep would not find it",
            check="server tagged with the run id",
        )
    if not on_net:
        finding.add(
            "server_unreachable",
            f"server {name} has no address {server['address']} on network {net}",
        )


def _probe_ssh(server: dict[str, Any], finding: Finding) -> None:
    pinned, seen = server.get("host_key"), host_key(server["address"])
    if pinned and seen and seen != pinned:
        finding.add(
            "server_unreachable",
            f"{server['name']} at {server['address']} presents another SSH host key "
            "than at provisioning: another machine may hold its address; "
            "re-provision the cloud layer",
            server=server["name"],
        )
        return
    target = ssh.Target(
        host=server["address"],
        user=server["ssh_user"],
        key_file=Path(server["private_key_file"]),
        name=server["name"],
    )
    try:
        res = ssh.run(target, "hostname", timeout=10)
    except ssh.SSHError as exc:
        finding.add("server_unreachable", str(exc), server=server["name"])
        return
    finding.evidence.append(f"ssh {server['name']}: hostname -> {res.stdout.strip()}")
    if not res.ok:
        finding.add("server_unreachable", res.describe(), server=server["name"])


# -- teardown ---------------------------------------------------------------------


def teardown(cloud: Any) -> None:
    """Delete the recorded resources newest first; forget each once it is gone.

    Servers this run asked for but never learnt the id of (a create cut short) are
    found by the run's tag and deleted with the rest.
    """
    resources = list(reversed(cloud.state.resources))
    servers = [r for r in resources if r["type"] == "server"]
    servers += _unrecorded_servers(cloud, {r["id"] for r in servers})
    for res in servers:
        # openstacksdk's delete_* ignore a resource that is already gone.
        cloud.call(f"deleting server {res['id']}", "compute.delete_server", res["id"])
    for res in servers:
        _wait_gone(cloud, "server", res["id"], cloud.conn.compute.find_server)
        cloud.ctx.forget("cloud", "server", res["id"])
    for res in resources:
        if res["type"] == "server":
            continue
        _delete(cloud, res)
        cloud.ctx.forget("cloud", res["type"], res["id"])
    cloud.state.outputs.clear()
    cloud.ctx.save()


IN_FLIGHT_WAIT = 15.0


def _unrecorded_servers(cloud: Any, known: set[str]) -> list[dict[str, Any]]:
    """Servers tagged with this run that the state does not record; when a create
    was cut short, wait a little for Nova to show the server it was making."""
    creating = list(cloud.state.outputs.get("creating") or [])
    deadline = clock.monotonic() + (IN_FLIGHT_WAIT if creating else 0)
    while True:
        tagged = cloud.call(
            "listing this run's servers",
            lambda: [
                s
                for s in _servers_of(cloud.conn, lambda run: run == cloud.ctx.run_id)
                if s.id not in known
            ],
        )
        names = {s.name for s in tagged}
        if all(n in names for n in creating) or clock.monotonic() >= deadline:
            break
        clock.sleep(1.0)
    for s in tagged:
        log.info("[cloud/%s] found server %s by its tag: removing it", s.name, s.id)
        cloud.ctx.record("cloud", "server", s.id, name=s.name)
    return [{"type": "server", "id": s.id, "name": s.name} for s in tagged]


def _delete(cloud: Any, res: dict[str, Any]) -> None:
    conn, kind, id_ = cloud.conn, res["type"], res["id"]
    log.info("[cloud/%s] deleting %s %s", res.get("name", id_), kind, id_)
    if kind == "router_interface":
        _ignore_missing(
            lambda: conn.network.remove_interface_from_router(
                id_, subnet=res["subnet_id"]
            )
        )
        return
    deleters: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "router": (conn.network.delete_router, conn.network.find_router),
        "subnet": (conn.network.delete_subnet, conn.network.find_subnet),
        "network": (conn.network.delete_network, conn.network.find_network),
        "keypair": (conn.compute.delete_keypair, conn.compute.find_keypair),
        "flavor": (conn.compute.delete_flavor, conn.compute.find_flavor),
        "image": (conn.image.delete_image, conn.image.find_image),
    }
    if kind not in deleters:
        log.warning("[cloud] no way to delete a %s (%s): left in place", kind, id_)
        return
    delete, find = deleters[kind]
    _ignore_missing(lambda: cloud.call(f"deleting {kind} {id_}", delete, id_))
    _wait_gone(cloud, kind, id_, find)


def _ignore_missing(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except os_exc.NotFoundException:
        pass


def _wait_gone(cloud: Any, kind: str, id_: str, find: Callable[..., Any]) -> None:
    try:
        wait_for(
            f"[cloud/{kind} {id_}] gone",
            lambda: cloud.call(f"reading {kind} {id_}", find, id_) is None,
            bool,
            timeout=cloud.settings["delete_timeout"],
            interval=0.5,
        )
    except WaitTimeout as exc:
        raise RuntimeError(
            f"{exc}; delete it by hand (`openstack {kind} delete {id_}`) or run "
            "`meshstack down` again"
        ) from exc


# -- sweep ------------------------------------------------------------------------


def sweep(
    conn: Any, run_id: str | None = None, timeout: float = 120, keep: str | None = None
) -> list[str]:
    """Delete every server, router, network and image tagged by a (past) run.

    ``run_id`` names the run; None means every run but ``keep`` (the stack a state
    file still records). Returns what it deleted, as ``<type> <id> (<run id>)``.
    """
    # TODO: keypairs and flavors cannot carry tags; a lost run's keypair and flavor
    # stay behind (they are reused by name, so they do not pile up).
    done: list[str] = []

    def mine(value: str | None) -> bool:
        return bool(value) and value != keep and (run_id is None or value == run_id)

    servers = _servers_of(conn, mine)
    for s in servers:
        _ignore_missing(partial(conn.compute.delete_server, s.id))
        done.append(f"server {s.id} ({s.metadata[RUN_KEY]})")
    for s in servers:
        conn.compute.wait_for_delete(s, wait=timeout)
    for router in _tagged(conn.network.routers(), mine):
        for port in conn.network.ports(device_id=router.id):
            for ip in port.fixed_ips:
                conn.network.remove_interface_from_router(
                    router, subnet=ip["subnet_id"]
                )
        conn.network.delete_router(router)
        done.append(f"router {router.id}")
    for net in _tagged(conn.network.networks(), mine):
        conn.network.delete_network(net)
        done.append(f"network {net.id}")
    for img in _tagged(conn.image.images(), mine):
        conn.image.delete_image(img)
        done.append(f"image {img.id}")
    return done


def _servers_of(conn: Any, mine: Callable[[str | None], bool]) -> list[Any]:
    """The servers whose run tag (metadata: servers carry no tags) ``mine``
    accepts."""
    return [s for s in conn.compute.servers() if mine((s.metadata or {}).get(RUN_KEY))]


def _tagged(resources: Any, mine: Callable[[str | None], bool]) -> list[Any]:
    """The resources with a run tag whose run id ``mine`` accepts."""
    prefix = f"{RUN_KEY}="

    def run_of(tag: str) -> str | None:
        return tag[len(prefix) :] if tag.startswith(prefix) else None

    return [r for r in resources if any(mine(run_of(t)) for t in r.tags or [])]
