"""The k3s twin runs a server and an agent as real processes that behave as k3s does.

Server and agent run detached (``--daemon``) on loopback addresses, each with
its own node directory, and are driven only through the official client and
their own command line; each test's docstring-free name says what it shows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from meshstack.analyzers import Context, Evidence, get

SERVER_IP, AGENT_IP = "127.0.20.1", "127.0.20.2"
SERVICE_CIDR = "127.44.0.0/16"  # on loopback, so kube-proxy needs no address changes
FAST = {
    "MESHSTACK_TWIN_HEARTBEAT_INTERVAL": "1",
    "MESHSTACK_TWIN_RESYNC_INTERVAL": "0.5",
    "MESHSTACK_TWIN_NODE_GRACE": "4",
    "MESHSTACK_TWIN_KUBELET_PORT": "0",
    "MESHSTACK_TWIN_PROXY_INTERVAL": "0.5",
}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def k3s(
    node_dir: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    # pods meshed by Linkerd get a Prometheus file_sd target beside the node dirs
    targets = str(node_dir.parent / "targets")
    env = {
        **os.environ,
        **FAST,
        "MESHSTACK_NODE_DIR": str(node_dir),
        "MESHSTACK_PROM_TARGETS_DIR": targets,
    }
    return subprocess.run(
        [sys.executable, "-m", "meshstack.twin.k3s", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (client.ApiException, OSError) as exc:  # not there yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    pytest.fail(f"waited {timeout:.0f} s for {what}; last seen: {last!r}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A twin k3s server (servicelb on, traefik off) and one agent, on loopback."""
    root = tmp_path_factory.mktemp("k3s")
    port = _free_port(SERVER_IP)
    server_args = [
        "server",
        "--daemon",
        "--node-name",
        "srv",
        "--node-ip",
        SERVER_IP,
        "--bind-address",
        SERVER_IP,
        "--https-listen-port",
        str(port),
        "--service-cidr",
        SERVICE_CIDR,
        "--disable=traefik",
        "--token",
        "s3cret",
    ]
    done = k3s(root / "srv", *server_args)
    assert done.returncode == 0, done.stdout + done.stderr
    agent = k3s(
        root / "agt",
        "agent",
        "--daemon",
        "--server",
        f"https://{SERVER_IP}:{port}",
        "--token-file",
        str(root / "srv/var/lib/rancher/k3s/server/node-token"),
        "--node-ip",
        AGENT_IP,
        "--node-name",
        "agt",
    )
    try:
        assert agent.returncode == 0, agent.stdout + agent.stderr
        kc = root / "srv/etc/rancher/k3s/k3s.yaml"
        api = config.new_client_from_config(config_file=str(kc))
        yield {
            "root": root,
            "port": port,
            "api": api,
            "core": client.CoreV1Api(api),
            "apps": client.AppsV1Api(api),
            "kubeconfig": kc,
        }
    finally:
        for node in ("agt", "srv"):
            k3s(root / node, "killall")


def _ready(node: client.V1Node) -> client.V1NodeCondition:
    return next(c for c in node.status.conditions if c.type == "Ready")


def test_server_and_agent_register_ready_nodes_on_their_node_ips(cluster):
    core = cluster["core"]
    nodes = wait_for(
        "two Ready nodes",
        lambda: (
            [n for n in core.list_node().items if _ready(n).status == "True"]
            if len(core.list_node().items) == 2
            else None
        ),
    )
    by_name = {n.metadata.name: n for n in nodes}
    assert {
        n: [a.address for a in by_name[n].status.addresses if a.type == "InternalIP"]
        for n in by_name
    } == {"srv": [SERVER_IP], "agt": [AGENT_IP]}
    assert (
        by_name["srv"].metadata.labels["node-role.kubernetes.io/control-plane"]
        == "true"
    )
    assert "node-role.kubernetes.io/control-plane" not in by_name["agt"].metadata.labels
    args = json.loads(by_name["srv"].metadata.annotations["k3s.io/node-args"])
    assert args[:1] == ["server"] and "--disable=traefik" in args
    assert args[args.index("--token") + 1] == "********"

    first = _ready(core.read_node("agt")).last_heartbeat_time
    wait_for(
        "a newer heartbeat",
        lambda: _ready(core.read_node("agt")).last_heartbeat_time > first,
        timeout=5,
    )


