"""The verdict vocabulary shared by the suites, `meshstack analyze` and the reports.

A check ends in one :class:`Finding`: one layer, one verdict, the reason codes that
decided it, hints a person can act on, the evidence lines it was judged from and
free-form ``details`` (node names, stages, directions). The verdict of a finding is
derived from its reason codes, so a code can never be reported under the wrong
severity.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Verdict(enum.StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    INVALID_RUN = "INVALID-RUN"
    HARNESS_ERROR = "HARNESS-ERROR"
    BLOCKED = "BLOCKED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def healthy(self) -> bool:
        """True where the claim holds (PASS or WARN)."""
        return self in (Verdict.PASS, Verdict.WARN)


# Most severe first, as the verdict vocabulary orders them. BLOCKED is never derived
# from reason codes: only the gate sets it, through ``Finding.verdict_override``.
_SEVERITY = {
    Verdict.HARNESS_ERROR: 6,
    Verdict.INVALID_RUN: 5,
    Verdict.FAIL: 4,
    Verdict.INCONCLUSIVE: 3,
    Verdict.WARN: 2,
    Verdict.PASS: 1,
    Verdict.BLOCKED: 0,
}

LAYERS: tuple[str, ...] = (
    "cloud",
    "overlay",
    "cluster",
    "lb",
    "mesh",
    "apps",
    "load",
    "slo",
)
ALL_LAYERS: tuple[str, ...] = (*LAYERS, "report", "unknown")


@dataclass(frozen=True)
class Reason:
    code: str
    verdict: Verdict
    meaning: str


def _r(code: str, meaning: str, verdict: Verdict = Verdict.FAIL) -> Reason:
    return Reason(code, verdict, meaning)


_W, _HE, _IR, _INC = (
    Verdict.WARN,
    Verdict.HARNESS_ERROR,
    Verdict.INVALID_RUN,
    Verdict.INCONCLUSIVE,
)

REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        # cloud
        _r("microstack_init_failed", "MicroStack's initialisation stopped"),
        _r("proxy_body_limit", "a front-end proxy refused a request body (HTTP 413)"),
        _r("quota_exceeded", "the project's quota refuses the request"),
        _r("scheduler_no_capacity", "no host could take the server"),
        _r("image_not_active", "the image never reached active"),
        _r("server_error_state", "the server never became ACTIVE or went to ERROR"),
        _r("server_unreachable", "the server is ACTIVE but does not answer"),
        # overlay
        _r("member_not_authorized", "a member is not authorized on the network"),
        _r("member_deauthorized", "a member is no longer authorized"),
        _r("no_ip_assigned", "authorized with auto-assign on, but no address", _W),
        _r("no_network_config", "the node never received the network's config"),
        _r("degraded_tcp_relay", "the node reaches the overlay only via TCP relay", _W),
        _r(
            "cli_not_privileged", "the overlay CLI ran without the rights it needs", _HE
        ),
        _r("pmtu_blackhole", "packets above some size vanish on the overlay path"),
        _r(
            "overlay_mtu_mismatch", "a layer above uses an MTU the overlay cannot carry"
        ),
        _r("peer_unreachable", "two members cannot reach each other over the overlay"),
        # cluster
        _r("node_not_ready", "a node is not Ready"),
        _r("system_pods_not_ready", "system pods are not ready"),
        _r("node_ip_not_on_overlay", "a node or API address lies outside the overlay"),
        _r("cross_node_pod_network", "pods on one node cannot reach another node"),
        _r("node_password_rejected", "the server holds another password for the node"),
        _r("token_rejected", "an agent's join token is refused"),
        _r("overlay_flags_incomplete", "node-ip and flannel-iface set apart", _W),
        # lb
        _r("k3s_servicelb_active_with_metallb", "k3s servicelb runs beside MetalLB"),
        _r("legacy_configmap_ignored", "MetalLB >= 0.13 with pools only in ConfigMap"),
        _r(
            "crds_unsupported_by_version", "MetalLB < 0.13 given only the new resources"
        ),
        _r(
            "pool_not_advertised", "a pool hands out addresses no advertisement selects"
        ),
        _r("webhook_unavailable", "MetalLB's admission webhook cannot be reached"),
        _r("webhook_ca_mismatch", "the webhook's certificate is not trusted"),
        _r("apiserver_cannot_reach_pod", "the API server cannot dial the webhook pod"),
        _r(
            "l2_arp_unreliable_on_overlay",
            "an announced address answers only some probes",
        ),
        _r("pool_mismatch", "a profile's pool is absent or differs in the cluster"),
        _r("ip_pending", "a LoadBalancer Service has no address"),
        _r("ip_outside_pool", "a LoadBalancer address lies outside every pool"),
        _r("ip_unreachable", "a LoadBalancer address does not answer"),
        # mesh
        _r("clock_skew", "node clocks differ from the checker's beyond tolerance"),
        _r("rbac_forbidden", "the credentials lack rights the install needs"),
        _r("preexisting_resource", "something the install would create exists", _W),
        _r("control_plane_not_ready", "control-plane pods are not ready"),
        _r("identity_unreachable", "proxies cannot obtain identity certificates"),
        _r("cni_config_missing", "the CNI plugin's configuration is absent"),
        _r("wrong_cni_namespace", "the check looked for the CNI elsewhere", _HE),
        _r("viz_extension_not_found", "the viz extension cannot be found"),
        _r("identity_issuer_expiring", "issuer or trust anchor expires within 7 days"),
        _r("version_mismatch", "CLI, control plane and proxy versions differ", _W),
        _r("version_unknown", "a proxy version is not a release version", _W),
        _r("not_meshed", "workloads that should carry the proxy do not"),
        _r("annotation_misplaced", "the inject annotation is where nobody reads it"),
        _r("check_failed", "another Linkerd check failed"),
        # apps
        _r("deployment_not_available", "a deployment is not Available"),
        _r("endpoint_unhealthy", "an application endpoint does not answer correctly"),
        _r("partial_success", "success below 100% with no objective to judge", _W),
        # load
        _r("rate_out_of_tolerance", "achieved rate outside the tolerance", _IR),
        _r("min_sample", "fewer requests in the window than the minimum", _IR),
        _r("load_shape_not_followed", "the planned plateau was not held", _IR),
        _r("generator_saturated", "the load generator ran out of CPU", _IR),
        _r("bad_cli_combination", "the load tool refused its own options", _HE),
        _r("load_tool_failed", "the load tool exited non-zero without stats", _HE),
        # slo
        _r("objective_missed", "a measured objective is outside its bound"),
        _r("no_data", "no series or no traffic in the window", _INC),
        _r("window_too_short", "the rate window is under four scrape intervals", _HE),
        _r("metrics_mismatch", "client-side and mesh-side counts disagree", _W),
        _r("query_rejected", "Prometheus refused the harness's query", _HE),
        _r("objective_invalid", "the objective to judge by is unusable (NaN)", _HE),
        # any layer
        _r("credentials_missing", "credentials the profile names are absent", _HE),
        _r("api_unreachable", "an endpoint the profile configures does not answer"),
        _r("context_missing", "the evidence needs context that was not given", _INC),
        # report and unknown
        _r("report_collapsed", "results were merged by the tooling", _HE),
        _r("dependency_order_not_honoured", "results skipped by the tooling", _HE),
        _r("report_incomplete", "a result file the report cannot read is lost", _HE),
        _r("unrecognised_input", "the input is not of any known kind", _HE),
    )
}


class UnknownReason(KeyError):
    """A reason code that the vocabulary does not define."""


def reason(code: str) -> Reason:
    try:
        return REASONS[code]
    except KeyError:
        raise UnknownReason(f"reason code {code!r} is not in the vocabulary") from None


def verdict_for(reasons: Iterable[str]) -> Verdict:
    """The most severe verdict among the codes; PASS for none."""
    worst = Verdict.PASS
    for code in reasons:
        v = reason(code).verdict
        if v.severity > worst.severity:
            worst = v
    return worst


@dataclass
class Finding:
    """One judged claim: what the analyzers and live checks hand back."""

    layer: str
    reasons: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    verdict_override: Verdict | None = None

    def __post_init__(self) -> None:
        if self.layer not in ALL_LAYERS:
            raise ValueError(f"layer {self.layer!r} is not one of {ALL_LAYERS}")
        for code in self.reasons:
            reason(code)

    @property
    def verdict(self) -> Verdict:
        if self.verdict_override is not None:
            return self.verdict_override
        return verdict_for(self.reasons)

    def add(self, code: str, hint: str | None = None, **details: Any) -> None:
        """Record a reason code once, with an optional hint and details."""
        reason(code)
        if code not in self.reasons:
            self.reasons.append(code)
        if hint and hint not in self.hints:
            self.hints.append(hint)
        self.details.update(details)

    def hint(self, text: str) -> None:
        if text not in self.hints:
            self.hints.append(text)

    def to_json(self, file: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": 1}
        if file is not None:
            out["file"] = file
        out.update(
            kind=self.kind,
            layer=self.layer,
            verdict=str(self.verdict),
            reasons=list(self.reasons),
            hints=list(self.hints),
            evidence=list(self.evidence),
            details=self.details,
        )
        return out

    def summary(self) -> str:
        codes = ", ".join(self.reasons) or "no reasons"
        return f"{self.layer} {self.verdict} ({codes})"


def recorded_finding(rec: dict[str, Any]) -> Finding:
    """A finding back from its ``to_json`` record (the verdict as recorded)."""
    return Finding(
        layer=rec["layer"],
        reasons=list(rec.get("reasons") or []),
        hints=list(rec.get("hints") or []),
        evidence=list(rec.get("evidence") or []),
        details=dict(rec.get("details") or {}),
        kind=rec.get("kind") or "",
        verdict_override=Verdict(rec["verdict"]),
    )


def merge(layer: str, findings: Iterable[Finding], kind: str = "") -> Finding:
    """One finding that carries every reason, hint and piece of evidence of many.

    Its verdict is the most severe of theirs, so a code a tool printed at a lower
    severity (an override) keeps that severity after merging. Hints come most severe
    finding first (in order within each), so what to do about a failure is read
    before a passing part's notes.
    """
    out = Finding(layer=layer, kind=kind)
    findings = list(findings)
    verdicts = []
    for f in findings:
        verdicts.append(f.verdict)
        for code in f.reasons:
            out.add(code)
        out.evidence.extend(e for e in f.evidence if e not in out.evidence)
        out.details.update(f.details)
    for f in sorted(findings, key=lambda f: -f.verdict.severity):
        for h in f.hints:
            out.hint(h)
    worst = max(verdicts, key=lambda v: v.severity, default=Verdict.PASS)
    if worst is not out.verdict:
        out.verdict_override = worst
    return out


def harness_error(layer: str, code: str, message: str, **details: Any) -> Finding:
    f = Finding(layer=layer, details=dict(details))
    f.add(code, message)
    return f
