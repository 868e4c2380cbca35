"""Whether the applications' pods carry Linkerd's proxy, judged from the pods.

A mixin of the Linkerd provider: the pods of a data-plane namespace are listed,
and those without the proxy container are explained from the namespace's and the
workloads' annotations (an inject annotation on a Deployment's own metadata is
never read by the injector), the namespace's events and the injector's log.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from meshstack import analyzers, yamlio
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers.injector_log import misplacements
from meshstack.providers.kube_apply import KubeClient
from meshstack.verdicts import Finding, merge

log = logging.getLogger(__name__)

NS = "linkerd"
PROXY = "linkerd-proxy"


class MeshedPods:
    """Judges the proxy on app pods; the provider supplies ``kube``."""

    @property
    def kube(self) -> KubeClient:  # provided by the provider
        raise NotImplementedError

    def judge_meshed(self, namespace: str) -> tuple[dict[str, str], Finding]:
        """App pods carry the proxy: judged from the pods, then explained."""
        core = self.kube.core
        pods = [
            p
            for p in core.list_namespaced_pod(namespace).items
            if p.status.phase in ("Running", "Pending")
        ]
        f = Finding(layer="mesh", kind="meshed-pods")
        if not pods:
            f.add("no_data", f"no pods run in {namespace}: nothing to judge")
            return {}, f
        bare = [
            p.metadata.name
            for p in pods
            if not any(c.name == PROXY for c in p.spec.containers)
        ]
        f.details.update(pods=len(pods), without_proxy=bare)
        f.evidence += [f"pod/{n}: no {PROXY} container" for n in bare]
        seen = {
            "pods and their containers": "\n".join(
                f"pod/{p.metadata.name}: {', '.join(c.name for c in p.spec.containers)}"
                for p in pods
            )
        }
        if not bare:
            return seen, f
        f.add(
            "not_meshed",
            f"{len(bare)}/{len(pods)} pods in {namespace} have no {PROXY} container",
        )
        attachments, f = self._explain(namespace, f)
        return {**seen, **attachments}, f

    def _explain(self, namespace: str, f: Finding) -> tuple[dict[str, str], Finding]:
        objs = self._placement_objects(namespace)
        text = self._events_text(namespace) + "\n" + self._injector_log()
        ctx = Context(extra={"objects": objs})
        placed = misplacements("", ctx)
        kind = analyzers.get("injector-log")
        parts = [f]
        if kind.detect(Evidence(text)) > 0:
            parts.append(kind.judge(Evidence(text, "injector log and events"), ctx))
        out = merge("mesh", parts, kind="meshed-pods")
        if placed:
            out.add(
                "annotation_misplaced",
                "move linkerd.io/inject=enabled to the "
                "namespace's annotations or the pod template, then restart",
                misplaced=placed,
            )
        attachments = {
            "events and injector log": text[-20000:],
            "namespace and workloads": yamlio.dump(objs)[:20000],
        }
        return attachments, out

    def _placement_objects(self, namespace: str) -> list[dict[str, Any]]:
        objs = [
            o
            for o in self.kube.list("v1", "Namespace")
            if o["metadata"]["name"] == namespace
        ]
        return objs + self.kube.list("apps/v1", "Deployment", namespace)

    def _events_text(self, namespace: str) -> str:
        items = self.kube.core.list_namespaced_event(namespace).items
        return "\n".join(
            f"{e.type}  {e.reason}  {(e.involved_object.kind or '').lower()}/"
            f"{e.involved_object.name}  {e.message}"
            for e in items
        )

    def _injector_log(self) -> str:
        core = self.kube.core
        pods = core.list_namespaced_pod(
            NS, label_selector="linkerd.io/control-plane-component=proxy-injector"
        ).items
        logs = []
        for p in pods:
            try:
                logs.append(
                    core.read_namespaced_pod_log(p.metadata.name, NS, tail_lines=2000)
                )
            except client.ApiException as exc:
                log.info("[linkerd/%s] no log: %s", p.metadata.name, exc.reason)
        return "\n".join(logs)
