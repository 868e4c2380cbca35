"""One pod on one node: its environment, its processes and its status.

Env values are resolved as the kubelet does (``value``, ``valueFrom`` field,
ConfigMap and Secret references, ``envFrom``), plus the twin's own
``MESHSTACK_*`` variables (see the image-map contract in meshstack/twin/images).
The twin has no cluster DNS, so ``<svc>.<ns>[.svc[.cluster.local]]:<port>`` and
``<svc>:<port>`` in env values are rewritten to ``<ClusterIP>:<port>``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from meshstack.twin.kube.images import ImageMap
from meshstack.twin.kube.rawapi import raw
from meshstack.twin.kube.runtime import (
    Container,
    PortPlan,
    PortPool,
    is_proxy,
    plan_ports,
)

log = logging.getLogger(__name__)

_SVC_FQDN = re.compile(
    r"\b([a-z0-9][a-z0-9-]*)\.([a-z0-9][a-z0-9-]*)(?:\.svc(?:\.cluster\.local)?)?:(\d+)\b"
)
_SVC_SHORT = re.compile(r"(?<![\w.-])([a-z0-9][a-z0-9-]*):(\d+)\b")


@dataclass
class NodeInfo:
    name: str
    ip: str
    dir: Path
    python: str
    kubeconfig: Path


@dataclass
class PodRun:
    pod: dict[str, Any]
    node: NodeInfo
    plan: PortPlan | None = None
    containers: dict[str, Container] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(
        default_factory=dict
    )  # name -> reason, message
    ready: dict[str, bool] = field(default_factory=dict)
    started: float = 0.0
    start_time: str = ""

    @property
    def ns(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def dir(self) -> Path:
        return (
            self.node.dir
            / "pods"
            / f"{self.ns}_{self.name}_{self.pod['metadata']['uid'][:8]}"
        )

    @property
    def meshed(self) -> bool:
        return any(is_proxy(c) for c in self.pod["spec"].get("containers") or [])


def resolve_env(
    run: PodRun, container: dict[str, Any], core: client.CoreV1Api
) -> dict[str, str]:
    pod, out = run.pod, {}
    for src in container.get("envFrom") or []:
        data = _ref_data(
            core, run.ns, src.get("configMapRef"), src.get("secretRef"), None
        )
        out.update({src.get("prefix", "") + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        if "value" in item:
            out[item["name"]] = str(item["value"])
        elif item.get("valueFrom"):
            out[item["name"]] = _value_from(
                pod, run.node, item["valueFrom"], core, run.ns
            )
    listed = raw(core.list_service_for_all_namespaces)["items"]
    all_svcs: dict[tuple[str, str], str] = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s["spec"].get(
            "clusterIP", ""
        )
        for s in listed
    }
    services = {name: ip for (sns, name), ip in all_svcs.items() if sns == run.ns}
    return {k: _rewrite(v, run.ns, services, all_svcs) for k, v in out.items()}


def _rewrite(
    value: str, ns: str, local: dict[str, str], everywhere: dict[tuple[str, str], str]
) -> str:
    def fqdn(m: re.Match[str]) -> str:
        ip = everywhere.get((m.group(2), m.group(1)))
        return f"{ip}:{m.group(3)}" if ip and ip != "None" else m.group(0)

    def short(m: re.Match[str]) -> str:
        ip = local.get(m.group(1))
        return f"{ip}:{m.group(2)}" if ip and ip != "None" else m.group(0)

    return _SVC_SHORT.sub(short, _SVC_FQDN.sub(fqdn, value))


def _value_from(
    pod: dict[str, Any],
    node: NodeInfo,
    src: dict[str, Any],
    core: client.CoreV1Api,
    ns: str,
) -> str:
    if src.get("fieldRef"):
        path = src["fieldRef"]["fieldPath"]
        m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if m:
            return str((pod["metadata"].get(m.group(1)) or {}).get(m.group(2), ""))
        fields = {
            "metadata.name": pod["metadata"]["name"],
            "metadata.namespace": ns,
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": node.name,
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": node.ip,
            "status.hostIP": node.ip,
        }
        return str(fields.get(path, ""))
    if src.get("configMapKeyRef") or src.get("secretKeyRef"):
        key = str((src.get("configMapKeyRef") or src.get("secretKeyRef") or {})["key"])
        cm, secret = src.get("configMapKeyRef"), src.get("secretKeyRef")
        return _ref_data(core, ns, cm, secret, key).get(key, "")
    return "0"  # resourceFieldRef: the twin sets no resource limits


def _ref_data(
    core: client.CoreV1Api,
    ns: str,
    cm: dict | None,
    secret: dict | None,
    key: str | None,
) -> dict[str, str]:
    try:
        if cm:
            return dict(core.read_namespaced_config_map(cm["name"], ns).data or {})
        if secret:
            raw = core.read_namespaced_secret(secret["name"], ns).data or {}
            return {k: base64.b64decode(v).decode() for k, v in raw.items()}
    except client.ApiException as exc:
        if exc.status != 404 or not (cm or secret or {}).get("optional"):
            log.warning(
                "env reference %s in %s not readable: %s", cm or secret, ns, exc.reason
            )
    return {}


def build_containers(
    run: PodRun, images: ImageMap, core: client.CoreV1Api
) -> list[str]:
    """Prepare every container's process; returns the images that do not resolve."""
    spec, plan = run.pod["spec"], run.plan
    assert plan is not None
    missing = []
    for c in spec.get("containers") or []:
        found = images.resolve(c["image"])
        if found is None:
            missing.append(c["image"])
            continue
        entry, tag = found
        env = _base_env(run, tag)
        env.update(resolve_env(run, c, core))
        for cport, port in plan.listen.get(c["name"], {}).items():
            env[f"MESHSTACK_PORT_{cport}"] = str(port)
        if run.meshed and not is_proxy(c):
            env.setdefault("MESHSTACK_BIND_ADDRESS", "127.0.0.1")
        if is_proxy(c):
            env["MESHSTACK_INBOUND"] = ",".join(f"{a}:{b}" for a, b in plan.inbound)
            env["MESHSTACK_ADMIN_PORT"] = str(plan.admin_port)
        argv = [
            run.node.python,
            "-m",
            entry.module,
            *entry.args,
            *[str(a) for a in c.get("args") or []],
        ]
        run.containers[c["name"]] = Container(
            c["name"],
            argv,
            env,
            run.dir / f"{c['name']}.log",
            run.dir / f"{c['name']}.pid",
        )
    return missing


