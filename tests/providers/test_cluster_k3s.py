"""The k3s cluster provider installs, probes and removes a cluster over real SSH.

The cloud layer is stood in for by a real OpenSSH server on a loopback address
(one sshd serves both "instances"; each gets its own node directory through the
``{node_name}`` placeholder of the install env), and the overlay layer by
loopback addresses for the nodes. The install script is the profile's own
stacks/local/install-k3s.sh, which starts the k3s twin.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshstack.providers.base import LayerState, ProviderError, StackContext
from meshstack.providers.cluster_k3s import PROVIDER, K3sCluster
from tests.sshd_support import free_port, running_sshd

REPO = Path(__file__).resolve().parents[2]
SSH_IP, SERVER_IP, AGENT_IP = "127.0.40.1", "127.0.40.11", "127.0.40.12"
FAST_ENV = {
    "MESHSTACK_TWIN_HEARTBEAT_INTERVAL": "1",
    "MESHSTACK_TWIN_RESYNC_INTERVAL": "0.5",
    "MESHSTACK_TWIN_KUBELET_PORT": "0",
}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), SSH_IP) as server:
        yield server


def _ctx(tmp: Path, sshd: dict[str, Any]) -> StackContext:
    servers = [
        {
            "name": name,
            "role": role,
            "address": SSH_IP,
            "ssh_port": sshd["port"],
            "ssh_user": "root",
            "private_key_file": sshd["key"],
        }
        for name, role in (("node-1", "server"), ("node-2", "agent"))
    ]
    members = [
        {"name": "node-1", "address": SERVER_IP, "interface": "lo"},
        {"name": "node-2", "address": AGENT_IP, "interface": "lo"},
    ]
    layers = {
        "cloud": LayerState("cloud", outputs={"servers": servers}),
        "overlay": LayerState(
            "overlay", outputs={"members": members, "cidr": "127.0.40.0/24"}
        ),
    }
    return StackContext(
        run_id="t1",
        profile_path=REPO / "stacks/local.yaml",
        workdir=tmp / "work",
        layers=layers,
        save=lambda: None,
        progress=lambda layer, step: None,
        secret=lambda spec, what: Path(spec["file"]).read_text(),
        path=lambda p: (REPO / "stacks" / p).resolve(),
    )


def _settings(tmp: Path, api_port: int) -> dict[str, Any]:
    return {
        "install": {
            "script": "local/install-k3s.sh",
            "env": {
                "K3S_TWIN_PYTHON": "{python}",
                "MESHSTACK_NODE_DIR": f"{tmp}/nodes/{{node_name}}",
                "PYTHONPATH": {"path": "../src"},
                **FAST_ENV,
            },
        },
        "token": {"file": str(tmp / "k3s-token")},
        "server_args": [
            "--node-name",
            "{node_name}",
            "--disable",
            "servicelb",
            "--disable=traefik,metrics-server",
            "--node-ip",
            "{node_ip}",
            "--flannel-iface",
            "{overlay_iface}",
            "--bind-address",
            "{node_ip}",
            "--https-listen-port",
            str(api_port),
            "--service-cidr",
            "127.47.0.0/16",
        ],
        "agent_args": [
            "--node-name",
            "{node_name}",
            "--node-ip",
            "{node_ip}",
            "--flannel-iface",
            "{overlay_iface}",
        ],
        "api_port": api_port,
        "node_ready_timeout": 30,
        "install_timeout": 60,
    }


@pytest.fixture(scope="module")
def provisioned(
    sshd: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[K3sCluster]:
    """A cluster the provider installed on the two loopback 'instances'."""
    tmp = tmp_path_factory.mktemp("cluster")
    ctx = _ctx(tmp, sshd)
    provider = PROVIDER(_settings(tmp, free_port(SERVER_IP)), ctx)
    try:
        provider.provision()
        yield provider
    finally:
        provider.teardown()


def test_provision_records_both_nodes_and_writes_a_private_kubeconfig(provisioned):
    assert [(r["id"], r["role"]) for r in provisioned.state.resources] == [
        ("node-1", "server"),
        ("node-2", "agent"),
    ]
    kc = Path(provisioned.state.outputs["kubeconfig"])
    assert kc.parent == provisioned.ctx.workdir and kc.stat().st_mode & 0o777 == 0o600
    assert provisioned.state.outputs["api_url"].startswith(f"https://{SERVER_IP}:")
    assert (
        "k3s-token" in os.listdir(kc.parents[1])
        and (kc.parents[1] / "k3s-token").stat().st_mode & 0o777 == 0o600
    )


def test_the_probe_passes_with_nodes_ready_on_the_overlay(provisioned):
    finding = provisioned.probe()
    assert finding.reasons == [], finding.summary()
    assert "node node-1 Ready 127.0.40.11" in finding.evidence
    assert "node node-2 Ready 127.0.40.12" in finding.evidence
    assert provisioned.state.outputs["servicelb_disabled"] is True
    server_args = provisioned.state.outputs["k3s_server_args"][0]
    assert server_args[:5] == [
        "server",
        "--node-name",
        "node-1",
        "--disable",
        "servicelb",
    ]


def test_the_probe_fails_when_node_addresses_lie_outside_the_overlay(provisioned):
    provisioned.state.outputs["overlay_cidr"] = "198.19.0.0/24"
    try:
        finding = provisioned.probe()
    finally:
        provisioned.state.outputs["overlay_cidr"] = "127.0.40.0/24"
    assert finding.reasons == ["node_ip_not_on_overlay"]
    assert str(finding.verdict) == "FAIL"


def test_an_agent_with_a_wrong_token_fails_provisioning_as_token_rejected(provisioned):
    node = {
        **provisioned.ctx.outputs("cloud")["servers"][1],
        "name": "node-9",
        "node_ip": "127.0.40.19",
        "overlay_iface": "lo",
    }
    url = provisioned.state.outputs["api_url"]
    with pytest.raises(ProviderError) as err:
        provisioned._install_node(
            node,
            ["agent", "--node-ip", "127.0.40.19"],
            {"K3S_URL": url, "K3S_TOKEN": "wrong"},
        )
    assert err.value.finding.reasons == ["token_rejected"]
    assert "wrong" not in "\n".join(err.value.finding.evidence)


def test_flags_given_apart_are_judged_incomplete():
    from meshstack.providers.cluster_k3s_checks import judge_flags
    from meshstack.verdicts import Finding

    f = Finding(layer="cluster")
    args = '["agent", "--node-ip", "198.19.0.12"]'
    nodes = [{"metadata": {"name": "n", "annotations": {"k3s.io/node-args": args}}}]
    assert judge_flags(nodes, f) == 1
    assert f.reasons == ["overlay_flags_incomplete"]
    assert "without --flannel-iface" in f.hints[0]


def test_the_named_checks_judge_the_live_cluster(provisioned):
    for check in ("nodes", "system_pods", "addresses", "flags"):
        finding = provisioned.judge(check)
        assert finding.reasons == [], f"{check}: {finding.summary()}"
        assert finding.evidence, f"{check} judged from no evidence"
    table = provisioned.nodes_table().splitlines()
    assert table[0].split()[:6] == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
    ]
    assert table[1].split()[:3] == ["node-1", "Ready", "control-plane,master"]
    assert table[2].split()[:3] == ["node-2", "Ready", "<none>"]
    assert provisioned.state.outputs["server_args"][:3] == [
        "--node-name",
        "node-1",
        "--disable",
    ]


def test_teardown_uninstalls_every_node_it_installed(sshd, tmp_path):
    ctx = _ctx(tmp_path, sshd)
    provider = PROVIDER(_settings(tmp_path, free_port(SERVER_IP)), ctx)
    provider.provision()
    pid_files = [tmp_path / f"nodes/{n}/run/k3s.pid" for n in ("node-1", "node-2")]
    pids = [int(p.read_text()) for p in pid_files]
    kubeconfig = Path(provider.state.outputs["kubeconfig"])
    assert kubeconfig.is_file()
    provider.teardown()
    assert provider.state.resources == []
    assert not kubeconfig.exists()  # its admin token is for a cluster now gone
    assert not any(p.exists() for p in pid_files)
    time.sleep(0.2)
    assert not any(
        Path(f"/proc/{pid}/cmdline").exists()
        and b"twin.k3s" in Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in pids
    )
