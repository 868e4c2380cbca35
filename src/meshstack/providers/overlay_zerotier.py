"""The overlay layer on ZeroTier: a managed network joining the cloud's instances.

Provisioning talks to a ZeroTier controller's API (the self-hosted controller's
``/controller/network`` endpoints) for the network and its members, and to each
instance over SSH for the node's side (``zerotier-cli join``, ``listnetworks``).
A member is recorded in the state file as soon as its node has asked to join, so
teardown can remove it whatever happens next.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import shlex
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

from meshstack import analyzers, ssh
from meshstack.analyzers import Context, Evidence
from meshstack.providers.base import Provider, ProviderError
from meshstack.verdicts import Finding, harness_error, merge
from meshstack.wait import WaitFailed, WaitTimeout, wait_for

log = logging.getLogger(__name__)

SETTINGS_SCHEMA: dict[str, Any] = {
    "controller": {
        "type": "dict",
        "required": True,
        "keys": {
            "url": {"type": "str", "required": True},
            "token": {"type": "secret", "required": True},
        },
    },
    "network": {
        "type": "dict",
        "required": True,
        "keys": {
            "name": {"type": "str", "required": True},
            "cidr": {"type": "cidr", "required": True},
            "pool_start": {"type": "str", "required": True},
            "pool_end": {"type": "str", "required": True},
            "mtu": {"type": "int", "default": 2800, "min": 576},
        },
    },
    "cli": {"type": "str", "default": "zerotier-cli"},
    "install": {"type": "dict", "keys": {"script": {"type": "path", "required": True}}},
    "member_timeout": {"type": "seconds", "default": 120},
    "member_interval": {"type": "seconds", "default": 0.2},
    "api_timeout": {"type": "seconds", "default": 10},
    "attach": {"type": "dict", "open": True, "keys": {}},
}


def validate_settings(settings: dict[str, Any]) -> list[str]:
    """The address pool lies in the network's CIDR, first address before last."""
    net = settings["network"]
    cidr = ipaddress.ip_network(net["cidr"], strict=False)
    ends = {}
    for key in ("pool_start", "pool_end"):
        try:
            ends[key] = ipaddress.ip_address(net[key])
        except ValueError:
            return [f"network.{key}: expected an address, found {net[key]!r}"]
        if ends[key] not in cidr:
            return [f"network.{key}: expected an address in {cidr}, found {net[key]}"]
    if int(ends["pool_start"]) > int(ends["pool_end"]):
        return [
            f"network.pool_end: expected an address after pool_start "
            f"({net['pool_start']}), found {net['pool_end']}"
        ]
    return []


class ControllerError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


