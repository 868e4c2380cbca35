"""The lb layer on MetalLB (L2): install, pools and advertisements, and their checks.

Provisioning applies the install manifest the profile names (image tags set to the
profile's ``version``), waits for the controller and every speaker, then applies
the profile's ``IPAddressPool``/``L2Advertisement`` resources, or, where the profile
sets ``legacy_configmap: true``, the pre-0.13 ``config`` ConfigMap instead (which
MetalLB 0.13+ ignores: the profile switch that reproduces that failure). The
admission webhook is not reachable for a moment after install, and its CA is put
into the webhook configuration by MetalLB's controller only after the manifests
are applied (re-applying them, as ``--stack=reuse`` does to repair the layer,
resets it), so a refused or untrusted call is retried until
``webhook_retry_timeout``; every other apply error is final, and a refusal that
outlasts the window is reported with its own reason.

Checks gather the live objects and hand them to the ``metallb-config`` analyzer;
``judge_allocation`` also creates a probe LoadBalancer Service, waits for its
address and connects to it from the harness host (on the overlay bridge).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from meshstack import analyzers, clock, yamlio
from meshstack.analyzers import Context, Evidence
from meshstack.providers._addresses import range_problem
from meshstack.providers.base import Provider, ProviderError
from meshstack.providers.kube_apply import (
    KubeClient,
    apply_error_text,
    delete_recorded,
)
from meshstack.providers.lb_metallb_checks import MetalLBChecks
from meshstack.verdicts import Finding, harness_error, merge
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

NS = "metallb-system"
GROUP, VERSION = "metallb.io", "v1beta1"
IMAGES = ("quay.io/metallb/controller", "quay.io/metallb/speaker")

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
    # where the probe Service's backend listens; default: this host's address on
    # the route to the first pool (the overlay bridge in the local stack)
    "probe_backend_address": {"type": "str", "default": None},
}


def validate_settings(settings: dict[str, Any]) -> list[str]:
    """Each pool's addresses are CIDRs or ranges; each advertisement names pools
    the profile has (MetalLB would leave a misnamed one announcing nothing)."""
    problems = []
    names = {p["name"] for p in settings["pools"]}
    for i, pool in enumerate(settings["pools"]):
        for j, text in enumerate(pool["addresses"]):
            problem = range_problem(text)
            if problem:
                problems.append(f"pools[{i}].addresses[{j}]: {problem}")
    for i, advert in enumerate(settings.get("advertisements") or []):
        for j, name in enumerate(advert["pools"]):
            if name not in names:
                problems.append(
                    f"advertisements[{i}].pools[{j}]: expected one of the pools "
                    f"({', '.join(sorted(names))}), found {name!r}"
                )
    return problems


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
        docs += [d for d in yamlio.load_all(f.read_text(encoding="utf-8")) if d]
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


def _settling_webhook(finding: Finding) -> bool:
    """A refusal the webhook gives while MetalLB is still starting: not reachable
    for a moment, or serving a certificate the configuration does not trust yet."""
    unavailable = "webhook_unavailable" in finding.reasons
    transient = finding.details.get("transient") is True
    return (unavailable and transient) or "webhook_ca_mismatch" in finding.reasons


class MetalLBProvider(MetalLBChecks, Provider):
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
                # Judged unrecorded first: a refusal tried again is no verdict of
                # the run, and must not make its bundle re-judge as a failure.
                finding = self._judge_apply_error(exc, record=False)
                if not (
                    retry_webhook
                    and _settling_webhook(finding)
                    and clock.monotonic() < deadline
                ):
                    raise ProviderError(
                        self._judge_apply_error(exc, record=True),
                        f"applying {doc['kind']} {rid}: {apply_error_text(exc)}",
                    ) from None
                log.info(
                    "[%s] %s: webhook not reachable or trusted yet, retrying in %.0fs",
                    rid,
                    doc["kind"],
                    self.settings["webhook_retry_interval"],
                )
                clock.sleep(self.settings["webhook_retry_interval"])
        if created:
            self.ctx.record("lb", doc["kind"], rid, api_version=doc["apiVersion"])

    def _judge_apply_error(self, exc: client.ApiException, record: bool) -> Finding:
        evidence = Evidence(apply_error_text(exc), name="apply error")
        ctx = Context(metallb_version=self.settings["version"])
        return analyzers.get("kube-apply-error", record=record).judge(evidence, ctx)

    def _await_components(self, timeout: float) -> None:
        try:
            wait_for(
                "[metallb-system] controller and speakers ready",
                self._components_after_change,
                lambda c: c["ready"],
                timeout,
                interval=0.1,
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

    def _components_after_change(self) -> dict[str, Any]:
        state = self.components()
        if not state["ready"]:
            self.kube.await_pod_change(NS, 2.0)
            state = self.components()
        return state

    def components(self) -> dict[str, Any]:
        apps = self.kube.apps
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

    def probe(self) -> Finding:
        """Components, servicelb, configuration, then a real address end to end."""
        parts = [self.judge_components(), self.judge_servicelb(), self.judge_config()]
        # an address is only worth probing on a controller and speakers that run
        if not parts[0].reasons:
            parts.append(self.judge_allocation())
        return merge("lb", parts, kind="lb-probe")

    def teardown(self) -> None:
        delete_recorded(self.kube, self.state.resources, self.ctx, "lb")

    def close(self) -> None:
        if self._kube is not None:
            self._kube.api.close()


PROVIDER = MetalLBProvider
