"""The mesh layer on Linkerd 2.x: install with the CLI, judge with its checks and pods.

Provisioning runs the CLI the profile names, always with ``--kubeconfig``:
``check --pre`` first (its output kept as evidence, judged later by its own test),
then ``install --crds``, ``install`` and, when ``viz`` is on, ``viz install``, each
output applied like ``| kubectl apply -f -``, then waits for the control plane.
Checks run ``linkerd check -o json`` (and ``--proxy -n <ns>`` per data-plane
namespace) and hand the output to the ``linkerd-check`` analyzer; whether app pods
carry the proxy is judged from the pods, namespace, workloads, events and the
injector's log, never from ``check`` alone.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from typing import Any

from kubernetes import client

from meshstack import analyzers, clock, yamlio
from meshstack.analyzers import Context, Evidence
from meshstack.providers.base import Provider, ProviderError
from meshstack.providers.kube_apply import KubeClient, apply_error_text, delete_recorded
from meshstack.providers.mesh_linkerd_pods import NS, MeshedPods
from meshstack.verdicts import Finding, harness_error, merge
from meshstack.wait import WaitTimeout, wait_for

log = logging.getLogger(__name__)

VIZ_NS = "linkerd-viz"

SETTINGS_SCHEMA: dict[str, Any] = {
    "version": {"type": "str", "required": True},
    "cli": {"type": "path", "required": True},
    "viz": {"type": "bool", "default": True},
    "cni_namespace": {"type": "str", "default": None},
    "data_plane_namespaces": {"type": "list", "items": {"type": "str"}, "default": []},
    "check_wait": {"type": "seconds", "default": 120},
    "cli_timeout": {"type": "seconds", "default": 120},
    "control_plane_timeout": {"type": "seconds", "default": 300},
}


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data or ""


class CliError(Exception):
    """The linkerd CLI exited non-zero where success was required."""


def redact(argv: list[str]) -> str:
    """The command line for logs, with any token or password value hidden."""
    out = []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        secret = any(s in key.lower() for s in ("token", "password", "key-file"))
        out.append(f"{key}=***" if sep and secret else arg)
    return shlex.join(out)


class LinkerdProvider(MeshedPods, Provider):
    """Linkerd's control plane (and viz) on the cluster below, driven by its CLI."""

    layer = "mesh"
    # Whether the applications' pods are meshed is this layer's claim, but it can
    # only be seen once the apps layer has deployed them: probe again then.
    judged_again_after = "apps"

    def __init__(self, settings: dict[str, Any], ctx: Any) -> None:
        super().__init__(settings, ctx)
        self._kube: KubeClient | None = None

    @property
    def kubeconfig(self) -> str:
        path = self.ctx.outputs("cluster").get("kubeconfig")
        if not path:
            raise ProviderError(
                harness_error(
                    "mesh",
                    "credentials_missing",
                    "the cluster layer recorded no kubeconfig; provision or "
                    "attach the cluster layer first",
                ),
                "no kubeconfig in the cluster layer's outputs",
            )
        return str(path)

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            self._kube = KubeClient.from_file(self.kubeconfig)
        return self._kube

    # -- the CLI -------------------------------------------------------------------
    def cli(
        self, *args: str, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run the linkerd CLI against this cluster; the caller judges the exit code."""
        cli = self.ctx.path(str(self.settings["cli"]))
        argv = [str(cli), *args, f"--kubeconfig={self.kubeconfig}"]
        limit = timeout or self.settings["cli_timeout"]
        log.debug("run (timeout %.0fs): %s", limit, redact(argv))
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            seen = _text(exc.stdout) + _text(exc.stderr)
            raise CliError(
                f"{redact(argv)} did not finish within {limit:.0f}s; output "
                f"so far:\n{seen}"
            ) from None
        except OSError as exc:
            raise ProviderError(
                harness_error(
                    "mesh",
                    "credentials_missing",
                    f"cannot run the linkerd CLI {argv[0]}: {exc}; set "
                    "layers.mesh.cli in the profile",
                ),
                str(exc),
            ) from None
        log.debug("exit %d: %s", proc.returncode, redact(argv))
        return proc

    def _cli_ok(self, *args: str) -> str:
        proc = self.cli(*args)
        if proc.returncode != 0:
            raise CliError(
                f"linkerd {' '.join(args)} exited {proc.returncode} "
                f"(expected 0):\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    # -- provisioning --------------------------------------------------------------
    def provision(self) -> None:
        if self._installed():
            log.info("[linkerd] control plane already installed; not reinstalling")
        else:
            self._pre_check()
            for step in (("install", "--crds"), ("install",)):
                self.ctx.progress("mesh", f"linkerd {' '.join(step)}")
                self._apply_output(self._cli_ok(*step))
        # viz pods created before the injector answers would stay unmeshed (its
        # webhook fails open), so the control plane must be ready first
        self._await_control_plane([NS])
        if self.settings["viz"] and not self._namespace_exists(VIZ_NS):
            self.ctx.progress("mesh", "linkerd viz install")
            self._apply_output(self._cli_ok("viz", "install"))
        if self.settings["viz"]:
            self._await_control_plane([VIZ_NS])
        self.state.outputs.update(
            version=self.settings["version"], namespace=NS, viz=self.settings["viz"]
        )
        self.ctx.save()

    def _installed(self) -> bool:
        try:
            self.kube.core.read_namespaced_config_map("linkerd-config", NS)
            return True
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def _namespace_exists(self, name: str) -> bool:
        try:
            self.kube.core.read_namespace(name)
            return True
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def _pre_check(self) -> None:
        self.ctx.progress("mesh", "linkerd check --pre")
        proc = self.cli(
            "check", "--pre", "--wait=60s", timeout=self.settings["cli_timeout"]
        )
        text = proc.stdout + (f"\n{proc.stderr}" if proc.stderr.strip() else "")
        self.state.outputs.update(
            pre_check=text,
            pre_check_exit=proc.returncode,
            pre_check_at=clock.utcnow().isoformat(),
        )
        self.ctx.save()
        self.ctx.save_artifact("linkerd-check-pre.txt", text)
        if proc.returncode != 0:
            finding = self._judge_check_text(text)
            raise ProviderError(
                finding,
                f"linkerd check --pre failed (exit "
                f"{proc.returncode}); not installing:\n{text}",
            )

    def _apply_output(self, text: str) -> None:
        for doc in (d for d in yamlio.load_all(text) if isinstance(d, dict)):
            meta = doc["metadata"]
            rid = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
            try:
                created = self.kube.apply(doc)
            except client.ApiException as exc:
                ev = Evidence(apply_error_text(exc), name="apply error")
                f = analyzers.get("kube-apply-error").judge(ev, Context())
                raise ProviderError(
                    f, f"applying {doc['kind']} {rid}: {apply_error_text(exc)}"
                ) from None
            if created:
                self.ctx.record("mesh", doc["kind"], rid, api_version=doc["apiVersion"])

    def _await_control_plane(self, namespaces: list[str]) -> None:
        try:
            wait_for(
                f"[{', '.join(namespaces)}] deployments available",
                lambda: self._not_ready_after_change(namespaces),
                lambda r: not r,
                self.settings["control_plane_timeout"],
                interval=0.1,
                retry_on=(client.ApiException,),
            )
        except WaitTimeout as exc:
            f = Finding(layer="mesh", evidence=[str(exc)])
            f.add(
                "control_plane_not_ready",
                "see `kubectl -n linkerd get pods` and the events of those not ready",
            )
            raise ProviderError(f, str(exc)) from None

    def _not_ready_after_change(self, namespaces: list[str]) -> list[str]:
        waiting = self.deployments_not_ready(namespaces)
        if waiting:
            self.kube.await_pod_change(waiting[0].split("/")[0], 2.0)
            waiting = self.deployments_not_ready(namespaces)
        return waiting

    def deployments_not_ready(self, namespaces: list[str]) -> list[str]:
        apps = self.kube.apps
        out = []
        for ns in namespaces:
            for d in apps.list_namespaced_deployment(ns).items:
                if (d.status.ready_replicas or 0) < (d.spec.replicas or 1):
                    out.append(f"{ns}/{d.metadata.name}")
        return out

    # -- checks --------------------------------------------------------------------
    def _judge_check_text(self, text: str) -> Finding:
        ctx = Context(now=clock.utcnow(), cni_namespace=self.settings["cni_namespace"])
        finding = analyzers.get("linkerd-check").judge(
            Evidence(text, "linkerd check"), ctx
        )
        finding.layer = "mesh" if finding.layer != "unknown" else finding.layer
        return finding

    def judge_pre_check(self) -> Finding:
        """The pre-install check, as captured before this run installed Linkerd."""
        text = self.state.outputs.get("pre_check")
        if not text:
            f = Finding(layer="mesh")
            f.add(
                "context_missing",
                "no `linkerd check --pre` output was captured: the "
                "control plane was not installed by this harness (attached stack)",
            )
            return f
        f = self._judge_check_text(text)
        f.details["exit_code"] = self.state.outputs.get("pre_check_exit")
        return f

    def run_check(self, *extra: str) -> tuple[str, Finding]:
        """`linkerd check -o json` (plus extra flags), its text and its judgement."""
        wait = f"--wait={int(self.settings['check_wait'])}s"
        flags = [*extra]
        if self.settings["cni_namespace"]:
            flags.append(f"--cni-namespace={self.settings['cni_namespace']}")
        proc = self.cli(
            "check",
            "-o",
            "json",
            wait,
            *flags,
            timeout=self.settings["check_wait"] + self.settings["cli_timeout"],
        )
        text = proc.stdout + (f"\n{proc.stderr}" if proc.stderr.strip() else "")
        f = self._judge_check_text(text)
        f.details["exit_code"] = proc.returncode
        if proc.returncode != 0 and f.verdict.healthy:
            f.add(
                "check_failed",
                f"linkerd check exited {proc.returncode} although no "
                "failed check was read; see the attached output",
            )
        return text, f

    def judge_check(self) -> tuple[str, Finding]:
        text, f = self.run_check()
        if "cni_config_missing" in f.reasons:
            return self._cni_elsewhere(text, f)
        return text, f

    def _cni_elsewhere(self, text: str, f: Finding) -> tuple[str, Finding]:
        """The CNI config sits in another namespace: the check looked elsewhere."""
        cms = self.kube.core.list_config_map_for_all_namespaces(
            field_selector="metadata.name=linkerd-cni-config"
        ).items
        places = [
            c.metadata.namespace for c in cms if c.metadata.name == "linkerd-cni-config"
        ]
        if not places:
            return text, f
        rerun_text, rerun = self.run_check(f"--cni-namespace={places[0]}")
        out = harness_error(
            "mesh",
            "wrong_cni_namespace",
            f"linkerd-cni-config lives in {places[0]}: set layers.mesh."
            f"cni_namespace: {places[0]} in the profile",
            rerun_verdict=str(rerun.verdict),
            rerun_reasons=rerun.reasons,
        )
        return text + "\n--- re-run with --cni-namespace ---\n" + rerun_text, out

    def data_plane_namespaces(self) -> list[str]:
        named = list(self.settings["data_plane_namespaces"])
        return named or list(self.ctx.outputs("apps").get("namespaces") or [])

    def judge_proxy(self, namespace: str) -> tuple[str, Finding]:
        return self.run_check("--proxy", f"--namespace={namespace}")

    def probe(self) -> Finding:
        """`linkerd check`, and once apps run, whether their pods carry the proxy."""
        _, f = self.run_check()
        meshed = [self.judge_meshed(ns)[1] for ns in self.data_plane_namespaces()]
        return merge("mesh", [f, *meshed]) if meshed else f

    def teardown(self) -> None:
        delete_recorded(self.kube, self.state.resources, self.ctx, "mesh")

    def close(self) -> None:
        if self._kube is not None:
            self._kube.api.close()


PROVIDER = LinkerdProvider
