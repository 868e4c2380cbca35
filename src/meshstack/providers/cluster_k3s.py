"""The k3s cluster layer: installed over SSH on cloud servers, joined on the overlay.

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

import json
import logging
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from meshstack import ssh
from meshstack.analyzers.k3s_log import servicelb_disabled
from meshstack.providers import cluster_k3s_checks as checks
from meshstack.providers.base import Provider, ProviderError
from meshstack.providers.cluster_k3s_plan import InstallPlan, fail
from meshstack.verdicts import Finding, harness_error

log = logging.getLogger(__name__)

SETTINGS_SCHEMA: dict[str, Any] = {
    "version": {"type": "str", "required": False, "default": ""},
    "install": {
        "type": "dict",
        "required": False,
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
    # --stack=existing: outputs of a cluster built by other means (kubeconfig,
    # overlay_cidr, nodes), as the lower layers' providers would have recorded
    "attach": {"type": "dict", "required": False},
    "api_port": {"type": "int", "required": False, "default": 6443},
    "install_timeout": {"type": "seconds", "required": False, "default": 120},
    "node_ready_timeout": {"type": "seconds", "required": False, "default": 90},
    "system_pods_timeout": {"type": "seconds", "required": False, "default": 120},
    "ssh_timeout": {"type": "seconds", "required": False, "default": 30},
}


class K3sCluster(InstallPlan, Provider):
    layer = "cluster"

    def __init__(self, settings: dict[str, Any], ctx: Any) -> None:
        super().__init__(settings, ctx)
        self._api: client.ApiClient | None = None

    def provision(self) -> None:
        """Install the server, fetch its kubeconfig, join the agents, await Ready."""
        plan = self._nodes_plan()
        server = self._the_server(plan)
        token = self._secret_token = self._token()
        server_ip = server["node_ip"] or server["address"]
        server_args = self._args("server_args", server, server_ip)
        self.ctx.progress("cluster", f"k3s server on {server['name']}")
        self._install_node(server, ["server", *server_args], {"K3S_TOKEN": token})
        url = f"https://{server_ip}:{self.settings.get('api_port', 6443)}"
        self.state.outputs.update(
            kubeconfig=str(self._fetch_kubeconfig(server, server_ip)),
            api_url=url,
            server_args=server_args,
            overlay_cidr=self.ctx.outputs("overlay").get("cidr", ""),
            nodes=[_node_output(n) for n in plan],
        )
        self.ctx.save()
        for agent in [n for n in plan if n is not server]:
            self.ctx.progress("cluster", f"k3s agent on {agent['name']}")
            agent_args = ["agent", *self._args("agent_args", agent, server_ip)]
            self._install_node(agent, agent_args, {"K3S_URL": url, "K3S_TOKEN": token})
        self.ctx.progress("cluster", "nodes Ready")
        timeout = float(self.settings.get("node_ready_timeout", 90))
        self.wait_nodes_ready([n["name"] for n in plan], timeout)
        self.ctx.progress("cluster", "system pods ready")
        self.wait_system_pods_ready(
            float(self.settings.get("system_pods_timeout", 120))
        )

    def wait_system_pods_ready(self, timeout: float) -> None:
        """Watch kube-system's pods until every one is ready (a fresh k3s takes a
        few seconds to start its own); the probe then judges what it sees."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self._list(self.core.list_namespaced_pod, "kube-system")
            pods = listed["items"]
            waiting = sorted(
                p["metadata"]["name"] for p in pods if not checks.pod_ready(p)
            )
            left = deadline - time.monotonic()
            if pods and not waiting:
                return
            if left <= 0:
                log.info(
                    "[kube-system] pods not ready after %.0f s: %s", timeout, waiting
                )
                return
            for _event in watch.Watch().stream(
                self.core.list_namespaced_pod,
                "kube-system",
                resource_version=listed["metadata"]["resourceVersion"],
                timeout_seconds=max(1, int(min(left, 10))),
                _request_timeout=left + 5,
            ):
                break

    @staticmethod
    def _the_server(plan: list[dict[str, Any]]) -> dict[str, Any]:
        servers = [n for n in plan if n.get("role") == "server"]
        if len(servers) != 1:
            names = [f"{n['name']} ({n.get('role')})" for n in plan]
            message = f"expected one server among the cloud's servers; found {names}"
            raise ProviderError(
                harness_error("cluster", "context_missing", message),
                f"cluster: {message}; set exactly one role: server in cloud.servers",
            )
        return servers[0]

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
                    "no kubeconfig: provision the cluster or name one in the profile "
                    "(cluster.kubeconfig)",
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
            raise fail(
                "api_unreachable",
                "the Kubernetes API at "
                f"{self.state.outputs.get('api_url', self.kubeconfig)} "
                f"did not answer: {exc}",
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
        seen = {n["metadata"]["name"]: checks.ready(n) for n in listed["items"]}
        rv = listed["metadata"]["resourceVersion"]
        while not all(seen.get(n) for n in names):
            left = deadline - time.monotonic()
            if left <= 0:
                waiting = sorted(n for n in names if not seen.get(n))
                raise fail(
                    "node_not_ready",
                    f"nodes {waiting} not Ready after {timeout:.0f} s "
                    f"(last seen: {seen})",
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
                if seen.get(name) != checks.ready(obj):
                    log.info(
                        "[%s] Ready=%s after %.1f s",
                        name,
                        checks.ready(obj),
                        time.monotonic() - started,
                    )
                seen[name] = checks.ready(obj) and event["type"] != "DELETED"
                if all(seen.get(n) for n in names):
                    break

    # -- probe and checks -----------------------------------------------------------
    def api_endpoint_ips(self) -> list[str]:
        eps = self._list(self.core.list_namespaced_endpoints, "default")["items"]
        return [
            a["ip"]
            for e in eps
            if e["metadata"]["name"] == "kubernetes"
            for s in e.get("subsets") or []
            for a in s.get("addresses") or []
        ]

    def overlay_cidr(self) -> str:
        return str(
            self.state.outputs.get("overlay_cidr")
            or self.ctx.outputs("overlay").get("cidr")
            or ""
        )

    def probe(self) -> Finding:
        """Nodes Ready, system pods ready, addresses on the overlay, flags whole."""
        f = Finding(layer="cluster", kind="cluster-probe")
        try:
            nodes, pods = self.nodes(), self.system_pods()
            api_ips = self.api_endpoint_ips()
        except ProviderError as exc:
            return exc.finding
        checks.judge_nodes(nodes, self.state.outputs.get("nodes") or [], f)
        checks.judge_pods(pods, f)
        if self.overlay_cidr():
            checks.judge_addresses(nodes, api_ips, self.overlay_cidr(), f)
        else:
            f.hint("the overlay's CIDR is unknown: node addresses were not checked")
        checks.judge_flags(nodes, f)
        self._record_server_args(nodes)
        return f

    def _record_server_args(self, nodes: list[dict[str, Any]]) -> None:
        """Keep the servers' k3s arguments for the lb layer (servicelb, C08)."""
        servers = [
            checks.node_args(n) for n in nodes if "control-plane" in checks.roles(n)
        ]
        servers = [a for a in servers if a[:1] == ["server"]]
        if servers:
            self.state.outputs["k3s_server_args"] = servers
            self.state.outputs["server_args"] = servers[0][1:]
            self.state.outputs["servicelb_disabled"] = all(
                servicelb_disabled(a[1:]) for a in servers
            )
        self.ctx.save()

    def judge(self, check: str) -> Finding:
        """One named check (nodes, system_pods, addresses, flags) for the suites."""
        f = Finding(layer="cluster", kind=f"cluster-{check}")
        nodes = self.nodes()
        if check == "nodes":
            checks.judge_nodes(nodes, self.state.outputs.get("nodes") or [], f)
        elif check == "system_pods":
            checks.judge_pods(self.system_pods(), f)
        elif check == "addresses":
            if not self.overlay_cidr():
                f.add("context_missing", "the overlay layer recorded no CIDR")
            else:
                checks.judge_addresses(
                    nodes, self.api_endpoint_ips(), self.overlay_cidr(), f
                )
        elif check == "flags":
            if checks.judge_flags(nodes, f) == 0:
                f.add("context_missing", "no node publishes its k3s arguments")
        else:
            raise ValueError(f"unknown cluster check {check!r}")
        return f

    def nodes_table(self) -> str:
        return checks.nodes_table(self.nodes())

    def pods_table(self, namespace: str = "kube-system") -> str:
        pods = self._list(self.core.list_namespaced_pod, namespace)["items"]
        return checks.pods_table(pods)

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
                    "[%s] uninstall failed: %s; "
                    "the record is kept for `meshstack down`",
                    res["id"],
                    exc,
                )
                continue
            self.ctx.forget("cluster", "k3s-node", res["id"])
        self.close()
        written = self.ctx.workdir / "kubeconfig"
        if not any(r["type"] == "k3s-node" for r in self.state.resources):
            # the admin token of a cluster that no longer exists: not worth keeping
            written.unlink(missing_ok=True)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None


def _node_output(node: dict[str, Any]) -> dict[str, Any]:
    address = node["node_ip"] or node["address"]
    return {"name": node["name"], "role": node.get("role", ""), "node_ip": address}


PROVIDER = K3sCluster