def test_the_system_pods_run_and_report_ready(cluster):
    apps = cluster["apps"]
    names = {"coredns", "local-path-provisioner", "metrics-server"}

    def available() -> bool:
        deps = {
            d.metadata.name: d
            for d in apps.list_namespaced_deployment("kube-system").items
        }
        return names <= set(deps) and all(
            (deps[n].status.available_replicas or 0) >= 1 for n in names
        )

    wait_for("system deployments Available", available)
    pods = (
        cluster["core"]
        .list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns")
        .items
    )
    assert [p.status.phase for p in pods] == ["Running"]
    statuses = pods[0].status.container_statuses
    assert statuses and all(s.ready for s in statuses)


def _echo_deployment(name: str, replicas: int, env_value: str = "1") -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": "echo",
        "image": "ghcr.io/meshstack/echo:1.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": "REV", "value": env_value}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 1,
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [container]},
            },
        },
    }


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def _available(apps: client.AppsV1Api, name: str, want: int) -> Callable[[], bool]:
    def check() -> bool:
        d = apps.read_namespaced_deployment(name, "default")
        return d.status.available_replicas == want and d.status.updated_replicas == want

    return check


def test_a_deployment_runs_processes_that_serve_through_endpoints_and_the_cluster_ip(
    cluster,
):
    core, apps = cluster["core"], cluster["apps"]
    apps.create_namespaced_deployment("default", _echo_deployment("echo", 2))
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "echo"},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"port": 80, "targetPort": "http"}],
            },
        },
    )
    wait_for("deployment echo Available with 2 replicas", _available(apps, "echo", 2))
    pods = core.list_namespaced_pod("default", label_selector="app=echo").items
    assert sorted(p.spec.node_name for p in pods) == ["agt", "srv"]

    for pod in pods:
        port = json.loads(pod.metadata.annotations["twin.meshstack.io/port-map"])[
            "8080"
        ]
        assert (
            pod.status.pod_ip == {"srv": SERVER_IP, "agt": AGENT_IP}[pod.spec.node_name]
        )
        assert (
            _get_json(f"http://{pod.status.pod_ip}:{port}/x")["pod"]
            == pod.metadata.name
        )

    def ready_endpoints() -> list[str]:
        ep = core.read_namespaced_endpoints("echo", "default")
        return (
            sorted(
                a.target_ref.name for s in ep.subsets or [] for a in s.addresses or []
            )
            if ep.subsets
            else []
        )

    assert wait_for(
        "two ready endpoints", lambda: len(ready_endpoints()) == 2 and ready_endpoints()
    ) == sorted(p.metadata.name for p in pods)
    cluster_ip = core.read_namespaced_service("echo", "default").spec.cluster_ip
    wait_for("the ClusterIP to answer", lambda: _get_json(f"http://{cluster_ip}:80/"))
    time.sleep(1)  # every node's kube-proxy has synced once more
    seen = {_get_json(f"http://{cluster_ip}:80/")["pod"] for _ in range(8)}
    assert seen and seen <= {p.metadata.name for p in pods}

    text = core.read_namespaced_pod_log(pods[0].metadata.name, "default")
    assert "listening on" in text


def test_a_template_change_rolls_the_deployment_onto_new_pods(cluster):
    core, apps = cluster["core"], cluster["apps"]
    apps.create_namespaced_deployment("default", _echo_deployment("roll", 1))
    wait_for("roll Available", _available(apps, "roll", 1))
    before = {
        p.metadata.labels["pod-template-hash"]
        for p in core.list_namespaced_pod("default", label_selector="app=roll").items
    }
    apps.patch_namespaced_deployment(
        "roll",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "echo", "env": [{"name": "REV", "value": "2"}]}
                        ]
                    }
                }
            }
        },
    )

    def rolled() -> set[str] | None:
        pods = core.list_namespaced_pod("default", label_selector="app=roll").items
        hashes = {p.metadata.labels["pod-template-hash"] for p in pods}
        return hashes if len(pods) == 1 and hashes != before else None

    after = wait_for("the rollout to replace the pod", rolled)
    assert (
        len(
            apps.list_namespaced_replica_set("default", label_selector="app=roll").items
        )
        == 2
    )
    assert after.isdisjoint(before)


