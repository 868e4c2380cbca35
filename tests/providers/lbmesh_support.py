"""Shared by the lb and mesh provider self-tests: a twin API server and a context.

A plain module (not a conftest) so it cannot collide with other layers' helpers.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes import client

from meshstack.local.env import end_namespace_processes
from meshstack.profile import check
from meshstack.providers.base import LayerState, StackContext
from meshstack.providers.kube_apply import KubeClient
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.kube.controllers import ControllerOptions

RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


class TwinCluster:
    """A twin API server on loopback (no kubelet) with one Ready node."""

    def __init__(self, root: Path, servicelb: bool = False) -> None:
        self.stopped = threading.Event()
        cfg = ApiServerConfig(
            root / "api",
            port=0,
            persist=False,
            controllers=ControllerOptions(servicelb=servicelb),
        )
        self.server = ApiServer(cfg)
        self.server.start()
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(self.server.kubeconfig())
        self.kube = KubeClient.from_file(str(self.kubeconfig))
        self.core = client.CoreV1Api(self.kube.api)
        now = dt.datetime.now(dt.UTC).strftime(RFC3339)
        self.core.create_node({"metadata": {"name": "node-1"}})
        cond = {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": "KubeletReady",
            "message": "ok",
        }
        self.core.patch_node_status("node-1", {"status": {"conditions": [cond]}})

    def play_kubelet(self, namespaces: list[str], seconds: float) -> threading.Thread:
        """For a bounded time, mark every pod of the namespaces Running and ready,
        and keep the node's heartbeat fresh.

        The twin API server runs no kubelet; this stands in for one where a test
        needs pods ready but not their processes. It ends at ``seconds`` or when
        the cluster stops, whichever comes first.
        """
        stop_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)

        def loop() -> None:
            while dt.datetime.now(dt.UTC) < stop_at and not self.stopped.is_set():
                try:
                    self._heartbeat()
                    for ns in namespaces:
                        self._ready(ns)
                except Exception:  # the server went away: the test is over
                    return
                self.stopped.wait(0.3)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def _heartbeat(self) -> None:
        now = dt.datetime.now(dt.UTC).strftime(RFC3339)
        cond = {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
            "reason": "KubeletReady",
            "message": "ok",
        }
        self.core.patch_node_status("node-1", {"status": {"conditions": [cond]}})

    def _ready(self, ns: str) -> None:
        try:
            pods = self.core.list_namespaced_pod(ns).items
        except client.ApiException:
            return
        for pod in pods:
            if pod.status.phase == "Running":
                continue
            statuses = [
                {
                    "name": c.name,
                    "ready": True,
                    "restartCount": 0,
                    "image": c.image,
                    "imageID": "",
                    "state": {
                        "running": {
                            "startedAt": dt.datetime.now(dt.UTC).strftime(RFC3339)
                        }
                    },
                }
                for c in pod.spec.containers
            ]
            status = {
                "phase": "Running",
                "podIP": "127.0.0.1",
                "containerStatuses": statuses,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            try:
                self.core.patch_namespaced_pod_status(
                    pod.metadata.name, ns, {"status": status}
                )
            except client.ApiException:
                pass

    def stop(self) -> None:
        self.stopped.set()
        self.server.stop()


def make_context(tmp_path: Path, cluster: dict[str, Any]) -> StackContext:
    """A context whose state lives in memory, with the cluster layer's outputs."""
    layers = {"cluster": LayerState("cluster", outputs=dict(cluster))}
    return StackContext(
        run_id="selftest-lbmesh",
        profile_path=tmp_path / "profile.yaml",
        workdir=tmp_path / "work",
        layers=layers,
        save=lambda: None,
        progress=lambda layer, step: None,
        secret=lambda spec, what: "",
        path=lambda p: (tmp_path / p).resolve(),
        bundle_dir=tmp_path / "bundle",
    )


def settings(schema: dict[str, Any], **values: Any) -> dict[str, Any]:
    """A layer section validated and defaulted by the profile loader's checker."""
    errors: list[str] = []
    out = check(values, {"type": "dict", "keys": schema}, "layers.x", errors)
    assert not errors, errors
    return out


class NetnsNode:
    """A bridge with a host address and one node namespace running the k3s twin.

    Names and addresses are the caller's (each test module its own), all on the
    bridge made here.
    """

    FAST = {
        "MESHSTACK_TWIN_HEARTBEAT_INTERVAL": "1",
        "MESHSTACK_TWIN_RESYNC_INTERVAL": "0.5",
        "MESHSTACK_TWIN_PROXY_INTERVAL": "0.5",
    }

    def __init__(self, tag: str, subnet: str | int, node_dir: Path) -> None:
        # an int is a third octet: each xdist worker n then gets its own names and
        # /24 (198.19.<octet + n>.0); a string is used as given ("198.19.252")
        if isinstance(subnet, int):
            worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
            tag, subnet = f"{tag}{worker}", f"198.19.{subnet + worker}"
        self.subnet = subnet
        self.bridge, self.netns = f"ms{tag}0", f"ms{tag}-n1"
        self.veth, self.inner = f"ms{tag}-v1", f"zt{tag}1"
        self.host_ip, self.node_ip = f"{self.subnet}.1", f"{self.subnet}.10"
        self.node_dir = node_dir
        self.kubeconfig = node_dir / "etc/rancher/k3s/k3s.yaml"

    def up(self, *server_args: str) -> None:
        self.down()
        for cmd in (
            ("link", "add", self.bridge, "type", "bridge"),
            ("addr", "add", f"{self.host_ip}/24", "dev", self.bridge),
            ("link", "set", self.bridge, "up"),
            ("netns", "add", self.netns),
            (
                "link",
                "add",
                self.veth,
                "type",
                "veth",
                "peer",
                "name",
                self.inner,
                "netns",
                self.netns,
            ),
            ("link", "set", self.veth, "master", self.bridge, "up"),
        ):
            sh("ip", *cmd)
        for cmd in (
            ("addr", "add", f"{self.node_ip}/24", "dev", self.inner),
            ("link", "set", self.inner, "up"),
            ("link", "set", "lo", "up"),
        ):
            sh("ip", "netns", "exec", self.netns, "ip", *cmd)
        done = self.k3s(
            "server",
            "--daemon",
            "--node-name",
            "n1",
            "--bind-address",
            self.node_ip,
            "--token",
            "selftest",
            *server_args,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def k3s(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        src = Path(__file__).resolve().parents[2] / "src"
        env = {
            **os.environ,
            **self.FAST,
            "MESHSTACK_NODE_DIR": str(self.node_dir),
            "PYTHONPATH": str(src),
        }
        return subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                sys.executable,
                "-m",
                "meshstack.twin.k3s",
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def down(self) -> None:
        if self.kubeconfig.exists():
            self.k3s("killall", timeout=60)
        # Whatever still runs in this test's own namespace (a server that failed
        # before writing its kubeconfig, a pod killall missed) goes too: deleting a
        # namespace does not end the processes in it.
        end_namespace_processes(self.netns)
        sh("ip", "netns", "del", self.netns, check=False)
        sh("ip", "link", "del", self.veth, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def sh(
    *argv: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess:
    """A checked command with a timeout; the error quotes its stderr."""
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}"
        )
    return proc


def netns_capable() -> bool:
    import shutil

    return os.geteuid() == 0 and shutil.which("ip") is not None
