"""The ZeroTier twin: the controller API, the node command, and a real L2 overlay.

Two network namespaces on an underlay bridge of this test's own join a network
through the twin `zerotier-cli`; the controller twin gives authorized members an
interface on an overlay bridge, and the members then ping each other over it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshstack.analyzers import Context, Evidence, zerotier_cli, zerotier_member
from meshstack.local.env import LocalEnv

UNDERLAY, UNDERLAY_HOST = "mstu0", "198.18.250.1"
OVERLAY = "msto0"
NODES = {"mst-za": "198.18.250.11", "mst-zb": "198.18.250.12"}
TOKEN = "test-token-0123456789"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise AssertionError(f"{argv} exited {res.returncode}: {res.stderr}")
    return res


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cleanup() -> None:
    for ns in NODES:
        sh("ip", "netns", "del", ns, check=False)
    for dev in (UNDERLAY, OVERLAY, "mstu-za", "mstu-zb"):
        sh("ip", "link", "del", dev, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("zt")
    _cleanup()
    sh("ip", "link", "add", UNDERLAY, "type", "bridge")
    sh("ip", "addr", "add", f"{UNDERLAY_HOST}/24", "dev", UNDERLAY)
    sh("ip", "link", "set", UNDERLAY, "up")
    sh("ip", "link", "add", OVERLAY, "type", "bridge")
    sh("ip", "addr", "add", "198.19.250.1/24", "dev", OVERLAY)
    sh("ip", "link", "set", OVERLAY, "up")
    for ns, addr in NODES.items():
        host_end = f"mstu-{ns[-2:]}"
        sh("ip", "netns", "add", ns)
        sh(
            "ip",
            "link",
            "add",
            host_end,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        sh("ip", "link", "set", host_end, "master", UNDERLAY, "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    token = root / "token"
    token.write_text(TOKEN)
    port = _free_port()
    env = LocalEnv(root)
    proc = env.spawn(
        "zt",
        [
            sys.executable,
            "-m",
            "meshstack.twin.zerotier.controller",
            "--listen",
            f"{UNDERLAY_HOST}:{port}",
            "--listen",
            f"127.0.0.1:{port}",
            "--token-file",
            str(token),
            "--data",
            str(root / "ctl.json"),
            "--bridge",
            OVERLAY,
        ],
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            api(url, "GET", "/status")
            break
        except OSError:
            time.sleep(0.05)
    yield {"url": url, "underlay_url": f"http://{UNDERLAY_HOST}:{port}", "root": root}
    env.kill("zt")
    proc.wait(timeout=5)
    _cleanup()


def api(url: str, method: str, path: str, body: Any = None, token: str = TOKEN) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("X-ZT1-Auth", token)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def cli(lab: dict[str, Any], ns: str, *args: str) -> str:
    home = Path(lab["root"]) / ns
    return sh(
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        "-m",
        "meshstack.twin.zerotier.cli",
        "--home",
        str(home),
        "--controller",
        lab["underlay_url"],
        *args,
    ).stdout


def test_the_controller_refuses_a_wrong_token(lab: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as exc:
        api(lab["url"], "GET", "/controller/network", token="wrong")
    assert exc.value.code == 401


def test_members_get_addresses_only_once_authorized_and_then_reach_each_other(
    lab: dict[str, Any],
) -> None:
    ctl = api(lab["url"], "GET", "/status")["address"]
    net = api(
        lab["url"],
        "POST",
        f"/controller/network/{ctl}______",
        {
            "name": "t",
            "v4AssignMode": {"zt": True},
            "ipAssignmentPools": [
                {"ipRangeStart": "198.19.250.10", "ipRangeEnd": "198.19.250.20"}
            ],
            "routes": [{"target": "198.19.250.0/24"}],
            "mtu": 2800,
        },
    )
    nwid = net["id"]
    assert len(nwid) == 16 and nwid.startswith(ctl)
    nodes = {}
    for ns in NODES:
        nodes[ns] = cli(lab, ns, "info").split()[2]
        assert cli(lab, ns, "join", nwid).strip() == "200 join OK"

    # Joined but not authorized: the node waits for its configuration.
    waiting = cli(lab, "mst-za", "listnetworks")
    assert "REQUESTING_CONFIGURATION" in waiting
    finding = zerotier_cli.judge(Evidence(waiting), Context())
    assert "no_network_config" in finding.reasons

    for node in nodes.values():
        member = api(
            lab["url"],
            "POST",
            f"/controller/network/{nwid}/member/{node}",
            {"authorized": True},
        )
        assert member["authorized"] and member["ipAssignments"]
    listed = cli(lab, "mst-za", "listnetworks")
    assert " OK " in listed and "198.19.250." in listed
    ok = zerotier_cli.judge(Evidence(listed), Context(overlay_cidr="198.19.250.0/24"))
    assert ok.verdict.healthy, ok.to_json()

    member_b = api(
        lab["url"], "GET", f"/controller/network/{nwid}/member/{nodes['mst-zb']}"
    )
    address_b = member_b["ipAssignments"][0]
    ping = sh(
        "ip",
        "netns",
        "exec",
        "mst-za",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        address_b,
        check=False,
    )
    assert ping.returncode == 0, ping.stdout

    # Deauthorized: the configuration and the interface go away, as on a real node.
    api(
        lab["url"],
        "POST",
        f"/controller/network/{nwid}/member/{nodes['mst-zb']}",
        {"authorized": False},
    )
    assert "ACCESS_DENIED" in cli(lab, "mst-zb", "listnetworks")
    gone = sh(
        "ip",
        "netns",
        "exec",
        "mst-za",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        address_b,
        check=False,
    )
    assert gone.returncode != 0
    doc = api(lab["url"], "GET", f"/controller/network/{nwid}/member/{nodes['mst-zb']}")
    judged = zerotier_member.judge(Evidence(json.dumps(doc)), Context())
    assert judged.reasons == ["member_deauthorized"]

    api(lab["url"], "DELETE", f"/controller/network/{nwid}")
    assert nwid not in api(lab["url"], "GET", "/controller/network")
