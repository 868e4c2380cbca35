"""The lb layer's checks on MetalLB: what the suites ask the provider to judge.

Kept apart from provisioning (``lb_metallb``) as a mixin of the same provider. Each
``judge_*`` gathers live objects through the official client and hands them to the
``metallb-config`` analyzer; ``judge_allocation`` makes a probe LoadBalancer Service
whose backend is a greeting server on the harness host, waits for its address, and
reads the greeting through that address.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes import client

from meshstack import analyzers, clock
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers.k3s_log import servicelb_disabled
from meshstack.providers.kube_apply import objects_yaml
from meshstack.providers.lb_probe import AllocationProbe
from meshstack.verdicts import Finding, merge

log = logging.getLogger(__name__)

NS = "metallb-system"
GROUP, VERSION = "metallb.io", "v1beta1"


class MetalLBChecks(AllocationProbe):
    """Judgements of a MetalLB installation; mixed into the lb provider."""

    def components(self) -> dict[str, Any]:  # provided by the provider
        raise NotImplementedError

    # -- checks ------------------------------------------------------------------
    def gathered_objects(self) -> list[dict[str, Any]]:
        """Every object the metallb-config analyzer reads, as the API returned them."""
        k = self.kube
        objs: list[dict[str, Any]] = []
        for plural in ("ipaddresspools", "l2advertisements", "bgpadvertisements"):
            objs += k.custom_items(GROUP, VERSION, NS, plural, kind=plural)
        objs += [
            o
            for o in k.list("v1", "ConfigMap", NS)
            if o["metadata"]["name"] == "config"
        ]
        objs += [
            o
            for o in k.list("v1", "Service")
            if (o.get("spec") or {}).get("type") == "LoadBalancer"
        ]
        objs += k.list("v1", "Node")
        objs += [
            o
            for o in k.list("apps/v1", "DaemonSet", "kube-system")
            if o["metadata"]["name"].startswith("svclb-")
        ]
        objs += [
            o
            for o in k.list("v1", "Pod", "kube-system")
            if o["metadata"]["name"].startswith("svclb-")
        ]
        return objs

    def _context(self) -> Context:
        extra: dict[str, Any] = {"metallb_installed": True}
        if not self.settings["legacy_configmap"]:
            # the analyzer judges whether the cluster holds the profile's pools (a
            # legacy ConfigMap's meaning depends on the version: judged as such)
            extra["expected_pools"] = {
                p["name"]: list(p["addresses"]) for p in self.settings["pools"]
            }
        return Context(metallb_version=self.settings["version"], extra=extra)

    def judge_config(self) -> Finding:
        """Pools and advertisements as MetalLB reads them, and as the profile wants."""
        text = objects_yaml(self.gathered_objects())
        f = analyzers.get("metallb-config").judge(
            Evidence(text, "metallb objects"), self._context()
        )
        f.layer = "lb"
        f.details.setdefault("gathered", text[:20000])
        return f

    def judge_servicelb(self) -> Finding:
        """k3s's own service load balancer must not run beside MetalLB."""
        objs = self.gathered_objects()
        f = analyzers.get("metallb-config").judge(
            Evidence(objects_yaml(objs), "MetalLB, svclb and node objects"),
            self._context(),
        )
        if "unrecognised_input" in f.reasons:
            # no MetalLB resource to recognise the input by: judge svclb by name
            f = Finding(layer="lb", kind="metallb-config")
            self._svclb_by_name(objs, f)
        f.layer = "lb"
        keep = {"k3s_servicelb_active_with_metallb"}
        f.reasons = [r for r in f.reasons if r in keep]
        f.verdict_override = None
        self._servicelb_args(f)
        return f

    def _svclb_by_name(self, objs: list[dict[str, Any]], f: Finding) -> None:
        names = [
            f"{o['kind'].lower()}/{o['metadata']['name']}"
            for o in objs
            if o.get("kind") in ("DaemonSet", "Pod")
            and o["metadata"]["name"].startswith("svclb-")
        ]
        if names:
            f.evidence += names
            f.add("k3s_servicelb_active_with_metallb", _SERVICELB_HINT, svclb=names)

    def _servicelb_args(self, f: Finding) -> None:
        args = self.ctx.outputs("cluster").get("server_args")
        if isinstance(args, list) and not servicelb_disabled([str(a) for a in args]):
            f.add(
                "k3s_servicelb_active_with_metallb", _SERVICELB_HINT, server_args=args
            )
        if args is None:
            f.hint(
                "the cluster layer recorded no k3s server arguments; judged from "
                "svclb objects and node annotations only"
            )

    def judge_components(self) -> Finding:
        try:
            state = self.components()
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            # Not installed (or removed): a finding, so --stack=reuse reinstalls.
            f = Finding(layer="lb", evidence=[f"404: {exc.reason}"])
            f.add(
                "system_pods_not_ready",
                "MetalLB's controller Deployment or speaker DaemonSet is absent in "
                f"{NS}: MetalLB is not installed; provision the lb layer "
                "(--stack=reuse repairs it)",
            )
            return f
        f = Finding(layer="lb", evidence=[state["summary"]], details=dict(state))
        if not state["ready"]:
            pods = [
                f"{o['metadata']['name']}: {(o.get('status') or {}).get('phase')}"
                for o in self.kube.list("v1", "Pod", NS)
            ]
            f.evidence += pods
            f.add(
                "system_pods_not_ready",
                "see `kubectl -n metallb-system describe pods` and their events",
            )
        return f

    def judge_allocation(self) -> Finding:
        """A probe LoadBalancer Service gets a pool address that answers TCP."""
        svc = self._probe_service()
        try:
            ip, uid = self._await_address(svc)
            f = self._judge_address(svc, uid, ip)
        finally:
            self._remove_probe(svc)
        return f

    def _judge_address(self, svc: dict[str, Any], uid: str, ip: str | None) -> Finding:
        meta = svc["metadata"]
        config = self.judge_config()
        # the address must answer within the reachability timeout, counted from
        # here: waiting for the announcement spends the same budget
        deadline = clock.monotonic() + self.settings["reachability_timeout"]
        in_pool = ip is not None and self._in_pools(ip)
        announced = in_pool and self._await_announcement(meta, uid, deadline)
        events = self._events(meta, uid)
        f = Finding(
            layer="lb", evidence=list(events), details={"ip": ip, "events": events}
        )
        limit = self.settings["ip_allocation_timeout"]
        if ip is None:
            f.add(
                "ip_pending",
                f"no address after {limit:.0f}s; the controller said: "
                + ("; ".join(events) or "nothing (no events)"),
            )
            return merge("lb", [f, _causes(config)])
        if not in_pool:
            f.add(
                "ip_outside_pool",
                f"{ip} lies in none of the profile's pools; "
                "another load balancer (k3s servicelb?) may have written it",
            )
            return merge("lb", [f, _causes(config)])
        answer = self._backend.await_probe(ip, self.settings["probe_port"], deadline)
        f.details["answer"] = answer
        if answer is None:
            f.add(
                "ip_unreachable",
                f"{ip}:{self.settings['probe_port']} did not answer from the harness "
                f"host within {self.settings['reachability_timeout']}s"
                + (
                    ""
                    if announced
                    else "; no speaker announced it (no nodeAssigned event)"
                ),
            )
            return merge("lb", [f, _causes(config)])
        f.evidence.append(f"{ip}:{self.settings['probe_port']} answered {answer!r}")
        return f


_SERVICELB_HINT = (
    "restart the k3s servers with `--disable servicelb` and delete any leftover "
    "svclb DaemonSets"
)


def _causes(config: Finding) -> Finding:
    """The configuration's codes that explain a missing or silent address."""
    keep = {
        "legacy_configmap_ignored",
        "crds_unsupported_by_version",
        "pool_not_advertised",
        "k3s_servicelb_active_with_metallb",
    }
    out = Finding(layer="lb")
    for code in config.reasons:
        if code in keep:
            out.add(code)
    out.hints += [h for h in config.hints if h not in out.hints]
    return out
