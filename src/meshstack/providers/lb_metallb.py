"""The lb layer on MetalLB (L2): install, pools and advertisements, and their checks.

Provisioning applies the install manifest the profile names (image tags set to the
profile's ``version``), waits for the controller and every speaker, then applies
the profile's ``IPAddressPool``/``L2Advertisement`` resources, or, where the profile
sets ``legacy_configmap: true``, the pre-0.13 ``config`` ConfigMap instead (which
MetalLB 0.13+ ignores: the profile switch that reproduces that failure). The
admission webhook is not reachable for a moment after install, so a refused call
is retried until ``webhook_retry_timeout``; every other apply error is final.

Checks gather the live objects and hand them to the ``metallb-config`` analyzer;
``judge_allocation`` also creates a probe LoadBalancer Service, waits for its
address and connects to it from the harness host (on the overlay bridge).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from meshstack import analyzers, clock
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers.k3s_log import servicelb_disabled
from meshstack.providers.base import Provider, ProviderError
from meshstack.providers.kube_apply import (
    KubeClient,
    apply_error_text,
    delete_recorded,
    objects_yaml,
)
from meshstack.verdicts import Finding, harness_error, merge
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

NS = "metallb-system"
GROUP, VERSION = "metallb.io", "v1beta1"
IMAGES = ("quay.io/metallb/controller", "quay.io/metallb/speaker")
PROBE_LABEL = "meshstack.io/lb-probe"

SETTINGS_SCHEMA: dict[str, Any] = {
    "version": {"type": "str", "required": True},
    "manifests": {"type": "path", "required": True},
    "pools": {
        "type": "list",
        "required": True,
        "items": {
            "type": "dict",
            "keys": {
                "name": {"type": "str", "required": True},
                "addresses": {
                    "type": "list",
                    "required": True,
                    "items": {"type": "str"},
                },
                "auto_assign": {"type": "bool", "default": True},
            },
        },
    },
    # None: one L2Advertisement named "default" over every pool; []: none at all
    "advertisements": {
        "type": "list",
        "default": None,
        "items": {
            "type": "dict",
            "keys": {
                "name": {"type": "str", "required": True},
                "pools": {"type": "list", "items": {"type": "str"}, "default": []},
                "interfaces": {"type": "list", "items": {"type": "str"}, "default": []},
                "node_selectors": {
                    "type": "list",
                    "items": {"type": "any"},
                    "default": [],
                },
            },
        },
    },
    "legacy_configmap": {"type": "bool", "default": False},
    "install_timeout": {"type": "seconds", "default": 180},
    "webhook_retry_timeout": {"type": "seconds", "default": 60},
    "webhook_retry_interval": {"type": "seconds", "default": 2},
    "ip_allocation_timeout": {"type": "seconds", "default": 60},
    "reachability_timeout": {"type": "seconds", "default": 30},
    "probe_namespace": {"type": "str", "default": "meshstack-lb-probe"},
    "probe_port": {"type": "int", "default": 8080},
}


def set_image_tags(docs: list[dict[str, Any]], version: str) -> None:
    """Point MetalLB's images at the profile's release, as kustomize `images:` does."""
    for doc in docs:
        spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in spec.get("containers") or []:
            repo = str(c.get("image", "")).rsplit(":", 1)[0]
            if repo in IMAGES:
                c["image"] = f"{repo}:{version}"


def manifest_documents(path: Path) -> list[dict[str, Any]]:
    """Every document of a manifest file, or of a directory's *.yaml files in order."""
    files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"{path}: no *.yaml manifests; set layers.lb.manifests")
    docs = []
    for f in files:
        docs += [d for d in yaml.safe_load_all(f.read_text(encoding="utf-8")) if d]
    return docs


def _pool(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "IPAddressPool",
        "metadata": {"name": p["name"], "namespace": NS},
        "spec": {"addresses": list(p["addresses"]), "autoAssign": p["auto_assign"]},
    }