def _base_env(run: PodRun, tag: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "PYTHONPATH", "LANG", "TZ")
    }
    return {
        **keep,
        "MESHSTACK_POD_NAME": run.name,
        "MESHSTACK_POD_NAMESPACE": run.ns,
        "MESHSTACK_NODE_NAME": run.node.name,
        "MESHSTACK_POD_IP": run.node.ip,
        "MESHSTACK_KUBECONFIG": str(run.node.kubeconfig),
        "MESHSTACK_IMAGE_TAG": tag,
        "MESHSTACK_NODE_DIR": str(run.node.dir),
    }


def new_plan(run: PodRun, pool: PortPool) -> PortPlan:
    run.plan = plan_ports(run.pod["spec"], pool)
    return run.plan


def probe(run: PodRun, container: dict[str, Any]) -> bool:
    """The container's readiness: its probe passes, or it runs and has none."""
    spec = container.get("readinessProbe")
    proc = run.containers.get(container["name"])
    if proc is None or proc.exited() is not None:
        return False
    if not spec:
        return True
    if time.monotonic() - run.started < float(spec.get("initialDelaySeconds", 0)):
        return False
    target = spec.get("httpGet") or spec.get("tcpSocket")
    if target is None:
        return (
            True  # TODO: exec probes are not run; a running container counts as ready
        )
    port = _probe_port(run, container, target.get("port"))
    if port is None:
        return False
    if spec.get("httpGet"):
        return _http_ok(port, target.get("path", "/"), target.get("scheme", "HTTP"))
    return _tcp_ok(port)


def _probe_port(run: PodRun, container: dict[str, Any], port: Any) -> int | None:
    assert run.plan is not None
    listen = run.plan.listen.get(container["name"], {})
    for p in container.get("ports") or []:
        if p.get("name") == port:
            port = p["containerPort"]
    try:
        cport = int(port)
    except (TypeError, ValueError):
        return None
    return listen.get(cport, cport)


def _http_ok(port: int, path: str, scheme: str) -> bool:
    import ssl

    ctx = ssl._create_unverified_context() if scheme == "HTTPS" else None  # noqa: S323 - kubelet probes skip TLS checks
    try:
        with urllib.request.urlopen(
            f"{scheme.lower()}://127.0.0.1:{port}{path}", timeout=1, context=ctx
        ) as r:
            return 200 <= r.status < 400
    except Exception:
        return False


def _tcp_ok(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def image_id(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()
