"""The cluster layer on k3s: installed over SSH on the cloud's servers, joined on the overlay.

provision: run the profile's install script (``sh -s -- server|agent <args>``, as
one pipes get.k3s.io) on the server, then on each agent, with ``server_args`` /
``agent_args`` templated with ``{node_ip}`` (the node's overlay address),
``{overlay_iface}`` and ``{server_ip}``; fetch the admin kubeconfig over SSH and
keep it in the run's workdir; wait, through a watch on Nodes, until every node is
Ready. Each node is recorded in the state before its install starts.

probe: every expected node Ready, kube-system pods ready, every node's InternalIP
and the API's endpoints inside the overlay's CIDR, and node-ip/flannel-iface
given together; the k3s server arguments (from each node's ``k3s.io/node-args``)
are kept in the outputs for the lb layer, which judges servicelb beside MetalLB.

teardown: the install script's ``uninstall`` on every node this run installed,
agents first. The kubeconfig used is always the one this provider wrote (or the
profile names), never ~/.kube/config.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from meshstack import ssh
from meshstack.analyzers import Context, Evidence, get
from meshstack.analyzers.k3s_log import flag_values, servicelb_disabled
from meshstack.providers.base import Provider, ProviderError
from meshstack.verdicts import Finding, harness_error

log = logging.getLogger(__name__)

SETTINGS_SCHEMA: dict[str, Any] = {
    "version": {"type": "str", "required": False, "default": ""},
    "install": {
        "type": "dict",
        "required": True,
        "keys": {
            "script": {"type": "path", "required": True},
            "env": {"type": "dict", "required": False, "default": {}},
        },
    },
    "token": {"type": "secret", "required": False},
    "server_args": {
        "type": "list",
        "required": False,
        "default": [],
        "items": {"type": "str"},
    },
    "agent_args": {
        "type": "list",
        "required": False,
        "default": [],
        "items": {"type": "str"},
    },
    "kubeconfig": {"type": "path", "required": False},
    "api_port": {"type": "int", "required": False, "default": 6443},
    "install_timeout": {"type": "seconds", "required": False, "default": 120},
    "node_ready_timeout": {"type": "seconds", "required": False, "default": 90},
    "system_pods_timeout": {"type": "seconds", "required": False, "default": 120},
    "ssh_timeout": {"type": "seconds", "required": False, "default": 30},
}

SVCLB_LABEL = "svccontroller.k3s.cattle.io/svcname"


def _fail(code: str, message: str, **details: Any) -> ProviderError:
    f = Finding(layer="cluster", details=dict(details))
    f.add(code, message)
    return ProviderError(f, f"cluster: {message}")


def _ready(node: dict[str, Any]) -> bool:
    conds = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _internal_ip(node: dict[str, Any]) -> str:
    addrs = node.get("status", {}).get("addresses") or []
    return next((a["address"] for a in addrs if a.get("type") == "InternalIP"), "")


def _pod_ready(pod: dict[str, Any]) -> bool:
    if pod.get("status", {}).get("phase") == "Succeeded":
        return True
    conds = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_args(node: dict[str, Any]) -> list[str]:
    raw = (node["metadata"].get("annotations") or {}).get("k3s.io/node-args", "[]")
    try:
        return [str(a) for a in json.loads(raw)]
    except ValueError:
        return []


class K3sCluster(Provider):
    layer = "cluster"

    def __init__(self, settings: dict[str, Any], ctx: Any) -> None:
        super().__init__(settings, ctx)
        self._api: client.ApiClient | None = None

    # -- where things are -------------------------------------------------------
    def _nodes_plan(self) -> list[dict[str, Any]]:
        """Each server with its SSH target, role, overlay address and interface."""
        servers = self.ctx.outputs("cloud").get("servers") or []
        if not servers:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "context_missing",
                    "the cloud layer lists no servers; provision the cloud layer first",
                ),
                "cluster: no servers in the cloud layer's outputs",
            )
        members = {
            m["name"]: m for m in self.ctx.outputs("overlay").get("members") or []
        }
        plan = []
        for s in servers:
            member = members.get(s["name"], {})
            plan.append(
                {
                    **s,
                    "node_ip": member.get("address", ""),
                    "overlay_iface": member.get("interface", ""),
                }
            )
        plan.sort(key=lambda p: p.get("role") != "server")
        return plan

    def _target(self, node: dict[str, Any]) -> ssh.Target:
        key = Path(node["private_key_file"])
        port = int(node.get("ssh_port", 22))
        return ssh.Target(node["address"], node["ssh_user"], key, node["name"], port)

    def _args(self, key: str, node: dict[str, Any], server_ip: str) -> list[str]:
        values = {
            "node_ip": node["node_ip"],
            "overlay_iface": node["overlay_iface"],
            "server_ip": server_ip,
            "node_name": node["name"],
        }
        out = []
        for arg in self.settings.get(key) or []:
            text = str(arg)
            for name, value in values.items():
                if "{" + name + "}" in text and not value:
                    raise _fail(
                        "node_ip_not_on_overlay",
                        f"{key} uses {{{name}}} but the overlay layer gives node {node['name']} none",
                        node=node["name"],
                    )
                text = text.replace("{" + name + "}", value)
            out.append(text)
        return out

    def _env(self, node: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
        """The install env of the profile, with {python} and {node_name} filled in."""
        values = {"{python}": sys.executable, "{node_name}": node["name"]}
        env = {}
        for key, value in (self.settings["install"].get("env") or {}).items():
            text = str(value)
            for placeholder, filled in values.items():
                text = text.replace(placeholder, filled)
            env[str(key)] = text
        return {**env, **extra}

    def _script(self) -> str:
        path = self.ctx.path(str(self.settings["install"]["script"]))
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "credentials_missing",
                    f"cannot read the install script {path}: {exc}",
                ),
                str(exc),
            ) from None

    def _token(self) -> str:
        spec = self.settings.get("token")
        if spec is None:
            return secrets.token_hex(16)
        if (
            isinstance(spec, dict)
            and "file" in spec
            and not self.ctx.path(spec["file"]).exists()
        ):
            # a fresh cluster: the token is made here and kept where the profile says
            path = self.ctx.path(spec["file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
            log.info("made a new join token in %s", path)
        return self.ctx.secret(spec, "cluster.token").strip()

    # -- install ----------------------------------------------------------------
    def _install(
        self, node: dict[str, Any], argv: list[str], env: dict[str, str]
    ) -> ssh.Result:
        # the environment (the join token among it) travels on stdin ahead of the
        # script, so that it shows in no command line and no log
        exports = "".join(f"export {k}={_q(v)}\n" for k, v in env.items())
        command = f"sh -s -- {' '.join(_q(a) for a in argv)}"
        timeout = float(self.settings.get("install_timeout", 120))
        target = self._target(node)
        result = ssh.run(
            target, command, stdin=exports + self._script(), timeout=timeout
        )
        if not result.ok:
            raise self._install_failed(node, result)
        return result

    def _install_failed(
        self, node: dict[str, Any], result: ssh.Result
    ) -> ProviderError:
        """A finding from what the install printed, judged as a k3s log is."""
        text = result.stdout + "\n" + result.stderr
        evidence = Evidence(text, name=f"install on {node['name']}")
        judged = get("k3s-log").judge(evidence, Context())
        finding = Finding(layer="cluster", kind="k3s-install")
        for code in judged.reasons:
            if code in ("token_rejected", "node_password_rejected", "api_unreachable"):
                finding.add(code)
        for hint in judged.hints:
            finding.hint(hint)
        if not finding.reasons:
            finding.add(
                "node_not_ready", f"the install script failed on {node['name']}"
            )
        described = result.describe().replace(self._secret_token or "\0", "********")
        finding.evidence.insert(0, described)
        return ProviderError(
            finding, f"cluster: install on {node['name']} failed:\n{described}"
        )

    _secret_token: str = ""

    def provision(self) -> None:
        plan = self._nodes_plan()
        servers = [n for n in plan if n.get("role") == "server"]
        if len(servers) != 1:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "context_missing",
                    f"expected one server among the cloud's servers; found {len(servers)}",
                ),
                "cluster: server count",
            )
        token = self._secret_token = self._token()
        server = servers[0]
        server_ip = server["node_ip"] or server["address"]
        self.ctx.progress("cluster", f"k3s server on {server['name']}")
        self._install_node(
            server,
            ["server", *self._args("server_args", server, server_ip)],
            {"K3S_TOKEN": token},
        )
        kc = self._fetch_kubeconfig(server, server_ip)
        url = f"https://{server_ip}:{self.settings.get('api_port', 6443)}"
        for agent in plan[1:]:
            self.ctx.progress("cluster", f"k3s agent on {agent['name']}")
            self._install_node(
                agent,
                ["agent", *self._args("agent_args", agent, server_ip)],
                {"K3S_URL": url, "K3S_TOKEN": token},
            )
        self.state.outputs.update(
            kubeconfig=str(kc),
            api_url=url,
            overlay_cidr=self.ctx.outputs("overlay").get("cidr", ""),
            nodes=[
                {
                    "name": n["name"],
                    "role": n.get("role", ""),
                    "node_ip": n["node_ip"] or n["address"],
                }
                for n in plan
            ],
        )
        self.ctx.save()
        self.ctx.progress("cluster", "nodes Ready")
        self.wait_nodes_ready(
            [n["name"] for n in plan],
            float(self.settings.get("node_ready_timeout", 90)),
        )

    def _install_node(
        self, node: dict[str, Any], argv: list[str], env: dict[str, str]
    ) -> None:
        keys = ("address", "ssh_user", "private_key_file", "name", "ssh_port")
        target = {k: node[k] for k in keys if k in node}
        self.ctx.record(
            "cluster", "k3s-node", node["name"], role=argv[0], target=target
        )
        started = time.monotonic()
        self._install(node, argv, self._env(node, env))
        log.info(
            "[%s] k3s %s installed in %.1f s",
            node["name"],
            argv[0],
            time.monotonic() - started,
        )

    def _fetch_kubeconfig(self, server: dict[str, Any], server_ip: str) -> Path:
        result = self._install(server, ["kubeconfig"], self._env(server, {}))
        text = result.stdout.replace("https://127.0.0.1:", f"https://{server_ip}:")
        path = self.ctx.workdir / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
        self._api = None
        return path

    # -- the API ----------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        path = self.state.outputs.get("kubeconfig") or self.settings.get("kubeconfig")
        if not path:
            raise ProviderError(
                harness_error(
                    "cluster",
                    "credentials_missing",
                    "no kubeconfig: provision the cluster or name one in the profile (cluster.kubeconfig)",
                ),
                "cluster: no kubeconfig",
            )
        return Path(
            self.ctx.path(str(path)) if not Path(str(path)).is_absolute() else path
        )

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def _list(self, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = method(*args, _preload_content=False, _request_timeout=10, **kwargs)
        except Exception as exc:
            raise _fail(
                "api_unreachable",
                f"the Kubernetes API at {self.state.outputs.get('api_url', self.kubeconfig)} did not answer: {exc}",
            ) from None
        return dict(json.loads(resp.data))

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._list(self.core.list_node)["items"])

    def system_pods(self) -> list[dict[str, Any]]:
        return list(self._list(self.core.list_namespaced_pod, "kube-system")["items"])

    def wait_nodes_ready(self, names: list[str], timeout: float) -> None:
        """Watch Nodes until every named one is Ready; log each change."""
        started, deadline = time.monotonic(), time.monotonic() + timeout
        listed = self._list(self.core.list_node)
        seen = {n["metadata"]["name"]: _ready(n) for n in listed["items"]}
        rv = listed["metadata"]["resourceVersion"]
        while not all(seen.get(n) for n in names):
            left = deadline - time.monotonic()
            if left <= 0:
                waiting = sorted(n for n in names if not seen.get(n))
                raise _fail(
                    "node_not_ready",
                    f"nodes {waiting} not Ready after {timeout:.0f} s (last seen: {seen})",
                    nodes=waiting,
                )
            for event in watch.Watch().stream(
                self.core.list_node,
                resource_version=rv,
                timeout_seconds=max(1, int(left)),
                _request_timeout=left + 5,
            ):
                obj = event["raw_object"]
                rv, name = obj["metadata"]["resourceVersion"], obj["metadata"]["name"]
                if seen.get(name) != _ready(obj):
                    log.info(
                        "[%s] Ready=%s after %.1f s",
                        name,
                        _ready(obj),
                        time.monotonic() - started,
                    )
                seen[name] = _ready(obj) and event["type"] != "DELETED"
                if all(seen.get(n) for n in names):
                    break

    # -- probe ------------------------------------------------------------------
    def probe(self) -> Finding:
        f = Finding(layer="cluster", kind="cluster-probe")
        try:
            nodes, pods = self.nodes(), self.system_pods()
        except ProviderError as exc:
            return exc.finding
        self._judge_nodes(nodes, f)
        self._judge_pods(pods, f)
        self._judge_addresses(nodes, f)
        self._judge_flags(nodes, f)
        self.state.outputs["k3s_server_args"] = [
            node_args(n)
            for n in nodes
            if "node-role.kubernetes.io/control-plane"
            in (n["metadata"].get("labels") or {})
        ]
        self.state.outputs["servicelb_disabled"] = (
            all(
                servicelb_disabled(a[1:]) for a in self.state.outputs["k3s_server_args"]
            )
            if self.state.outputs["k3s_server_args"]
            else None
        )
        self.ctx.save()
        return f

    def _judge_nodes(self, nodes: list[dict[str, Any]], f: Finding) -> None:
        expected = {n["name"] for n in self.state.outputs.get("nodes") or []}
        present = {n["metadata"]["name"] for n in nodes}
        for name in sorted(expected - present):
            f.add(
                "node_not_ready",
                f"node {name} was installed but is not registered",
                missing=sorted(expected - present),
            )
        if not nodes:
            f.add("node_not_ready", "the cluster has no nodes")
        for n in nodes:
            state = "Ready" if _ready(n) else "NotReady"
            f.evidence.append(f"node {n['metadata']['name']} {state} {_internal_ip(n)}")
            if not _ready(n):
                f.add(
                    "node_not_ready",
                    f"node {n['metadata']['name']} is not Ready: check its k3s log",
                    not_ready=n["metadata"]["name"],
                )

    def _judge_pods(self, pods: list[dict[str, Any]], f: Finding) -> None:
        system = [
            p for p in pods if SVCLB_LABEL not in (p["metadata"].get("labels") or {})
        ]
        if not system:
            f.add(
                "system_pods_not_ready",
                "kube-system has no pods: k3s deployed none of its components",
            )
        bad = [p["metadata"]["name"] for p in system if not _pod_ready(p)]
        for name in bad:
            f.add("system_pods_not_ready", f"kube-system/{name} is not ready", pods=bad)
        f.evidence.append(
            f"{len(system) - len(bad)}/{len(system)} kube-system pods ready"
        )

    def _judge_addresses(self, nodes: list[dict[str, Any]], f: Finding) -> None:
        cidr = self.state.outputs.get("overlay_cidr") or self.ctx.outputs(
            "overlay"
        ).get("cidr")
        if not cidr:
            f.hint(
                "the overlay's CIDR is unknown, so node addresses were not checked against it"
            )
            return
        net = ipaddress.ip_network(cidr, strict=False)
        ep = self._list(
            self.core.list_namespaced_endpoints,
            "default",
            field_selector="metadata.name=kubernetes",
        )["items"]
        api_ips = [
            a["ip"]
            for e in ep
            for s in e.get("subsets") or []
            for a in s.get("addresses") or []
        ]
        for what, ip in [
            *((f"node {n['metadata']['name']}", _internal_ip(n)) for n in nodes),
            *(("the API endpoint", ip) for ip in api_ips),
        ]:
            if not ip or ipaddress.ip_address(ip) not in net:
                f.add(
                    "node_ip_not_on_overlay",
                    f"{what} has address {ip or 'none'}, outside the overlay {cidr}: pin --node-ip/--advertise-address to the overlay",
                    address=ip,
                )

    def _judge_flags(self, nodes: list[dict[str, Any]], f: Finding) -> None:
        for n in nodes:
            args = node_args(n)
            has_ip = bool(flag_values(args, "node-ip"))
            has_iface = bool(flag_values(args, "flannel-iface"))
            if has_ip != has_iface:
                given, missing = (
                    ("--node-ip", "--flannel-iface")
                    if has_ip
                    else ("--flannel-iface", "--node-ip")
                )
                f.add(
                    "overlay_flags_incomplete",
                    f"node {n['metadata']['name']} runs k3s with {given} but without {missing}: set both to the overlay",
                )

    # -- teardown ---------------------------------------------------------------
    def teardown(self) -> None:
        for res in reversed(
            [r for r in self.state.resources if r["type"] == "k3s-node"]
        ):
            node = res["target"]
            try:
                self._install(node, ["uninstall"], self._env(node, {}))
                log.info("[%s] k3s uninstalled", res["id"])
            except (ssh.SSHError, ProviderError) as exc:
                log.warning(
                    "[%s] uninstall failed: %s; the record is kept for `meshstack down`",
                    res["id"],
                    exc,
                )
                continue
            self.ctx.forget("cluster", "k3s-node", res["id"])
        self.close()

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


def _q(text: str) -> str:
    import shlex

    return shlex.quote(text)


PROVIDER = K3sCluster