def _pid(pod: client.V1Pod) -> int:
    return int(
        pod.status.container_statuses[0].container_id.removeprefix("containerd://"), 16
    )


def test_deleting_a_deployment_collects_its_pods_and_stops_their_processes(cluster):
    core, apps = cluster["core"], cluster["apps"]
    apps.create_namespaced_deployment("default", _echo_deployment("gone", 1))
    wait_for("gone Available", _available(apps, "gone", 1))
    pod = core.list_namespaced_pod("default", label_selector="app=gone").items[0]
    pid = _pid(pod)
    assert Path(f"/proc/{pid}").exists()
    apps.delete_namespaced_deployment("gone", "default")
    wait_for(
        "pods and replicasets collected",
        lambda: (
            not core.list_namespaced_pod("default", label_selector="app=gone").items
            and not apps.list_namespaced_replica_set(
                "default", label_selector="app=gone"
            ).items
        ),
    )
    wait_for(
        f"process {pid} to end",
        lambda: (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        ),
    )


def test_servicelb_publishes_node_addresses_for_a_loadbalancer_service(cluster):
    core, apps = cluster["core"], cluster["apps"]
    core.create_namespaced_service(
        "default",
        {
            "metadata": {"name": "lb1"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "echo"},
                "ports": [{"port": 18081, "targetPort": "http"}],
            },
        },
    )
    svc = core.read_namespaced_service("lb1", "default")
    ds_name = f"svclb-lb1-{svc.metadata.uid[:8]}"
    ds = wait_for(
        "the svclb DaemonSet",
        lambda: apps.read_namespaced_daemon_set(ds_name, "kube-system"),
    )
    assert ds.spec.template.spec.containers[0].ports[0].host_port == 18081

    def ingress() -> list[str]:
        lb = core.read_namespaced_service_status("lb1", "default").status.load_balancer
        return sorted(i.ip for i in lb.ingress or [])

    assert wait_for(
        "ingress on both nodes", lambda: len(ingress()) == 2 and ingress()
    ) == [SERVER_IP, AGENT_IP]


def _lb_service(core: client.CoreV1Api, name: str, port: int) -> client.V1Service:
    spec = {
        "type": "LoadBalancer",
        "selector": {"app": "none"},
        "ports": [{"port": port}],
    }
    return core.create_namespaced_service(
        "default", {"metadata": {"name": name}, "spec": spec}
    )


def _svclb_pods(core: client.CoreV1Api, svc: client.V1Service) -> list[client.V1Pod]:
    prefix = f"svclb-{svc.metadata.name}-{svc.metadata.uid[:8]}"
    pods = core.list_namespaced_pod("kube-system").items
    return [p for p in pods if p.metadata.name.startswith(prefix)]


def test_svclb_pods_stay_pending_when_another_service_holds_their_host_port(cluster):
    core = cluster["core"]
    # as with traefik's svclb on 80/443 in C08: the first holds the port on every node
    hold = _lb_service(core, "hold", 18082)
    wait_for(
        "hold's svclb pods bound",
        lambda: (
            len(pods := _svclb_pods(core, hold)) == 2
            and all(p.spec.node_name for p in pods)
        ),
    )
    _lb_service(core, "clash", 18082)
    clash = core.read_namespaced_service("clash", "default")
    prefix = f"svclb-clash-{clash.metadata.uid[:8]}"

    def pending() -> list[client.V1Pod]:
        pods = [
            p
            for p in core.list_namespaced_pod("kube-system").items
            if p.metadata.name.startswith(prefix)
        ]
        return (
            pods
            if len(pods) == 2
            and all(p.status.phase == "Pending" and not p.spec.node_name for p in pods)
            else []
        )

    wait_for("both clash svclb pods Pending", pending)
    events = wait_for(
        "FailedScheduling events",
        lambda: [
            e
            for e in core.list_namespaced_event("kube-system").items
            if e.reason == "FailedScheduling"
            and e.involved_object.name.startswith(prefix)
        ],
    )
    assert (
        "0/2 nodes are available: "
        "1 node(s) didn't have free ports for the requested pod ports, "
        "1 node(s) didn't match Pod's node affinity/selector."
        in {e.message for e in events}
    )
    assert (
        core.read_namespaced_service_status(
            "clash", "default"
        ).status.load_balancer.ingress
        is None
    )


