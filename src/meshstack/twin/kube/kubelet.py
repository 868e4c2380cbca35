"""The twin kubelet: registers its Node, runs the pods bound to it, reports status.

It talks to the API server only through the official client, as a real kubelet
does over its kubeconfig: it lists and watches pods with
``fieldSelector=spec.nodeName=<node>``, starts their containers as processes
(:mod:`.runtime`, :mod:`.podrun`), supervises them (restarts by restartPolicy
with back-off), runs readiness probes, and patches pod status (phase,
conditions, containerStatuses, podIP, hostIP) and the port-map annotation the
Endpoints are built from. It posts the Node's Ready condition every
``heartbeat_interval`` seconds, serves container logs for ``pods/log``, and
writes a Prometheus file_sd target for each meshed pod's proxy admin port.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from meshstack.twin.kube import nodeinfo
from meshstack.twin.kube.controllers.endpoints import PORT_MAP_ANNOTATION
from meshstack.twin.kube.images import ImageMap
from meshstack.twin.kube.logserver import LogServer
from meshstack.twin.kube.podrun import NodeInfo, PodRun, build_containers, new_plan
from meshstack.twin.kube.podstatus import pod_status
from meshstack.twin.kube.rawapi import raw
from meshstack.twin.kube.runtime import PortPool, kill_recorded

log = logging.getLogger(__name__)

START_ATTEMPTS = 5
START_RETRY_SECONDS = 2.0


@dataclass
class KubeletConfig:
    node: NodeInfo
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    heartbeat_interval: float = 10.0
    sync_interval: float = 0.5
    kubelet_port: int = 10250
    prom_targets_dir: Path | None = None
    pod_cidr: str = ""
    stop_grace: float = 3.0


class Kubelet:
    def __init__(
        self, api_client: client.ApiClient, cfg: KubeletConfig, images: ImageMap
    ) -> None:
        self.core = client.CoreV1Api(api_client)
        self.cfg = cfg
        self.images = images
        self.runs: dict[str, PodRun] = {}  # pod uid -> run
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.logs = LogServer(cfg.node.ip, cfg.kubelet_port, self)
        self._sent: dict[str, Any] = {}
        self.ports = PortPool(cfg.node.ip)

    @property
    def name(self) -> str:
        return self.cfg.node.name

    def start(self) -> None:
        killed = kill_recorded(self.cfg.node.dir / "pods")
        if killed:
            log.info(
                "[%s] stopped %d container(s) left by an earlier kubelet",
                self.name,
                killed,
            )
        self.logs.start()
        nodeinfo.register(self.core, self.cfg, self.logs.port)
        for target in (self._heartbeat, self._watch_pods, self._supervise):
            threading.Thread(
                target=target, daemon=True, name=f"kubelet-{target.__name__}"
            ).start()
        log.info("[%s] kubelet running (InternalIP %s)", self.name, self.cfg.node.ip)

    def stop(self, stop_pods: bool = True) -> None:
        self.stopping.set()
        if stop_pods:
            with self.lock:
                runs = list(self.runs.values())
                self.runs.clear()
            for run in runs:
                self._stop_run(run)
        self.logs.stop()

    # -- node heartbeat ---------------------------------------------------------
    def _heartbeat(self) -> None:
        while not self.stopping.wait(self.cfg.heartbeat_interval):
            try:
                nodeinfo.heartbeat(self.core, self.cfg, self.logs.port)
            except Exception as exc:  # the API may be away for a while; keep beating
                log.warning(
                    "[%s] heartbeat failed: %s; retrying in %.0f s",
                    self.name,
                    exc,
                    self.cfg.heartbeat_interval,
                )

    # -- pods -----------------------------------------------------------------
    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.name}"
        while not self.stopping.is_set():
            try:
                data = raw(
                    self.core.list_pod_for_all_namespaces, field_selector=selector
                )
                self._resync(data["items"])
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=data["metadata"]["resourceVersion"],
                    timeout_seconds=30,
                    _preload_content=False,
                )
                for event in stream:
                    if self.stopping.is_set():
                        return
                    self._on_event(event["type"], event["raw_object"])
            except Exception as exc:
                if not self.stopping.is_set():
                    log.warning(
                        "[%s] pod watch failed: %s; relisting in 1 s", self.name, exc
                    )
                    time.sleep(1)

    def _resync(self, pods: list[dict[str, Any]]) -> None:
        uids = {p["metadata"]["uid"] for p in pods}
        with self.lock:
            gone = [r for uid, r in self.runs.items() if uid not in uids]
        for run in gone:
            self._on_event("DELETED", run.pod)
        for pod in pods:
            self._on_event("ADDED", pod)

    def _on_event(self, etype: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self.lock:
            run = self.runs.get(uid)
            if etype == "DELETED" or pod["metadata"].get("deletionTimestamp"):
                if run is not None:
                    del self.runs[uid]
                    threading.Thread(
                        target=self._stop_run, args=(run,), daemon=True
                    ).start()
                return
            if run is not None:
                run.pod = pod
                return
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                return
            run = PodRun(pod, self.cfg.node)
            self.runs[uid] = run
        threading.Thread(target=self._start_run, args=(run,), daemon=True).start()

    def _start_run(self, run: PodRun) -> None:
        """Start the pod's containers; a failed start (the API server busy, say) is
        tried again a few times rather than leaving the pod Pending for good."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._start_once(run)
                return
            except Exception:
                log.exception(
                    "[%s/%s] could not start the pod (attempt %d of %d)",
                    run.ns,
                    run.name,
                    attempt,
                    START_ATTEMPTS,
                )
                self._undo_start(run)
            with self.lock:
                wanted = run.pod["metadata"]["uid"] in self.runs
            if not wanted or self.stopping.wait(START_RETRY_SECONDS):
                return
        log.error(
            "[%s/%s] gave up starting the pod; it stays Pending", run.ns, run.name
        )

    def _start_once(self, run: PodRun) -> None:
        plan = new_plan(run, self.ports)
        annotations = {
            PORT_MAP_ANNOTATION: json.dumps(
                {str(k): v for k, v in plan.published.items()}
            )
        }
        self.core.patch_namespaced_pod(
            run.name, run.ns, {"metadata": {"annotations": annotations}}
        )
        missing = build_containers(run, self.images, self.core)
        run.start_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for image in missing:
            self._image_missing(run, image)
        if missing:
            return
        run.dir.mkdir(parents=True, exist_ok=True)
        run.started = time.monotonic()
        for c in run.containers.values():
            c.start()
        log.info(
            "[%s/%s] started %d container(s)", run.ns, run.name, len(run.containers)
        )
        self._write_target(run)

    def _undo_start(self, run: PodRun) -> None:
        """Stop what a failed start began and give its ports back."""
        for c in run.containers.values():
            c.stop(self.cfg.stop_grace)
        if run.plan is not None:
            self.ports.give_back(run.plan.pooled)
            run.plan.pooled.clear()  # never twice: another pod may hold them by then

    def _image_missing(self, run: PodRun, image: str) -> None:
        for c in run.pod["spec"].get("containers") or []:
            if c["image"] == image:
                message = (
                    "rpc error: code = NotFound desc = "
                    f'failed to pull and unpack image "{image}": '
                    "the twin's image map (meshstack/twin/images/*.yaml) "
                    "has no entry for this repository"
                )
                run.waiting[c["name"]] = ("ErrImagePull", message)
        log.warning("[%s/%s] image %s is not in the image map", run.ns, run.name, image)

    def _stop_run(self, run: PodRun) -> None:
        self._undo_start(run)
        self._remove_target(run)
        self._sent.pop(run.pod["metadata"]["uid"], None)
        log.info("[%s/%s] stopped", run.ns, run.name)

    # -- supervision, probes, status ---------------------------------------------
    def _supervise(self) -> None:
        while not self.stopping.wait(self.cfg.sync_interval):
            with self.lock:
                runs = list(self.runs.values())
            for run in runs:
                try:
                    self._sync_status(run)
                except Exception as exc:
                    log.debug("[%s/%s] status sync failed: %s", run.ns, run.name, exc)

    def _sync_status(self, run: PodRun) -> None:
        status = pod_status(run, self.cfg.node.ip)
        uid = run.pod["metadata"]["uid"]
        comparable = json.dumps(status, sort_keys=True, default=str)
        if self._sent.get(uid) == comparable:
            return
        with self.lock:
            if uid not in self.runs:
                return
        self.core.patch_namespaced_pod_status(run.name, run.ns, {"status": status})
        self._sent[uid] = comparable

    # -- Prometheus file_sd ---------------------------------------------------------
    def _target_path(self, run: PodRun) -> Path | None:
        d = self.cfg.prom_targets_dir
        return d / f"{run.ns}_{run.name}.json" if d and run.meshed else None

    def _write_target(self, run: PodRun) -> None:
        path = self._target_path(run)
        if path is None or run.plan is None or run.plan.admin_port is None:
            return
        labels = {
            "namespace": run.ns,
            "pod": run.name,
            "node": self.name,
            "deployment": _deployment(run.pod),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                [
                    {
                        "targets": [f"{self.cfg.node.ip}:{run.plan.admin_port}"],
                        "labels": labels,
                    }
                ]
            )
        )
        tmp.replace(path)

    def _remove_target(self, run: PodRun) -> None:
        path = self._target_path(run)
        if path is not None:
            path.unlink(missing_ok=True)


def _deployment(pod: dict[str, Any]) -> str:
    labels = pod["metadata"].get("labels") or {}
    if labels.get("linkerd.io/proxy-deployment"):
        return str(labels["linkerd.io/proxy-deployment"])
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "ReplicaSet" and labels.get("pod-template-hash"):
            return str(ref["name"]).removesuffix("-" + labels["pod-template-hash"])
    return ""
