"""Making the cloud layer's servers: create, wait for ACTIVE, describe, reach by SSH.

A mixin of the OpenStack provider (which supplies ``call``, ``settings``, ``state``
and ``ctx``). A server is noted as being created before it is asked for, so that a
create cut short still leaves teardown a name to find it by (with the run tag); a
wait that ends in a terminal state is judged from the API's own body.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from meshstack import analyzers, clock, ssh
from meshstack.analyzers import Context, Evidence
from meshstack.providers import cloud_openstack_checks as checks
from meshstack.providers.base import ProviderError
from meshstack.providers.cloud_openstack_checks import RUN_KEY
from meshstack.verdicts import Finding
from meshstack.wait import WaitFailed, WaitTimeout, wait_for

log = logging.getLogger(__name__)


class ServerBuilding:
    """Creates and waits for servers; the provider supplies the API plumbing."""

    settings: dict[str, Any]
    state: Any
    ctx: Any

    def call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # provided by the provider

    def _record(self, type_: str, id_: str, **attrs: Any) -> None:
        raise NotImplementedError  # provided by the provider

    def _server(self, name: str, image: str, flavor: str, net: str, key: str) -> str:
        # Said before asking: a create cut short (Ctrl-C, a lost answer) may still
        # make the server, and teardown then looks for it by this run's tag.
        creating = self.state.outputs.setdefault("creating", [])
        creating.append(name)
        self.ctx.save()
        server = self.call(
            f"creating server {name}",
            "create_server",
            name,
            image=image,
            flavor=flavor,
            nics=[{"net-id": net}],
            key_name=key,
            meta={RUN_KEY: self.ctx.run_id},
            auto_ip=False,
            wait=False,
        )
        self._record("server", server.id, name=name)
        creating.remove(name)
        self.ctx.save()
        return str(server.id)

    def _wait_active(self, server_id: str, deadline: float) -> Any:
        def get() -> Any:
            return self.call("reading server", "compute.get_server", server_id)

        return self._wait(
            f"[cloud/server {server_id}] ACTIVE",
            get,
            lambda s: s.status == "ACTIVE",
            max(deadline - clock.monotonic(), 1.0),
            interval=self.settings["server_active_interval"],
            terminal=lambda s: s.status == "ERROR",
            code="server_error_state",
            describe=lambda s: f"{s.status}/{s.task_state or '-'}",
            body=lambda s: _server_json(s),
        )

    def _wait(self, what: str, probe: Any, done: Any, timeout: float, **kw: Any) -> Any:
        """The one wait helper, with a terminal state judged from the API's body."""
        code, body = kw.pop("code"), kw.pop("body", None)
        last: list[Any] = []

        def probe_and_keep() -> Any:
            last[:] = [probe()]
            return last[0]

        try:
            return wait_for(what, probe_and_keep, done, timeout, **kw)
        except (WaitFailed, WaitTimeout) as exc:
            if body is not None and last:
                finding = analyzers.get("openstack-error").judge(
                    Evidence(body(last[0]), name=what), Context()
                )
            else:
                finding = Finding(layer="cloud")
            if not finding.reasons:
                finding.add(code, str(exc))
            finding.evidence.insert(0, str(exc))
            raise ProviderError(finding, f"cloud: {exc}") from exc

    def _describe(self, server: Any, key_file: str) -> dict[str, Any]:
        role = {s["name"]: s["role"] for s in self.settings["servers"]}
        return {
            "name": server.name,
            "role": role.get(server.name, ""),
            "address": _address(server, self.settings["network"]["name"]),
            "ssh_user": self.settings["ssh"]["user"],
            "private_key_file": key_file,
            "id": server.id,
        }

    def _wait_ssh(self, server: dict[str, Any]) -> None:
        target = _target(server)
        try:
            wait_for(
                f"[cloud/{server['name']}] answering SSH at {server['address']}",
                lambda: ssh.reachable(target, timeout=5),
                bool,
                self.settings["ssh_timeout"],
                interval=self.settings["ssh_interval"],
            )
        except WaitTimeout as exc:
            f = Finding(layer="cloud")
            f.add("server_unreachable", str(exc), server=server["name"])
            raise ProviderError(f, f"cloud: {exc}") from exc
        # Trust on first use: the key seen now is the one later checks expect.
        server["host_key"] = checks.host_key(server["address"])
        self.ctx.save()


def _address(server: Any, network: str) -> str | None:
    for entry in (server.addresses or {}).get(network, []):
        if entry.get("version") == 4:
            return str(entry["addr"])
    return None


def _target(server: dict[str, Any]) -> ssh.Target:
    return ssh.Target(
        host=server["address"] or "",
        user=server["ssh_user"],
        key_file=Path(server["private_key_file"]),
        name=server["name"],
    )


def _server_json(server: Any) -> str:
    body = {"server": {"id": server.id, "name": server.name, "status": server.status}}
    if server.fault:
        body["server"]["fault"] = server.fault
    return json.dumps(body)