def test_an_image_missing_from_the_image_map_fails_to_pull(cluster):
    core = cluster["core"]
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "nopull"},
            "spec": {"containers": [{"name": "c", "image": "example.org/no/such:1"}]},
        },
    )

    def waiting_reason() -> str:
        st = core.read_namespaced_pod("nopull", "default").status.container_statuses
        return st[0].state.waiting.reason if st and st[0].state.waiting else ""

    assert wait_for(
        "ErrImagePull",
        lambda: (
            waiting_reason() in ("ErrImagePull", "ImagePullBackOff")
            and waiting_reason()
        ),
    )
    assert core.read_namespaced_pod("nopull", "default").status.phase == "Pending"


def test_a_crashing_container_is_restarted_with_back_off(cluster):
    core = cluster["core"]
    # klipper-lb with nothing to forward to exits at once
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "crash"},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "rancher/klipper-lb:v0.4.7",
                        "env": [
                            {"name": "SRC_PORT", "value": "1"},
                            {"name": "DEST_PORT", "value": "1"},
                        ],
                    }
                ]
            },
        },
    )
    status = wait_for(
        "two restarts",
        lambda: (
            (
                s := core.read_namespaced_pod(
                    "crash", "default"
                ).status.container_statuses
            )
            and s[0].restart_count >= 2
            and s[0]
        ),
    )
    assert status.last_state.terminated.exit_code != 0
    assert "DEST_IPS is empty" in core.read_namespaced_pod_log("crash", "default")


def test_a_meshed_pod_publishes_its_proxy_and_a_scrape_target(cluster):
    core = cluster["core"]
    app = {
        "name": "app",
        "image": "ghcr.io/meshstack/echo:1",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    proxy = {
        "name": "linkerd-proxy",
        "image": "cr.l5d.io/linkerd/proxy:stable-2.14.10",
        "ports": [
            {"name": "linkerd-proxy", "containerPort": 4143},
            {"name": "linkerd-admin", "containerPort": 4191},
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 4191}},
    }
    labels = {"app": "meshed", "linkerd.io/proxy-deployment": "meshed"}
    pod = {
        "metadata": {"name": "meshed", "labels": labels},
        "spec": {
            "containers": [app, proxy],
            "nodeSelector": {"kubernetes.io/hostname": "agt"},
        },
    }
    core.create_namespaced_pod("default", pod)

    def all_ready() -> bool:
        st = core.read_namespaced_pod("meshed", "default").status.container_statuses
        return bool(st) and len(st) == 2 and all(c.ready for c in st)

    wait_for("the meshed pod Ready", all_ready)
    ports = json.loads(
        core.read_namespaced_pod("meshed", "default").metadata.annotations[
            "twin.meshstack.io/port-map"
        ]
    )

    # the published app port is the proxy's, which forwards to the app
    answer = _get_json(f"http://{AGENT_IP}:{ports['8080']}/through")
    assert answer["pod"] == "meshed" and answer["path"] == "/through"
    with urllib.request.urlopen(
        f"http://{AGENT_IP}:{ports['4191']}/metrics", timeout=3
    ) as resp:
        assert b"request_total" in resp.read()

    target = cluster["root"] / "targets/default_meshed.json"
    doc = json.loads(target.read_text())
    assert doc == [
        {
            "targets": [f"{AGENT_IP}:{ports['4191']}"],
            "labels": {
                "namespace": "default",
                "pod": "meshed",
                "node": "agt",
                "deployment": "meshed",
            },
        }
    ]
    core.delete_namespaced_pod("meshed", "default")
    wait_for("the scrape target removed", lambda: not target.exists())


def _judge_log(text: str) -> list[str]:
    return get("k3s-log").judge(Evidence(text), Context()).reasons


