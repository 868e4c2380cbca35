"""How long after a condition becomes true does a waiting check notice it?

Two of the harness's own waits are measured on an existing stack:

- a watch-based one (the apps layer waiting for a LoadBalancer address): a Service
  is created as ClusterIP, the wait starts, then the Service is turned into a
  LoadBalancer; a separate raw watch records when MetalLB's address lands, and the
  latency is from then until the harness's wait returns;
- a poll-based one (the overlay layer waiting for a node's network configuration
  over SSH): a node joins a second network, the wait starts, then the member is
  authorized; the latency is from the authorization until the wait returns.

The reference watch and the harness's wait receive the same event in two threads;
whichever runs first is a matter of scheduling, so a latency of a few milliseconds
below zero means the harness's wait was simply served first.
"""

from __future__ import annotations

import statistics
import threading
import time
from functools import partial
from typing import Any

from kubernetes import client, watch

from meshstack import ssh
from meshstack.stack import Stack
from meshstack.wait import wait_for

NAMESPACE = "meshstack-bench"


def _reference_watch(
    core: Any, name: str, seen: dict[str, float], stop: threading.Event
) -> None:
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_service, NAMESPACE, timeout_seconds=60):
        svc = event["object"]
        ingress = (
            (svc.status.load_balancer.ingress or []) if svc.status.load_balancer else []
        )
        if svc.metadata.name == name and ingress and "address" not in seen:
            seen["address"] = time.monotonic()
        if stop.is_set() or "address" in seen:
            w.stop()


def watch_based(stack: Stack, rounds: int = 5) -> dict[str, Any]:
    apps = stack.provider("apps")
    core = client.CoreV1Api(apps.kube.api)
    try:
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
        )
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    latencies, reactions = [], []
    try:
        for i in range(rounds):
            name = f"notice-{i}"
            body = client.V1Service(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1ServiceSpec(
                    type="ClusterIP",
                    selector={"app": "none"},
                    ports=[client.V1ServicePort(port=80 + i)],
                ),
            )
            core.create_namespaced_service(NAMESPACE, body)
            seen: dict[str, float] = {}
            stop = threading.Event()
            ref = threading.Thread(
                target=_reference_watch, args=(core, name, seen, stop)
            )
            ref.start()
            result: dict[str, float] = {}

            def waiter(name: str = name, result: dict[str, float] = result) -> None:
                apps.wait_address(
                    {"namespace": NAMESPACE, "service": name, "name": name}
                )
                result["noticed"] = time.monotonic()

            t = threading.Thread(target=waiter)
            t.start()
            time.sleep(1.0)
            flipped = time.monotonic()
            core.patch_namespaced_service(
                name, NAMESPACE, {"spec": {"type": "LoadBalancer"}}
            )
            t.join(60)
            stop.set()
            ref.join(60)
            if "noticed" in result and "address" in seen:
                latencies.append(result["noticed"] - seen["address"])
                reactions.append(seen["address"] - flipped)
            core.delete_namespaced_service(name, NAMESPACE)
    finally:
        core.delete_namespace(NAMESPACE, _preload_content=False)
    return _summary(latencies, extra={"controller_reaction_seconds": _stats(reactions)})


def poll_based(stack: Stack, rounds: int = 3) -> dict[str, Any]:
    overlay = stack.provider("overlay")
    target = overlay._targets()[0]
    status = overlay._checked_api("GET", "/status")
    latencies = []
    for _ in range(rounds):
        net = overlay._checked_api(
            "POST",
            f"/controller/network/{status['address']}______",
            {"name": "bench", "v4AssignMode": {"zt": True}},
        )
        nwid = net["id"]
        try:
            node = overlay._node(target, "info").check().stdout.split()[2]
            overlay._node(target, "join", nwid).check()
            result: dict[str, float] = {}

            def waiter(nwid: str = nwid, result: dict[str, float] = result) -> None:
                wait_for(
                    "bench netconf",
                    partial(overlay._netconf, target, nwid),
                    done=lambda c: c.get("status") == "OK",
                    timeout=30,
                    interval=overlay.settings["member_interval"],
                    retry_on=(ssh.SSHError,),
                )
                result["noticed"] = time.monotonic()

            t = threading.Thread(target=waiter)
            t.start()
            time.sleep(1.0)
            flipped = time.monotonic()
            overlay._checked_api(
                "POST",
                f"/controller/network/{nwid}/member/{node}",
                {"authorized": True},
            )
            t.join(40)
            if "noticed" in result:
                latencies.append(result["noticed"] - flipped)
            overlay._node(target, "leave", nwid)
        finally:
            overlay._api("DELETE", f"/controller/network/{nwid}")
    return _summary(latencies)


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def _summary(
    latencies: list[float], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {"notice_latency_seconds": _stats(latencies), **(extra or {})}
