"""Errors printed when manifests are applied (kind ``kube-apply-error``).

What it reads: the output of ``kubectl apply``/``create`` (``Error from server
(...)``, ``error: ...``, ``resource mapping not found``, success lines such as
``ipaddresspool.metallb.io/default created``), and the same errors as the
Kubernetes Python client raises them (``ApiException`` with a JSON ``Status``
body, ``Failed to patch object: b'{...}'``). Each error line is judged on its own
(lines a terminal wrapped with ``│`` are joined back first), so a copy cut anywhere
still yields the errors it holds; a line that only opens a multi-line error
(``error when retrieving current configuration of:``) counts only when nothing more
specific follows it.

What it judges, line by line, first match wins:

- an admission webhook the API server could not use:
  - the API server's proxy could not dial the pod (``proxy error from ... while
    dialing``, ``error trying to reach service``): ``apiserver_cannot_reach_pod``,
    which takes precedence over the causes below in the same message;
  - an untrusted or mismatched certificate (``x509:``, ``tls: failed to verify``):
    ``webhook_ca_mismatch``, never transient;
  - refused, ``no endpoints available``, ``Service Unavailable``:
    ``webhook_unavailable`` with ``details.transient = true`` (clears once the
    controller is Ready after install);
  - timeouts, no route, anything else: ``webhook_unavailable``, not transient
    (usually a firewall, a NetworkPolicy, or a host-network API server that cannot
    reach the pod network).
  These codes name MetalLB's webhook. Another project's webhook (cert-manager,
  Linkerd's injector) gives ``api_unreachable`` with ``details.webhooks``.
- a webhook that answered and denied the object: ``check_failed`` with the denial
  in ``details.denied`` (MetalLB rejects overlapping or malformed pools this way).
- ``no matches for kind "IPAddressPool" in version "metallb.io/..."`` / ``ensure
  CRDs are installed first``: the cluster serves no MetalLB resources, which is
  what ``crds_unsupported_by_version`` describes: a MetalLB before 0.13 (or none)
  given the new resources. With ``--metallb-version`` >= 0.13 the hint says the
  CRDs are missing despite that version; where the same output shows the CRDs
  being created, ``details.transient = true`` (CRs applied before the CRDs were
  established). Other projects' kinds give ``check_failed``.
- ``is forbidden: User ... cannot``: ``rbac_forbidden``.
- ``AlreadyExists``: a hint only (``kubectl apply`` instead of ``create``).
- any other ``Error from server``/``error:`` line, or a client exception whose body
  is missing: ``check_failed`` (used here in its plain sense, "another failed
  check", outside the mesh section it is listed under).

The layer follows what failed: ``lb`` for MetalLB webhooks, groups and namespace;
``mesh`` for Linkerd's; ``cluster`` otherwise (the RBAC of a namespace nobody named
is a cluster matter). Output with only success lines is PASS.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers.metallb_config import parse_version
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "kube-apply-error"

_ERROR = re.compile(
    r"Error from server|^error:|^Error:|Internal error occurred"
    r"|failed (calling|to call) webhook"
    r"|no matches for kind|resource mapping not found|ensure CRDs are installed"
    r"|is forbidden: User|ApiException|Failed to (patch|create|apply) object"
    r"|admission webhook .{0,120} denied the request|unable to recognize",
    re.I | re.M,
)
_SUCCESS = re.compile(
    r"^[a-z0-9.-]+/[\w.:-]+ (created|configured|unchanged|serverside-applied|deleted)"
    r"( \(server dry run\))?\s*$",
    re.M,
)
_WEBHOOK = re.compile(
    r"failed calling webhook \\*\"([^\"\\]+)|failed to call webhook: \w+ \\*\"https://([\w.-]+)"
)
_PROXY = re.compile(r"proxy error from \S+ while dialing|error trying to reach service")
_TLS = re.compile(r"x509:|tls: failed to verify|certificate signed by unknown", re.I)
_TRANSIENT = re.compile(
    r"connect: connection refused|no endpoints available for service"
    r"|Service Unavailable",
    re.I,
)
_DENIED = re.compile(r"admission webhook \\*\"([^\"\\]+)\\*\" denied the request:?(.*)")
_NO_KIND = re.compile(
    r"no matches for kind \\*\"(\w+)\\*\" in version \\*\"([\w./-]+)"
    r"|resource mapping not found for name: \\*\"[^\"\\]*\\*\".{0,400}?kind \\*\"(\w+)"
    r"|ensure CRDs are installed first",
    re.I,
)
_FORBIDDEN = re.compile(r"is forbidden: User \\*\"([^\"\\]+)")
_LINKERD_CHECK = re.compile(
    r"^[√×‼✔✘⚠] \S|(?<!\.)\.{5,}\[(ok|FAIL|warn)\]|^Status check results are", re.M
)
_GENERIC = re.compile(
    r"Error from server|^\s*error:|^Error:|Failed to \w+ object", re.I
)
_API_EXC = re.compile(r"ApiException: \((\d+)\)")
_METALLB = re.compile(r"metallb", re.I)
_LINKERD = re.compile(r"linkerd", re.I)
_CRD_CREATED = re.compile(
    r"customresourcedefinition\.apiextensions\.k8s\.io/\S*metallb\.io"
    r" (created|configured)"
)


def detect(evidence: Evidence) -> float:
    sample = evidence.text[:200_000]
    if not sample.strip():
        return 0.0
    if _LINKERD_CHECK.search(sample):
        return 0.0  # `linkerd check` quotes API errors under its own glyphs
    errors = _ERROR.findall(sample)
    if re.search(r"Error from server \(\w+\)|failed (calling|to call) webhook", sample):
        return 0.9
    if errors and re.search(
        r"kubectl|apiVersion|metallb\.io|\.k8s\.io|kind \"|kubernetes\.client", sample
    ):
        return 0.8
    if _SUCCESS.search(sample) and not re.search(r"^[ \t]*\w+:[ \t]*$", sample, re.M):
        return 0.6
    return 0.0


def _layer_of(line: str) -> str:
    if _METALLB.search(line):
        return "lb"
    if _LINKERD.search(line):
        return "mesh"
    return "cluster"


def _webhook(line: str, f: Finding, layers: list[str]) -> None:
    m = _WEBHOOK.search(line)
    name = (m.group(1) or m.group(2)) if m else "?"
    if not _METALLB.search(name + line):
        f.add("api_unreachable", f"the API server cannot use webhook {name}")
        f.details.setdefault("webhooks", []).append(name)
        layers.append(_layer_of(line))
        return
    layers.append("lb")
    f.details.setdefault("webhooks", [])
    if name not in f.details["webhooks"]:
        f.details["webhooks"].append(name)
    if _PROXY.search(line):
        f.add("apiserver_cannot_reach_pod", _HINT_PROXY)
        _transient(f, False)
    elif _TLS.search(line):
        f.add("webhook_ca_mismatch", _HINT_TLS)
        _transient(f, False)
    elif _TRANSIENT.search(line):
        f.add("webhook_unavailable", _HINT_TRANSIENT)
        _transient(f, True)
    else:
        f.add("webhook_unavailable", _HINT_UNREACHABLE)
        _transient(f, False)


_HINT_PROXY = (
    "the API server's proxy cannot dial the webhook pod: the control plane does not "
    "reach the pod network (k3s egress-selector, overlay or firewall between nodes)"
)
_HINT_TLS = (
    "the webhook's certificate is not trusted by the API server: let MetalLB's "
    "cert rotation rewrite the caBundle (restart the controller) or fix the "
    "webhook-server-cert secret; retrying will not help"
)
_HINT_TRANSIENT = (
    "MetalLB's webhook is not serving yet: wait for the controller Deployment to be "
    "Available (kubectl -n metallb-system wait deploy/controller --for "
    "condition=Available) and apply again"
)
_HINT_UNREACHABLE = (
    "MetalLB's webhook does not answer in time: check NetworkPolicies, firewalls and "
    "that the API server can reach the pod network"
)


def _transient(f: Finding, value: bool) -> None:
    # One non-transient webhook error makes the whole output non-transient.
    f.details["transient"] = f.details.get("transient", True) and value


def _no_kind(line: str, text: str, ctx: Context, f: Finding, layers: list[str]) -> None:
    m = _NO_KIND.search(line)
    kind = (m.group(1) or m.group(3)) if m else None
    group = m.group(2) if m and m.group(2) else ""
    if kind is None and "missing_kinds" in f.details:
        return  # kubectl's closing "ensure CRDs are installed first"
    if not _METALLB.search(group + (line if kind else text)):
        f.add("check_failed", f"the cluster does not serve kind {kind or '?'}")
        f.details.setdefault("missing_kinds", []).append(kind or "?")
        layers.append(_layer_of(line))
        return
    layers.append("lb")
    version = parse_version(ctx.metallb_version)
    if version is None:
        hint = "the cluster serves no metallb.io resources: MetalLB < 0.13 or none"
    elif version >= (0, 13):
        hint = (
            f"--metallb-version is {ctx.metallb_version} but the cluster serves no "
            "metallb.io resources: install MetalLB's CRDs and wait until established"
        )
    else:
        hint = "MetalLB before 0.13 has no CRDs: use the address-pools ConfigMap"
    f.add("crds_unsupported_by_version", hint)
    f.details.setdefault("missing_kinds", [])
    if kind and kind not in f.details["missing_kinds"]:
        f.details["missing_kinds"].append(kind)
    f.details["transient"] = bool(_CRD_CREATED.search(text))


def _classify(
    line: str, text: str, ctx: Context, f: Finding, layers: list[str]
) -> bool:
    if _WEBHOOK.search(line):
        _webhook(line, f, layers)
    elif m := _DENIED.search(line):
        f.add("check_failed", f"webhook {m.group(1)} denied the object:{m.group(2)}")
        f.details.setdefault("denied", []).append(line.strip()[:400])
        layers.append(_layer_of(line))
    elif _NO_KIND.search(line):
        _no_kind(line, text, ctx, f, layers)
    elif m := _FORBIDDEN.search(line):
        f.add("rbac_forbidden", f"{m.group(1)} lacks the rights to apply this")
        layers.append(_layer_of(line))
    elif re.search(r"AlreadyExists|already exists", line):
        f.hint("an object already exists: use kubectl apply rather than create")
    elif _GENERIC.search(line):
        # Often the first line of a multi-line error whose cause follows; judged
        # on its own only if nothing more specific turns up (see judge()).
        f.details.setdefault("errors", []).append(line.strip()[:400])
    else:
        return False
    return True


def _lines(text: str) -> Iterator[str]:
    """Non-empty lines, with lines a terminal or a UI wrapped joined back."""
    held = ""
    for raw in text.splitlines():
        if not raw.strip():
            continue
        wrapped = re.match(r"^\s*[│|]\s?(.*)$", raw)
        if wrapped and held:
            held += " " + wrapped.group(1).strip()
            continue
        if held:
            yield held
        held = raw
    if held:
        yield held


def judge(evidence: Evidence, ctx: Context) -> Finding:
    if detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="cluster", kind=NAME)
    layers: list[str] = []
    for line in _lines(evidence.text):
        if _classify(line, evidence.text, ctx, f, layers):
            f.evidence.append(line.strip()[:600])
    if not f.reasons and f.details.get("errors"):
        f.add("check_failed", "kubectl reported an error this analyzer does not know")
        layers.append(_layer_of(evidence.text))
    if not f.reasons and (m := _API_EXC.search(evidence.text)):
        # The client's exception header survived but not the body that explains it.
        f.add("check_failed", f"the API answered {m.group(1)}; its body is missing")
        f.evidence.append(m.group(0))
        layers.append(_layer_of(evidence.text))
    applied = len(_SUCCESS.findall(evidence.text))
    f.details["applied"] = applied
    order = ("cluster", "lb", "mesh")
    f.layer = min(layers, key=order.index) if layers else _layer_of(evidence.text)
    if not f.reasons and not applied and not f.hints:
        return unrecognised(evidence, expected=NAME)
    log.debug("[%s] judged %s", evidence.name, f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="lb",
        summary="kubectl apply / Kubernetes client errors (webhooks, CRDs, RBAC)",
        detect=detect,
        judge=judge,
    )
)