def test_an_agent_with_a_wrong_token_is_refused_and_exits_non_zero(cluster):
    done = k3s(
        cluster["root"] / "bad",
        "agent",
        "--server",
        f"https://{SERVER_IP}:{cluster['port']}",
        "--token",
        "K10abc::server:wrong",
        "--node-ip",
        "127.0.20.9",
        "--node-name",
        "bad",
    )
    assert done.returncode == 1
    assert "token_rejected" in _judge_log(done.stderr), done.stderr


def test_a_node_name_rejoining_with_another_password_is_rejected(cluster):
    token = (cluster["root"] / "srv/var/lib/rancher/k3s/server/node-token").read_text()
    done = k3s(
        cluster["root"] / "impostor",
        "agent",
        "--server",
        f"https://{SERVER_IP}:{cluster['port']}",
        "--token",
        token,
        "--node-ip",
        "127.0.20.8",
        "--node-name",
        "agt",
    )
    assert done.returncode == 1
    assert "Node password rejected" in done.stderr
    assert "node_password_rejected" in _judge_log(done.stderr)


def test_servicelb_makes_nothing_when_the_server_runs_with_it_disabled(tmp_path):
    port = _free_port("127.0.21.1")
    done = k3s(
        tmp_path / "s",
        "server",
        "--daemon",
        "--node-name",
        "solo",
        "--node-ip",
        "127.0.21.1",
        "--bind-address",
        "127.0.21.1",
        "--https-listen-port",
        str(port),
        "--service-cidr",
        "127.45.0.0/16",
        "--disable",
        "servicelb",
        "--no-deploy",
        "traefik",
        "--disable=metrics-server,local-storage",
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        api = config.new_client_from_config(
            config_file=str(tmp_path / "s/etc/rancher/k3s/k3s.yaml")
        )
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        core.create_namespaced_service(
            "default",
            {
                "metadata": {"name": "lb"},
                "spec": {
                    "type": "LoadBalancer",
                    "selector": {"app": "x"},
                    "ports": [{"port": 18083}],
                },
            },
        )
        # the controllers run (coredns becomes Available) yet no svclb appears
        wait_for(
            "coredns Available",
            lambda: (
                (
                    apps.read_namespaced_deployment(
                        "coredns", "kube-system"
                    ).status.available_replicas
                    or 0
                )
                >= 1
            ),
        )
        time.sleep(1.5)
        assert [
            d.metadata.name
            for d in apps.list_namespaced_daemon_set("kube-system").items
        ] == []
        assert (
            core.read_namespaced_service("lb", "default").status.load_balancer.ingress
            is None
        )
        assert {
            d.metadata.name
            for d in apps.list_namespaced_deployment("kube-system").items
        } == {"coredns"}
    finally:
        k3s(tmp_path / "s", "killall")


def test_an_agent_that_stops_goes_not_ready_after_the_grace_period(cluster):
    core = cluster["core"]
    assert k3s(cluster["root"] / "agt", "killall").returncode == 0
    cond = wait_for(
        "agt Ready=Unknown",
        lambda: (c := _ready(core.read_node("agt"))).status == "Unknown" and c,
        timeout=15,
    )
    assert cond.reason == "NodeStatusUnknown"


def test_deleting_a_node_frees_its_name_for_a_node_with_another_password(cluster):
    core = cluster["core"]
    # the old agent must not come back and re-register its node meanwhile
    assert k3s(cluster["root"] / "agt", "killall").returncode == 0
    core.delete_node("agt")
    wait_for(
        "the password entry removed",
        lambda: (
            "agt.node-password.k3s"
            not in {
                s.metadata.name
                for s in core.list_namespaced_secret("kube-system").items
            }
        ),
    )
    token = (cluster["root"] / "srv/var/lib/rancher/k3s/server/node-token").read_text()
    newcomer = cluster["root"] / "newcomer"
    done = k3s(
        newcomer,
        "agent",
        "--daemon",
        "--server",
        f"https://{SERVER_IP}:{cluster['port']}",
        "--token",
        token,
        "--node-ip",
        "127.0.20.7",
        "--node-name",
        "agt",
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        node = wait_for(
            "agt Ready again",
            lambda: (n := core.read_node("agt")) and _ready(n).status == "True" and n,
        )
        assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == [
            "127.0.20.7"
        ]
    finally:
        k3s(newcomer, "killall")