def _advert(a: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if a.get("pools"):
        spec["ipAddressPools"] = list(a["pools"])
    if a.get("interfaces"):
        spec["interfaces"] = list(a["interfaces"])
    if a.get("node_selectors"):
        spec["nodeSelectors"] = list(a["node_selectors"])
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "L2Advertisement",
        "metadata": {"name": a["name"], "namespace": NS},
        "spec": spec,
    }


class MetalLBProvider(Provider):
    """MetalLB in L2 mode on the cluster the cluster layer made or names."""

    layer = "lb"

    def __init__(self, settings: dict[str, Any], ctx: Any) -> None:
        super().__init__(settings, ctx)
        self._kube: KubeClient | None = None

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            path = self.ctx.outputs("cluster").get("kubeconfig")
            if not path:
                raise ProviderError(
                    harness_error(
                        "lb",
                        "credentials_missing",
                        "the cluster layer recorded no kubeconfig; provision "
                        "or attach the cluster layer first",
                    ),
                    "no kubeconfig in the cluster layer's outputs",
                )
            self._kube = KubeClient.from_file(str(path))
        return self._kube

    # -- provisioning ------------------------------------------------------------
    def provision(self) -> None:
        s = self.settings
        docs = manifest_documents(self.ctx.path(str(s["manifests"])))
        set_image_tags(docs, s["version"])
        self.ctx.progress("lb", f"installing MetalLB {s['version']}")
        self._apply(docs)
        self._await_components(s["install_timeout"])
        self.ctx.progress("lb", "applying address pools and advertisements")
        self._apply(self.config_documents(), retry_webhook=True)
        self.state.outputs.update(
            version=s["version"],
            namespace=NS,
            pools=[
                {"name": p["name"], "addresses": p["addresses"]} for p in s["pools"]
            ],
        )
        self.ctx.save()

    def config_documents(self) -> list[dict[str, Any]]:
        """The profile's pools and advertisements as the objects to apply."""
        s = self.settings
        if s["legacy_configmap"]:
            pools = [
                {
                    "name": p["name"],
                    "protocol": "layer2",
                    "addresses": p["addresses"],
                    "auto-assign": p["auto_assign"],
                }
                for p in s["pools"]
            ]
            text = yaml.safe_dump({"address-pools": pools}, sort_keys=False)
            return [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "config", "namespace": NS},
                    "data": {"config": text},
                }
            ]
        docs = [_pool(p) for p in s["pools"]]
        adverts = s["advertisements"]
        if adverts is None:
            adverts = [
                {"name": "default", "pools": [], "interfaces": [], "node_selectors": []}
            ]
        return docs + [_advert(a) for a in adverts]

    def _apply(self, docs: list[dict[str, Any]], retry_webhook: bool = False) -> None:
        for doc in docs:
            self._apply_one(doc, retry_webhook)

    def _apply_one(self, doc: dict[str, Any], retry_webhook: bool) -> None:
        meta = doc["metadata"]
        rid = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
        deadline = clock.monotonic() + self.settings["webhook_retry_timeout"]
        while True:
            try:
                created = self.kube.apply(doc)
                break
            except client.ApiException as exc:
                finding = self._judge_apply_error(exc)
                transient = finding.details.get("transient") is True
                retry = retry_webhook and "webhook_unavailable" in finding.reasons
                if not (retry and transient and clock.monotonic() < deadline):
                    raise ProviderError(
                        finding,
                        f"applying {doc['kind']} {rid}: {apply_error_text(exc)}",
                    ) from None
                log.info(
                    "[%s] %s: webhook not reachable yet, retrying in %.0fs",
                    rid,
                    doc["kind"],
                    self.settings["webhook_retry_interval"],
                )
                clock.sleep(self.settings["webhook_retry_interval"])
        if created:
            self.ctx.record("lb", doc["kind"], rid, api_version=doc["apiVersion"])

    def _judge_apply_error(self, exc: client.ApiException) -> Finding:
        evidence = Evidence(apply_error_text(exc), name="apply error")
        ctx = Context(metallb_version=self.settings["version"])
        return analyzers.get("kube-apply-error").judge(evidence, ctx)

    def _await_components(self, timeout: float) -> None:
        try:
            wait_for(
                "[metallb-system] controller and speakers ready",
                self.components,
                lambda c: c["ready"],
                timeout,
                interval=1.0,
                retry_on=(client.ApiException,),
                describe=lambda c: c["summary"],
            )
        except WaitTimeout as exc:
            f = Finding(layer="lb", evidence=[str(exc)])
            f.add(
                "system_pods_not_ready",
                "see `kubectl -n metallb-system get pods` and their events",
            )
            raise ProviderError(f, str(exc)) from None

    def components(self) -> dict[str, Any]:
        apps = client.AppsV1Api(self.kube.api)
        dep = apps.read_namespaced_deployment("controller", NS)
        ds = apps.read_namespaced_daemon_set("speaker", NS)
        ctl = dep.status.ready_replicas or 0
        want, ready = (
            ds.status.desired_number_scheduled or 0,
            ds.status.number_ready or 0,
        )
        summary = f"controller {ctl}/{dep.spec.replicas or 1}, speakers {ready}/{want}"
        return {
            "ready": ctl >= 1 and want > 0 and ready == want,
            "summary": summary,
            "controller_ready": ctl,
            "speakers_desired": want,
            "speakers_ready": ready,
        }

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
        return Context(
            metallb_version=self.settings["version"], extra={"metallb_installed": True}
        )

    def judge_config(self) -> Finding:
        """Pools and advertisements as MetalLB reads them, and as the profile wants."""
        text = objects_yaml(self.gathered_objects())
        f = analyzers.get("metallb-config").judge(
            Evidence(text, "metallb objects"), self._context()
        )
        f.layer = "lb"
        self._compare_with_profile(f)
        f.details.setdefault("gathered", text[:20000])
        return f

    def _compare_with_profile(self, f: Finding) -> None:
        if self.settings["legacy_configmap"]:
            return  # the analyzer judges what a legacy ConfigMap means for the version
        have = {
            o["metadata"]["name"]: o
            for o in self.kube.custom_items(
                GROUP, VERSION, NS, "ipaddresspools", kind="ipaddresspools"
            )
        }
        for pool in self.settings["pools"]:
            got = have.get(pool["name"])
            ranges = ((got or {}).get("spec") or {}).get("addresses")
            if ranges != pool["addresses"]:
                f.add(
                    "check_failed",
                    f"pool {pool['name']}: the profile wants {pool['addresses']}, the "
                    f"cluster has {ranges}; re-run provisioning or fix the profile",
                    profile_mismatch=True,
                )

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
        state = self.components()
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
            ip, events = self._await_address(svc)
            f = self._judge_address(ip, events)
        finally:
            self._remove_probe(svc)
        return f

    def _probe_service(self) -> dict[str, Any]:
        ns, port = self.settings["probe_namespace"], self.settings["probe_port"]
        name = f"lb-probe-{self.ctx.run_id[-8:]}".lower()
        self.kube.ensure_namespace(ns)
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {PROBE_LABEL: "1"}},
            "spec": {
                "type": "LoadBalancer",
                "ports": [{"name": "http", "port": port, "targetPort": port}],
            },
        }
        self.kube.apply(body)
        self.ctx.record("lb", "Service", f"{ns}/{name}", api_version="v1", probe=True)
        self.kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns},
                "subsets": [
                    {
                        "addresses": [{"ip": self._host_ip()}],
                        "ports": [{"name": "http", "port": self._echo()}],
                    }
                ],
            }
        )
        return body

    def _host_ip(self) -> str:
        host = self.ctx.outputs("overlay").get("host_address")
        return str(host or "198.19.0.1")

    def _echo(self) -> int:
        """A TCP answerer on the host's overlay address: the probe Service's backend."""
        self._backend = Banner(self._host_ip(), self.settings["reachability_timeout"])
        return self._backend.port

    def _await_address(self, svc: dict[str, Any]) -> tuple[str | None, list[str]]:
        meta = svc["metadata"]
        core = client.CoreV1Api(self.kube.api)

        def probe() -> str | None:
            got = core.read_namespaced_service(meta["name"], meta["namespace"])
            ingress = (
                (got.status.load_balancer.ingress or [])
                if got.status.load_balancer
                else []
            )
            return ingress[0].ip if ingress else None

        try:
            ip = wait_for(
                f"[{meta['namespace']}/{meta['name']}] LoadBalancer address",
                probe,
                lambda v: bool(v),
                self.settings["ip_allocation_timeout"],
                interval=0.5,
                retry_on=(client.ApiException,),
            )
        except WaitTimeout:
            ip = None
        items = core.list_namespaced_event(meta["namespace"]).items
        events = [
            f"{e.type} {e.reason} {e.source.component if e.source else ''}: {e.message}"
            for e in items
            if e.involved_object and e.involved_object.name == meta["name"]
        ]
        return ip, events

    def _judge_address(self, ip: str | None, events: list[str]) -> Finding:
        config = self.judge_config()
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
        if not any(_in_ranges(ip, p["addresses"]) for p in self.settings["pools"]):
            f.add(
                "ip_outside_pool",
                f"{ip} lies in none of the profile's pools; "
                "another load balancer (k3s servicelb?) may have written it",
            )
            return merge("lb", [f, _causes(config)])
        answer = self._backend.await_probe(ip, self.settings["probe_port"])
        f.details["answer"] = answer
        if answer is None:
            f.add(
                "ip_unreachable",
                f"{ip}:{self.settings['probe_port']} did not answer from the harness "
                f"host within {self.settings['reachability_timeout']}s",
            )
            return merge("lb", [f, _causes(config)])
        f.evidence.append(f"{ip}:{self.settings['probe_port']} answered {answer!r}")
        return f

    def _remove_probe(self, svc: dict[str, Any]) -> None:
        meta = svc["metadata"]
        self.kube.delete("v1", "Service", meta["name"], meta["namespace"])
        self.ctx.forget("lb", "Service", f"{meta['namespace']}/{meta['name']}")
        backend = getattr(self, "_backend", None)
        if backend is not None:
            backend.close()

    def probe(self) -> Finding:
        return merge(
            "lb",
            [self.judge_components(), self.judge_servicelb(), self.judge_config()],
            kind="lb-probe",
        )

    def teardown(self) -> None:
        delete_recorded(self.kube, self.state.resources, self.ctx, "lb")

    def close(self) -> None:
        if self._kube is not None:
            self._kube.api.close()


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


