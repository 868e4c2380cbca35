"""Build, attach to, judge and remove a stack, layer by layer, bottom-up.

:class:`Stack` is the library's orchestrator; the pytest plugin is thin glue over it.
``up`` walks the infrastructure layers (cloud → overlay → cluster → lb → mesh →
apps) in order: in ``fresh`` mode it provisions each, in ``reuse`` mode only the
layers whose probe fails, in ``existing`` mode none. After each layer it probes and
writes the verdict to the state file's health record; the first unhealthy layer
blocks every layer above it, which is then neither provisioned nor probed.
``load`` and ``slo`` are measurements, run on demand by their fixtures through
:meth:`Stack.once`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshstack import clock, providers
from meshstack import state as statemod
from meshstack.profile import Profile, SecretError, resolve_secret
from meshstack.providers.base import Provider, ProviderError, StackContext
from meshstack.verdicts import LAYERS, Finding, Verdict, harness_error

log = logging.getLogger(__name__)

INFRA_LAYERS = ("cloud", "overlay", "cluster", "lb", "mesh", "apps")
MODES = ("fresh", "reuse", "existing")

Progress = Callable[[str, str], None]


@dataclass
class Block:
    """Why a layer cannot be judged: the lowest unhealthy layer below it."""

    layer: str
    verdict: str
    reasons: list[str]

    def message(self, above: str) -> str:
        codes = ", ".join(self.reasons) or "no reason recorded"
        return f"BLOCKED: {above} needs {self.layer}, which is {self.verdict} ({codes})"


class Stack:
    def __init__(
        self,
        profile: Profile,
        mode: str,
        state_path: Path,
        keep: bool = False,
        progress: Progress | None = None,
        session: str = "",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        self.profile = profile
        self.mode = mode
        self.state = statemod.StackState.load(state_path)
        # A kept stack that a `reuse` run repairs stays kept: it was not this run's
        # to remove.
        self.keep = keep or (mode == "reuse" and self.state.kept and self.state.exists)
        self.workdir = state_path.parent
        self._progress = progress or (lambda layer, step: None)
        self._providers: dict[str, Provider] = {}
        self.timings: dict[str, float] = {}
        # the layers this session provisioned (fresh, or reused and found broken)
        self.built: set[str] = set()
        # One pytest session (with all its workers): measurements made "once" are
        # made once per session, never reused from an earlier session on a kept
        # stack, whose profile or stack may have changed since.
        self.session = session

    # -- the context providers see ------------------------------------------------
    def context(self) -> StackContext:
        return StackContext(
            run_id=self.state.run_id,
            profile_path=self.profile.path,
            workdir=self.workdir,
            layers=self.state.layers,
            save=self.state.save,
            progress=self._progress,
            secret=self._secret,
            path=self.profile.resolve,
            bundle_dir=self._bundle_dir(),
        )

    def _bundle_dir(self) -> Path:
        """One folder per pytest session under the run's: a kept stack is attached
        to by many sessions, and each one's evidence must re-judge to its own
        verdicts, not be mixed with an earlier session's."""
        run = self.workdir / "bundle" / (self.state.run_id or "attached")
        return run / self.session if self.session else run

    def _secret(self, spec: Any, what: str) -> str:
        try:
            return resolve_secret(spec, what, self.profile.path.parent)
        except SecretError as exc:
            layer = (
                what.split(".", 1)[0] if what.split(".", 1)[0] in LAYERS else "unknown"
            )
            finding = harness_error(layer, "credentials_missing", str(exc))
            raise ProviderError(finding, str(exc)) from None

    def provider(self, layer: str) -> Provider:
        """The provider of a layer, attached to this run's state."""
        if layer not in self._providers:
            name = self.profile.provider_name(layer)
            if name is None:
                raise KeyError(f"the profile configures no {layer} layer")
            cls = providers.load(layer, name)
            self._providers[layer] = cls(self.profile.layers[layer], self.context())
        return self._providers[layer]

    # -- building and judging -----------------------------------------------------
    def begin(self) -> None:
        """Start a run: a fresh run id for fresh/reuse, the kept one for existing.

        An attaching run keeps the layers' health (probed again as it goes up) but
        not an earlier session's measurements (``load:<profile>``): only what this
        session measures is reported as measured.
        """
        if self.mode == "existing":
            measured = [k for k in self.state.health if ":" in k]
            if measured:
                for key in measured:
                    del self.state.health[key]
                self.state.save()
            return
        if not self.state.run_id or self.mode == "fresh":
            self.state.run_id = statemod.new_run_id()
        self.state.profile = str(self.profile.path)
        self.state.kept = self.keep
        self.state.health = {}
        self.state.save()

    def up(self) -> dict[str, Finding]:
        """Provision (per mode) and probe each infrastructure layer, bottom-up."""
        results: dict[str, Finding] = {}
        for layer in INFRA_LAYERS:
            if layer not in self.profile.layers:
                continue
            blocked = self.blocked(layer)
            if blocked is not None:
                self._record(layer, _blocked_finding(layer, blocked))
                continue
            started = clock.monotonic()
            results[layer] = finding = self._bring_up(layer)
            self.timings[layer] = clock.monotonic() - started
            self._record(layer, finding)
        self._second_looks(results)
        return results

    def _second_looks(self, results: dict[str, Finding]) -> None:
        """Probe again the layers that can only be fully judged once a later one is up.

        The mesh is the example: whether the applications' pods carry the proxy is
        the mesh's claim, but it can only be seen once the apps are deployed. The
        later layer needs to be built (by this session: one that was already there
        was seen at the first look), not healthy: apps whose pods run without the
        proxy may well fail their own probe, and that failure must then be BLOCKED
        by the mesh, not stand beside a mesh recorded as healthy. A layer found
        unhealthy then blocks every layer above it, as at first sight.
        """
        for layer in INFRA_LAYERS:
            prov = self._providers.get(layer)
            after = getattr(prov, "judged_again_after", None)
            if (
                prov is None
                or after not in self.built  # already there at the first look
                or not results[layer].verdict.healthy
                or results[after].details.get("stage") == "building"
            ):
                continue
            self._progress(layer, f"probing again now that {after} is up")
            finding = prov.probe()
            results[layer] = finding
            self._record(layer, finding)
            if finding.verdict.healthy:
                continue
            for above in INFRA_LAYERS[INFRA_LAYERS.index(layer) + 1 :]:
                block = self.blocked(above)
                if above in self.state.health and block is not None:
                    self._record(above, _blocked_finding(above, block))
            return

    def _bring_up(self, layer: str) -> Finding:
        """Provision (per mode) and probe one layer. A finding from a layer that
        could not be built says so in ``details["stage"]``: its own checks then
        report that finding instead of probing a layer that is not there."""
        stage = "building"
        try:
            prov = self.provider(layer)
            if self.mode == "fresh":
                self._progress(layer, "provisioning")
                self.state.layers.setdefault(
                    layer, prov.state
                ).provisioned_by = self.state.run_id
                prov.provision()
                self.built.add(layer)
            elif self.mode == "reuse":
                self._progress(layer, "probing")
                first = prov.probe()
                if first.verdict.healthy:
                    return first  # that probe is the layer's verdict: no second one
                self._progress(layer, "provisioning (probe failed)")
                prov.state.provisioned_by = self.state.run_id
                prov.provision()
                self.built.add(layer)
            else:
                self._attach_from_profile(layer)
            stage = "probing"
            return self._probe(layer, prov)
        except ProviderError as exc:
            return _at_stage(exc.finding, stage)
        except (ConnectionError, OSError) as exc:
            return _at_stage(_unreachable(layer, exc), stage)
        except (
            Exception
        ) as exc:  # a provider bug is the harness's fault, not the stack's
            log.exception("[%s] provider raised", layer)
            f = Finding(layer=layer, verdict_override=Verdict.HARNESS_ERROR)
            f.hint(f"the {layer} provider failed: {type(exc).__name__}: {exc}")
            return _at_stage(f, stage)

    def _probe(self, layer: str, prov: Provider) -> Finding:
        self._progress(layer, "probing")
        return prov.probe()

    def _attach_from_profile(self, layer: str) -> None:
        """In existing mode, a layer not in the state takes the profile's ``attach``."""
        st = self.state.layers.get(layer)
        if st is not None and st.outputs:
            return
        attach = self.profile.layers[layer].get("attach")
        if attach:
            ls = self.context().state(layer)
            ls.outputs = {
                k: str(self.profile.resolve(v))
                if k.endswith(("_file", "kubeconfig"))
                else v
                for k, v in attach.items()
            }

    def _record(self, layer: str, finding: Finding) -> None:
        self.state.health[layer] = {
            **finding.to_json(),
            "at": clock.utcnow().isoformat(),
        }
        self.state.save()
        log.info("[%s] %s", layer, finding.summary())

    def record_health(self, layer: str, finding: Finding) -> None:
        """Record a verdict for every worker and the report to read: a layer's, or
        a measurement's under ``<layer>:<profile>`` (one per load profile; such a
        record gates nothing, as no layer bears that name)."""
        self.state.reload_health()
        self._record(layer, finding)

    def blocked(self, layer: str) -> Block | None:
        """The lowest layer below ``layer`` that is recorded as unhealthy."""
        for lower in LAYERS[: LAYERS.index(layer)]:
            rec = self.state.health.get(lower)
            if rec is None:
                continue
            if rec["verdict"] not in (Verdict.PASS, Verdict.WARN):
                return Block(lower, rec["verdict"], list(rec.get("reasons", [])))
        return None

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` once for this session across all workers; return its JSON
        value."""
        return statemod.once(self._once_dir(), key, fn)

    def _once_dir(self) -> Path:
        return self.workdir / "once" / self.state.run_id / (self.session or "-")

    def forget_once(self) -> None:
        """Drop this session's once-results (the session is over)."""
        shutil.rmtree(self._once_dir(), ignore_errors=True)

    # -- removing -----------------------------------------------------------------
    def down(self, force: bool = False) -> list[str]:
        """Remove what this run made, top-down; return what could not be removed."""
        if self.mode == "existing" and not force:
            return []
        left: list[str] = []
        for layer in reversed(INFRA_LAYERS):
            st = self.state.layers.get(layer)
            if st is None or not st.resources:
                continue
            if not force and st.provisioned_by != self.state.run_id:
                continue
            self._progress(layer, "removing")
            try:
                self.provider(layer).teardown()
            except Exception as exc:  # keep going: one layer must not strand the rest
                log.exception("[%s] teardown failed", layer)
                left.append(f"{layer}: {type(exc).__name__}: {exc}")
                continue
            st.resources = []
            st.outputs = {}
            st.provisioned_by = None
            self.state.save()
        for prov in self._providers.values():
            prov.close()
        if not left and not self.state.exists:
            self.state.path.unlink(missing_ok=True)
            shutil.rmtree(self.workdir / "once", ignore_errors=True)
        return left


def _blocked_finding(layer: str, block: Block) -> Finding:
    f = Finding(layer=layer, verdict_override=Verdict.BLOCKED)
    f.hint(block.message(layer))
    f.details.update(blocked_by=block.layer, blocked_reasons=block.reasons)
    return f


def _unreachable(layer: str, exc: BaseException) -> Finding:
    f = Finding(layer=layer)
    f.add("api_unreachable", f"the {layer} endpoint did not answer: {exc}")
    return f


def _at_stage(finding: Finding, stage: str) -> Finding:
    if stage == "building":
        finding.details.setdefault("stage", "building")
    return finding