class ZeroTierOverlay(Provider):
    layer = "overlay"

    # -- the controller API ------------------------------------------------------
    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.settings["controller"]["url"].rstrip("/") + path
        token = self.ctx.secret(
            self.settings["controller"]["token"], "overlay.controller.token"
        )
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("X-ZT1-Auth", token)
        req.add_header("Content-Type", "application/json")
        log.debug("[overlay] %s %s", method, url)
        try:
            with urllib.request.urlopen(
                req, timeout=self.settings["api_timeout"]
            ) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ControllerError(
                exc.code, f"{method} {url}: HTTP {exc.code}"
            ) from None
        except OSError as exc:
            raise ControllerError(None, f"{method} {url}: {exc}") from None

    def _checked_api(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any:
        """The API, with its failures turned into the layer's findings."""
        try:
            return self._api(method, path, body)
        except ControllerError as exc:
            url = self.settings["controller"]["url"]
            if exc.status in (401, 403):
                finding = harness_error(
                    "overlay",
                    "credentials_missing",
                    f"the controller at {url} refused the token the profile names "
                    f"(HTTP {exc.status}); check overlay.controller.token",
                )
            else:
                finding = Finding(layer="overlay")
                finding.add(
                    "api_unreachable",
                    f"the ZeroTier controller at {url} did not answer: {exc}; "
                    "check overlay.controller.url and that the controller runs",
                )
            raise ProviderError(finding, str(exc)) from None

    # -- the nodes -----------------------------------------------------------------
    def _targets(self) -> list[ssh.Target]:
        servers = self.ctx.outputs("cloud").get("servers", [])
        return [
            ssh.Target(
                host=s["address"],
                user=s["ssh_user"],
                key_file=Path(s["private_key_file"]),
                name=s["name"],
            )
            for s in servers
        ]

    def _cli(self) -> list[str]:
        cli = self.settings["cli"].replace(
            "{profile_dir}", str(self.ctx.profile_path.parent)
        )
        return shlex.split(cli)

    def _node(self, target: ssh.Target, *args: str) -> ssh.Result:
        return ssh.run(
            target, [*self._cli(), *args], timeout=self.settings["api_timeout"] + 20
        )

    # -- provision / probe / teardown ------------------------------------------------
    def provision(self) -> None:
        net = self.settings["network"]
        status = self._checked_api("GET", "/status")
        created = self._checked_api(
            "POST",
            f"/controller/network/{status['address']}______",
            {
                "name": net["name"],
                "private": True,
                "v4AssignMode": {"zt": True},
                "ipAssignmentPools": [
                    {"ipRangeStart": net["pool_start"], "ipRangeEnd": net["pool_end"]}
                ],
                "routes": [{"target": net["cidr"], "via": None}],
                "mtu": net["mtu"],
            },
        )
        nwid = created["id"]
        self.ctx.record("overlay", "network", nwid, name=net["name"])
        self.state.outputs.update(network_id=nwid, cidr=net["cidr"], members=[])
        self.ctx.save()
        for target in self._targets():
            self._join(target, nwid)
        self._await_members(nwid)

    def _join(self, target: ssh.Target, nwid: str) -> None:
        self.ctx.progress("overlay", f"joining {target.label()} to {nwid}")
        install = self.settings.get("install")
        if install:
            script = self.ctx.path(install["script"]).read_text()
            ssh.run(target, "sh -s", stdin=script, timeout=600).check()
        info = self._node(target, "info").check().stdout.split()
        node_id = info[2]
        self._node(target, "join", nwid).check()
        self.ctx.record("overlay", "member", f"{nwid}/{node_id}", server=target.label())
        self._checked_api(
            "POST", f"/controller/network/{nwid}/member/{node_id}", {"authorized": True}
        )

    def _await_members(self, nwid: str) -> None:
        members = []
        for target in self._targets():
            node_id = self._member_of(target.label())
            self.ctx.progress("overlay", f"waiting for {target.label()} on the overlay")
            try:
                conf: dict[str, Any] = wait_for(
                    f"[overlay/{target.label()}] network configuration",
                    partial(self._netconf, target, nwid),
                    done=lambda c: (
                        c.get("status") == "OK" and bool(c.get("assignedAddresses"))
                    ),
                    terminal=lambda c: (
                        c.get("status") in ("ACCESS_DENIED", "NOT_FOUND")
                    ),
                    timeout=self.settings["member_timeout"],
                    interval=self.settings["member_interval"],
                    describe=lambda c: (c.get("status"), c.get("assignedAddresses")),
                    retry_on=(ssh.SSHError,),
                )
            except (WaitTimeout, WaitFailed) as exc:
                finding = Finding(layer="overlay")
                finding.add("no_network_config", str(exc), node=target.label())
                raise ProviderError(finding, str(exc)) from None
            members.append(
                {
                    "name": target.label(),
                    "node_id": node_id,
                    "address": conf["assignedAddresses"][0].split("/")[0],
                    "interface": conf.get("portDeviceName"),
                }
            )
        self.state.outputs["members"] = members
        self.ctx.save()

    def _member_of(self, server: str) -> str:
        for res in self.state.resources:
            if res["type"] == "member" and res.get("server") == server:
                return str(res["id"].split("/", 1)[1])
        raise KeyError(server)

    def _netconf(self, target: ssh.Target, nwid: str) -> dict[str, Any]:
        out = self._node(target, "-j", "listnetworks").check().stdout
        for conf in json.loads(out or "[]"):
            if conf.get("nwid") == nwid:
                return dict(conf)
        return {"status": "NOT_JOINED"}

    # -- gathering (used by probe and by the suite) -----------------------------------
    def member_documents(self) -> list[dict[str, Any]]:
        nwid = self.state.outputs["network_id"]
        return [
            self._checked_api(
                "GET", f"/controller/network/{nwid}/member/{m['node_id']}"
            )
            for m in self.state.outputs.get("members", [])
        ]

    def listnetworks(self) -> dict[str, str]:
        """Each node's `zerotier-cli listnetworks` output, by node name (all nodes
        asked at once)."""
        targets = self._targets()
        results = ssh.run_every(
            [(t, [*self._cli(), "listnetworks"]) for t in targets],
            timeout=self.settings["api_timeout"] + 20,
        )
        return {t.label(): r.stdout for t, r in zip(targets, results, strict=True)}

    def ping_matrix(self) -> dict[str, dict[str, bool]]:
        """Whether each member reaches each other member's overlay address (all
        pairs probed at once)."""
        members = self.state.outputs.get("members", [])
        pairs = [
            (target, m)
            for target in self._targets()
            for m in members
            if m["name"] != target.label()
        ]
        results = ssh.run_every(
            [(t, ["ping", "-c", "1", "-W", "2", m["address"]]) for t, m in pairs],
            timeout=15,
        )
        out: dict[str, dict[str, bool]] = {t.label(): {} for t in self._targets()}
        for (target, m), res in zip(pairs, results, strict=True):
            out[target.label()][m["name"]] = res.ok
        return out

    def judge_members(self, docs: list[dict[str, Any]] | None = None) -> Finding:
        """Judge the controller's member documents (read now unless given)."""
        ctx = Context(overlay_cidr=self.state.outputs.get("cidr"))
        docs = self.member_documents() if docs is None else docs
        kind = analyzers.get("zerotier-member")
        found = [
            kind.judge(Evidence(text=json.dumps(d), name=f"member {d.get('id')}"), ctx)
            for d in docs
        ]
        if not docs:
            f = Finding(layer="overlay")
            f.add("member_not_authorized", "the network has no members at all")
            return f
        return merge("overlay", found, kind="zerotier-member")

    def judge_nodes(self, outputs: dict[str, str] | None = None) -> Finding:
        """Judge each node's listnetworks output (read now unless given)."""
        ctx = Context(overlay_cidr=self.state.outputs.get("cidr"))
        kind = analyzers.get("zerotier-cli")
        outputs = self.listnetworks() if outputs is None else outputs
        return merge(
            "overlay",
            [
                kind.judge(Evidence(text=text, name=name), ctx)
                for name, text in outputs.items()
            ],
            kind="zerotier-cli",
        )

    def judge_reachability(self) -> Finding:
        matrix = self.ping_matrix()
        f = Finding(layer="overlay", kind="ping")
        pairs = [
            f"{a}->{b}" for a, row in matrix.items() for b, ok in row.items() if not ok
        ]
        checked = sum(len(row) for row in matrix.values())
        if checked == 0:
            f.add("context_missing", "fewer than two members: no pair to test")
        if pairs:
            f.add(
                "peer_unreachable",
                "members cannot reach each other over the overlay",
                pairs=pairs,
            )
        f.details["pairs_checked"] = checked
        f.evidence += [
            f"{a} -> {b}: {'ok' if ok else 'no reply'}"
            for a, row in matrix.items()
            for b, ok in row.items()
        ]
        return f

    def probe(self) -> Finding:
        if not self.state.outputs.get("network_id"):
            f = Finding(layer="overlay")
            f.add("api_unreachable", "no overlay network is recorded for this stack")
            return f
        return merge(
            "overlay",
            [self.judge_members(), self.judge_nodes(), self.judge_reachability()],
        )

    def teardown(self) -> None:
        targets = {t.label(): t for t in self._targets()}
        for res in reversed(list(self.state.resources)):
            try:
                self._remove(res, targets)
            except ControllerError as exc:
                if exc.status != 404:
                    raise
            self.ctx.forget("overlay", res["type"], res["id"])

    def _remove(self, res: dict[str, Any], targets: dict[str, ssh.Target]) -> None:
        if res["type"] == "member":
            nwid, node = res["id"].split("/", 1)
            target = targets.get(res.get("server", ""))
            if target is not None and ssh.reachable(target):
                self._node(target, "leave", nwid)
            self._api("DELETE", f"/controller/network/{nwid}/member/{node}")
        elif res["type"] == "network":
            self._api("DELETE", f"/controller/network/{res['id']}")


PROVIDER = ZeroTierOverlay
