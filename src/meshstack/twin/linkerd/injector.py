"""The proxy injector's mutating webhook: real AdmissionReview v1 in, JSONPatch out.

As in Linkerd, a pod is injected only when ``linkerd.io/inject: enabled`` is an
*annotation* on its namespace or on the pod (template) itself, and the pod does not
opt out. An annotation on a Deployment's own metadata, or a namespace *label*, is
never read; such pods are admitted unchanged, the injector logs that it skipped
them and records an ``InjectionSkipped`` event on the owning workload.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import uuid
from typing import Any

from kubernetes import client

from meshstack.twin.linkerd.kube import Kube

log = logging.getLogger(__name__)

INJECT = "linkerd.io/inject"
SKIP_NO_ANNOTATION = (
    'neither the namespace nor the pod have the annotation "linkerd.io/inject:enabled"'
)
PROXY_IMAGE = "cr.l5d.io/linkerd/proxy"


def logline(level: str, msg: str) -> str:
    """One line in the injector's logrus text format."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'time="{now}" level={level} msg={json.dumps(msg)}'


def skip_reason(pod: dict[str, Any], ns_notes: dict[str, str]) -> str | None:
    """Why the pod is not injected, in the injector's words; None to inject it."""
    meta = pod.get("metadata") or {}
    notes = meta.get("annotations") or {}
    spec = pod.get("spec") or {}
    if any(c.get("name") == "linkerd-proxy" for c in spec.get("containers") or []):
        return "pod has a sidecar injected already"
    if spec.get("hostNetwork"):
        return "hostNetwork is enabled"
    own = notes.get(INJECT)
    if own == "disabled":
        return f'pod has the annotation "{INJECT}:disabled"'
    if own == "enabled" or ns_notes.get(INJECT) == "enabled":
        return None
    return SKIP_NO_ANNOTATION


def proxy_container(version: str) -> dict[str, Any]:
    return {
        "name": "linkerd-proxy",
        "image": f"{PROXY_IMAGE}:{version}",
        "ports": [
            {"name": "linkerd-proxy", "containerPort": 4143},
            {"name": "linkerd-admin", "containerPort": 4191},
        ],
        "env": [
            {"name": "LINKERD2_PROXY_LOG", "value": "warn,linkerd=info"},
            {"name": "LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "value": "0.0.0.0:4191"},
            {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": "0.0.0.0:4143"},
            {
                "name": "LINKERD2_PROXY_DESTINATION_SVC_ADDR",
                "value": "linkerd-dst.linkerd.svc.cluster.local:8086",
            },
            {
                "name": "LINKERD2_PROXY_IDENTITY_SVC_ADDR",
                "value": "linkerd-identity.linkerd.svc.cluster.local:8080",
            },
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 4191}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": 4191}},
    }


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _add_map(path: str, current: dict | None, new: dict[str, str]) -> list[dict]:
    if not current:
        return [{"op": "add", "path": path, "value": new}]
    return [
        {"op": "add", "path": f"{path}/{_escape(k)}", "value": v}
        for k, v in new.items()
    ]


def patch(pod: dict[str, Any], version: str, ns: str, owner: str | None) -> list[dict]:
    meta = pod.get("metadata") or {}
    notes = {
        "linkerd.io/proxy-version": version,
        "linkerd.io/created-by": f"linkerd/proxy-injector {version}",
        "linkerd.io/identity-mode": "default",
        "linkerd.io/inject": "enabled",
    }
    labels = {"linkerd.io/control-plane-ns": "linkerd", "linkerd.io/workload-ns": ns}
    if owner and owner.startswith("Deployment/"):
        labels["linkerd.io/proxy-deployment"] = owner.split("/", 1)[1]
    ops = [
        {"op": "add", "path": "/spec/containers/-", "value": proxy_container(version)}
    ]
    ops += _add_map("/metadata/annotations", meta.get("annotations"), notes)
    ops += _add_map("/metadata/labels", meta.get("labels"), labels)
    return ops


class Injector:
    """Answers AdmissionReviews for pods; records its decisions as events and logs."""

    def __init__(self, kube: Kube, version: str, emit=print) -> None:
        self.kube, self.version, self.emit = kube, version, emit

    def review(self, body: dict[str, Any]) -> dict[str, Any]:
        req = body.get("request") or {}
        response: dict[str, Any] = {"uid": req.get("uid", ""), "allowed": True}
        out = {
            "apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": response,
        }
        if (req.get("kind") or {}).get("kind") != "Pod":
            return out
        pod, ns = req.get("object") or {}, req.get("namespace") or "default"
        meta = pod.get("metadata") or {}
        label = f"pod/{meta.get('name') or meta.get('generateName', '')}"
        self.emit(logline("info", f"received {label}"))
        owner = self._owner(ns, meta)
        reason = skip_reason(pod, self._ns_annotations(ns))
        if reason is not None:
            self.emit(logline("info", f"skipped {label}: {reason}"))
            self._event(
                ns,
                owner,
                "InjectionSkipped",
                f"Linkerd sidecar proxy injection skipped: {reason}",
            )
            return out
        ops = patch(pod, self._proxy_version(), ns, owner)
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
        self.emit(logline("info", f"injection patch generated for: {label}"))
        self._event(ns, owner, "Injected", "Linkerd sidecar proxy injected")
        return out

    def _ns_annotations(self, ns: str) -> dict[str, str]:
        return dict(self.kube.core.read_namespace(ns).metadata.annotations or {})

    def _proxy_version(self) -> str:
        import yaml

        try:
            cm = self.kube.core.read_namespaced_config_map("linkerd-config", "linkerd")
            values = yaml.safe_load((cm.data or {}).get("values", "")) or {}
            return str(values["proxy"]["image"]["version"])
        except Exception:  # the config is optional for the version; the tag is not
            return self.version

    def _owner(self, ns: str, meta: dict[str, Any]) -> str | None:
        """`Kind/name` of the workload owning the pod (ReplicaSet -> Deployment)."""
        refs = meta.get("ownerReferences") or []
        if not refs:
            return None
        kind, name = refs[0].get("kind", ""), refs[0].get("name", "")
        if kind == "ReplicaSet":
            try:
                rs = self.kube.apps.read_namespaced_replica_set(name, ns)
                for ref in rs.metadata.owner_references or []:
                    if ref.kind == "Deployment":
                        return f"Deployment/{ref.name}"
            except Exception:  # an orphan ReplicaSet is its own owner
                pass
        return f"{kind}/{name}"

    def _event(self, ns: str, owner: str | None, reason: str, message: str) -> None:
        if owner is None:
            return
        kind, name = owner.split("/", 1)
        apps = ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet")
        api_version = (
            "apps/v1" if kind in apps else "batch/v1" if kind == "Job" else "v1"
        )
        now = dt.datetime.now(dt.UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{name}.{uuid.uuid4().hex[:16]}", namespace=ns
            ),
            involved_object=client.V1ObjectReference(
                kind=kind, name=name, namespace=ns, api_version=api_version
            ),
            reason=reason,
            message=message,
            type="Normal",
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component="linkerd-proxy-injector"),
        )
        try:
            self.kube.core.create_namespaced_event(ns, event)
        except Exception as exc:  # an event is a courtesy; admission must not fail
            log.warning("[%s/%s] could not record event %s: %s", ns, name, reason, exc)
