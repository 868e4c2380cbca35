"""A pod's status as the kubelet reports it, and the restarts it makes.

Restart back-off doubles from 0.5 s up to ``MAX_BACKOFF`` (a real kubelet: 10 s
up to 5 min; shortened so that the self-tests stay fast), reported as
``CrashLoopBackOff`` while waiting.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from meshstack.twin.kube.podrun import PodRun, image_id, probe
from meshstack.twin.kube.runtime import Container, _now

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0


def restart_exited(run: PodRun) -> None:
    policy = run.pod["spec"].get("restartPolicy", "Always")
    for c in run.containers.values():
        code = c.exited()
        if code is None:
            continue
        assert c.proc is not None
        if c.exit_seen_pid != c.proc.pid:
            c.exit_seen_pid = c.proc.pid
            c.last_exit, c.last_finished_at = code, _now()
            if policy == "Always" or (policy == "OnFailure" and code != 0):
                c.next_start = time.monotonic() + min(MAX_BACKOFF, 0.5 * 2**c.restarts)
                log.info(
                    "[%s/%s] container %s exited %d; restarting",
                    run.ns,
                    run.name,
                    c.name,
                    code,
                )
        if c.next_start and time.monotonic() >= c.next_start:
            c.restarts += 1
            c.next_start = 0.0
            c.start()


def _state(run: PodRun, c: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    code = c.exited()
    last: dict[str, Any] = {}
    if c.restarts and c.last_exit is not None:
        last = {
            "terminated": {
                "exitCode": c.last_exit,
                "reason": "Error" if c.last_exit else "Completed",
                "finishedAt": c.last_finished_at,
            }
        }
    if code is None:
        return {"running": {"startedAt": c.started_at}}, last
    if c.next_start:
        message = (
            f"back-off restarting failed container {c.name} in pod {run.name}_{run.ns}"
        )
        return {"waiting": {"reason": "CrashLoopBackOff", "message": message}}, last
    reason = "Completed" if code == 0 else "Error"
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "startedAt": c.started_at,
            "finishedAt": c.last_finished_at or _now(),
        }
    }, last


def _container_status(run: PodRun, spec: dict[str, Any]) -> dict[str, Any]:
    name = spec["name"]
    base = {
        "name": name,
        "image": spec["image"],
        "imageID": image_id(spec["image"]),
        "restartCount": 0,
    }
    if name in run.waiting:
        reason, message = run.waiting[name]
        if (
            reason == "ErrImagePull"
            and time.monotonic() - run.started > 2
            and run.start_time
        ):
            reason = "ImagePullBackOff"
        return {
            **base,
            "ready": False,
            "started": False,
            "state": {"waiting": {"reason": reason, "message": message}},
        }
    c = run.containers.get(name)
    if c is None or c.proc is None:
        return {
            **base,
            "ready": False,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }
    state, last = _state(run, c)
    ready = "running" in state and probe(run, spec)
    out = {
        **base,
        "ready": ready,
        "started": "running" in state,
        "restartCount": c.restarts,
        "state": state,
        "containerID": f"containerd://{c.proc.pid:064x}",
    }
    if last:
        out["lastState"] = last
    return out


def _phase(run: PodRun, statuses: list[dict[str, Any]]) -> str:
    states = [s["state"] for s in statuses]
    if any(
        "waiting" in s
        and s["waiting"]["reason"]
        in ("ContainerCreating", "ErrImagePull", "ImagePullBackOff")
        for s in states
    ):
        return "Pending"
    if states and all("terminated" in s for s in states):
        ok = all(s["terminated"]["exitCode"] == 0 for s in states)
        return "Succeeded" if ok else "Failed"
    return "Running"


def _cond(type_: str, ok: bool, reason: str = "") -> dict[str, Any]:
    out = {
        "type": type_,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": _now(),
    }
    if reason and not ok:
        out["reason"] = reason
    return out


def pod_status(run: PodRun, node_ip: str) -> dict[str, Any]:
    restart_exited(run)
    statuses = [
        _container_status(run, c) for c in run.pod["spec"].get("containers") or []
    ]
    ready = bool(statuses) and all(s["ready"] for s in statuses)
    old = {c.get("type"): c for c in run.pod.get("status", {}).get("conditions") or []}
    conds = [
        _cond("Initialized", True),
        _cond("Ready", ready, "ContainersNotReady"),
        _cond("ContainersReady", ready, "ContainersNotReady"),
        old.get("PodScheduled") or _cond("PodScheduled", True),
    ]
    for c in conds:  # keep the transition time of a condition that did not change
        prev = old.get(c["type"])
        if prev and prev.get("status") == c["status"]:
            c["lastTransitionTime"] = prev.get(
                "lastTransitionTime", c["lastTransitionTime"]
            )
    return {
        "phase": _phase(run, statuses),
        "conditions": conds,
        "containerStatuses": statuses,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "podIP": node_ip,
        "podIPs": [{"ip": node_ip}],
        "startTime": run.start_time or _now(),
        "qosClass": "BestEffort",
    }