def _in_ranges(ip: str, ranges: list[str]) -> bool:
    import ipaddress

    n = ipaddress.ip_address(ip)
    for r in ranges:
        if "/" in r and n in ipaddress.ip_network(r, strict=False):
            return True
        lo, _, hi = r.partition("-")
        if hi and ipaddress.ip_address(lo.strip()) <= n <= ipaddress.ip_address(
            hi.strip()
        ):
            return True
    return False


class Banner:
    """A TCP server that greets each connection; its greeting proves the path."""

    GREETING = b"meshstack-lb-probe\n"

    def __init__(self, host: str, timeout: float) -> None:
        import threading

        self.timeout = timeout
        self.sock = socket.create_server((host, 0))
        self.port = int(self.sock.getsockname()[1])
        self.served = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.served += 1
                conn.sendall(self.GREETING)

    def await_probe(self, ip: str, port: int) -> str | None:
        """The greeting read through ip:port, or None once the timeout is spent."""
        deadline = clock.monotonic() + self.timeout
        while clock.monotonic() < deadline:
            try:
                with socket.create_connection((ip, port), timeout=2) as conn:
                    conn.settimeout(2)
                    data = conn.recv(64)
                if data == self.GREETING:
                    return data.decode().strip()
            except OSError as exc:
                log.debug("[lb-probe] %s:%s not answering yet: %s", ip, port, exc)
            clock.sleep(0.5)
        return None

    def close(self) -> None:
        self.sock.close()


PROVIDER = MetalLBProvider
