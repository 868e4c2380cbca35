"""Pod ports on a twin node come from a pool below the kernel's ephemeral range.

Ports picked by binding port 0 lie in the ephemeral range, where any outgoing
connection of the node may take one as its source port between the plan and the
container's own bind: the container then fails to listen for as long as that
connection lives, and its pod never becomes ready.
"""

from __future__ import annotations

import socket
from pathlib import Path

from meshstack.twin.kube.runtime import PortPool, plan_ports

HOST = "127.0.42.1"


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_pool_ports_lie_outside_the_ephemeral_range_and_are_handed_out_once() -> None:
    pool = PortPool(HOST)
    ports = [pool.take() for _ in range(50)]
    assert len(set(ports)) == 50
    low, high = _ephemeral_range()
    assert not [p for p in ports if low <= p <= high]


def test_a_port_something_else_listens_on_is_skipped() -> None:
    pool = PortPool(HOST)
    first = pool.take()
    pool.give_back([first])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))  # where a meshed app would listen
        busy.listen()
        pool._next = first
        assert pool.take() != first


def test_a_port_given_back_can_be_handed_out_again() -> None:
    pool = PortPool(HOST)
    port = pool.take()
    pool.give_back([port])
    pool._next = port
    assert pool.take() == port


def test_a_meshed_pod_gets_distinct_pooled_ports_for_app_proxy_and_admin() -> None:
    spec = {
        "containers": [
            {"name": "web", "ports": [{"containerPort": 8080}]},
            {
                "name": "linkerd-proxy",
                "image": "cr.l5d.io/linkerd/proxy:stable-2.14.10",
                "ports": [{"containerPort": 4143}, {"containerPort": 4191}],
            },
        ]
    }
    plan = plan_ports(spec, PortPool(HOST))
    # the app, its proxy front, the proxy's inbound and its admin port
    assert len(plan.pooled) == len(set(plan.pooled)) == 4
    assert plan.published[8080] != plan.listen["web"][8080]
    assert plan.admin_port in plan.pooled
