"""The rules that read one `linkerd check` result: what it means, what to do.

Each rule looks at one check (its description, messages and status) and, when it
recognises the failure, records the reason code, a hint and the details; the first
rule that claims a check decides it. The linkerd-check analyzer
(:mod:`meshstack.analyzers.linkerd_check`) runs them over every check it read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from meshstack.analyzers import Context
from meshstack.analyzers._linkerd_check_read import FAILED, WAITING, WARNING, Check
from meshstack.verdicts import Finding

# An issuer or trust anchor this close to its end fails whatever the tool printed.
EXPIRY_BOUND = timedelta(days=7)


@dataclass
class Tally:
    """Codes gathered from the checks, kept apart by the severity the tool printed."""

    finding: Finding
    ctx: Context
    hard: list[str] = field(default_factory=list)
    soft: list[str] = field(default_factory=list)
    # Notes that judge nothing (an offline version check): hinted after the rest.
    notes: list[str] = field(default_factory=list)

    def add(
        self, check: Check, code: str, hint: str = "", *, forced: bool = False
    ) -> None:
        """Record a code; a warning check counts as soft unless the code is forced."""
        bucket = self.hard if forced or check.status != WARNING else self.soft
        if code not in bucket:
            bucket.append(code)
        self.finding.add(code, hint or None)
        self.evidence(check)

    def evidence(self, check: Check) -> None:
        ev = self.finding.evidence
        ev.extend(ln for ln in check.lines if ln not in ev)

    def detail(self, key: str, value: Any) -> None:
        items = self.finding.details.setdefault(key, [])
        if value not in items:
            items.append(value)


# --- classifying one check -----------------------------------------------------

_FORBIDDEN = re.compile(
    r'is forbidden: User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource '
    r'"(?P<res>[^"]+)"(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<ns>[^"]+)"| at the cluster scope)?'
)
_MISSING_PERMISSION = re.compile(r"Missing permissions to (\w+) (\w+)")
_SKEW_NODES = re.compile(r"clock skew detected for node\(s\):\s*(.+)")
_CNI_CONFIG = re.compile(r'configmaps? "?linkerd-cni-config"? not found')
_VIZ_MISSING = re.compile(
    r'namespaces? "?linkerd-viz"? not found|could not find the linkerd-viz'
    r'|label "linkerd\.io/extension: viz" not found'
    r"|viz extension[^\n]{0,200}not (found|installed)",
    re.IGNORECASE,
)
_NOT_READY = re.compile(
    r"not ready|No running pods|waiting for check to complete|is not running"
    r"|Could not find pods|not enough replicas|status is Pending",
    re.IGNORECASE,
)
_READINESS_CHECK = re.compile(
    r"control plane (pods|replica sets|proxies) are (ready|healthy)"
    r"|controller pod is running|no unschedulable pods"
)
_NOT_MESHED = re.compile(
    r'no "?linkerd-proxy"? containers found|could not find proxy container',
    re.IGNORECASE,
)
_IDENTITY_DOWN = re.compile(
    r"Failed to (obtain|certify) identity|identity[^\n]{0,200}?(unavailable|fail-fast|"
    r"connection refused|unreachable|no endpoints)",
    re.IGNORECASE,
)
_EXPIRED = re.compile(r"Expired on (\S+)")
_EXPIRES = re.compile(r"will expire on (\S+)")
_NOT_YET = re.compile(r"not valid before:? (\S+)")
_RUNNING = re.compile(
    r"running (?:version )?(\S+) but (?:the latest \w+ version is |cli running )(\S+)"
)
_RELEASE = re.compile(r"^(?:(?:stable|edge|enterprise)-)?v?\d+(?:\.\d+){2}\S*$")
_OFFLINE_CHECKS = ("cli is up-to-date", "can determine the latest version")
_UP_TO_DATE = re.compile(r"\b(is|are) up-to-date$|latest version")


def classify(check: Check, acc: Tally) -> None:
    for rule in _RULES:
        if rule(check, acc):
            return
    acc.add(check, "check_failed")
    acc.detail("failed_checks", _check_details(check))


def _check_details(check: Check) -> dict[str, str]:
    return {
        "category": check.category,
        "description": check.description,
        "error": check.error,
        "severity": check.status,
    }


def _rbac(check: Check, acc: Tally) -> bool:
    found = False
    for m in _FORBIDDEN.finditer(check.error):
        scope = f"namespace {m.group('ns')}" if m.group("ns") else "cluster"
        item = {
            "verb": m.group("verb"),
            "resource": m.group("res"),
            "group": m.group("group") or "",
            "scope": scope,
            "user": m.group("user"),
        }
        acc.detail("forbidden", item)
        found = True
    for m in _MISSING_PERMISSION.finditer(check.error):
        item = {"verb": m.group(1), "resource": m.group(2), "group": "", "scope": ""}
        acc.detail("forbidden", item)
        found = True
    if found:
        acc.add(check, "rbac_forbidden", _RBAC_HINT)
        _already_exists(check, acc)
    return found


_RBAC_HINT = (
    "the kubeconfig lacks rights the install needs: run with a cluster-admin "
    "kubeconfig (on k3s, /etc/rancher/k3s/k3s.yaml on the server)"
)


def _already_exists(check: Check, acc: Tally) -> bool:
    if "already exists" not in check.error:
        return False
    for msg in check.messages:
        if "already exists" in msg:
            acc.detail("existing", msg)
    acc.add(
        check,
        "preexisting_resource",
        "something the install would create already exists: remove it, or install "
        "into it deliberately (this is not a permission problem)",
        forced=True,
    )
    return True


def _clock_skew(check: Check, acc: Tally) -> bool:
    if "clock skew" not in check.text.lower():
        return False
    for m in _SKEW_NODES.finditer(check.error):
        for node in m.group(1).split(","):
            if node.strip():
                acc.detail("nodes", node.strip())
    acc.add(check, "clock_skew", _SKEW_HINT)
    if check.status == FAILED:
        acc.finding.hint(_SKEW_FALSE_POSITIVE)
    return True


_SKEW_HINT = (
    "compare `date -u` on the CLI host and on each node named; enable NTP on every VM "
    "(`timedatectl set-ntp true`); real skew later shows as proxy identity errors "
    "'x509: certificate has expired or is not yet valid'"
)
_SKEW_FALSE_POSITIVE = (
    "possible false positive: on Kubernetes >= 1.17 the kubelet heartbeat is "
    "refreshed only every 5 min, which a Linkerd CLI older than March 2020 "
    "(stable-2.7.1) reads as skew"
)


def _cni(check: Check, acc: Tally) -> bool:
    if not _CNI_CONFIG.search(check.error):
        return False
    where = acc.ctx.cni_namespace or "linkerd-cni (the CLI's default)"
    acc.add(
        check,
        "cni_config_missing",
        f"the check looked for linkerd-cni-config in {where}: if the CNI was "
        "installed elsewhere, re-run with --cni-namespace=<that namespace>",
    )
    return True


def _viz(check: Check, acc: Tally) -> bool:
    if not _VIZ_MISSING.search(check.text):
        return False
    acc.add(
        check,
        "viz_extension_not_found",
        "install the viz extension (`linkerd viz install | kubectl apply -f -`) "
        "or point the check at its namespace",
    )
    return True


def _not_meshed(check: Check, acc: Tally) -> bool:
    if not _NOT_MESHED.search(check.error):
        return False
    for msg in check.messages:
        acc.detail("not_meshed", msg)
    acc.add(
        check,
        "not_meshed",
        "annotate the namespace or pod template with linkerd.io/inject=enabled, "
        "then `kubectl rollout restart` the workloads",
    )
    return True


def _identity_down(check: Check, acc: Tally) -> bool:
    if not _IDENTITY_DOWN.search(check.error):
        return False
    acc.add(check, "identity_unreachable", "check the linkerd-identity pods and logs")
    return True


def _not_ready(check: Check, acc: Tally) -> bool:
    waits = _NOT_READY.search(check.text) and "data-plane" not in check.category
    if not (waits or _READINESS_CHECK.match(check.description)):
        return False
    if check.status == WAITING:
        acc.finding.details["waiting_on"] = check.error or check.description
    acc.add(
        check,
        "control_plane_not_ready",
        "see `kubectl -n linkerd get pods` and the events of the pods not ready",
    )
    return True


def _offline_version(check: Check, acc: Tally) -> bool:
    desc = check.description
    if desc not in _OFFLINE_CHECKS and not _UP_TO_DATE.search(desc):
        return False
    # The tool's own message where it printed one; never words put in its mouth.
    said = f": {check.error}" if check.error else ", with no message"
    acc.notes.append(
        f"{desc}{said} (the latest version could not be compared: edge sites may be "
        "offline; not a warning)"
    )
    return True


def _versions(check: Check, acc: Tally) -> bool:
    seen = [v for m in _RUNNING.finditer(check.error) for v in m.groups()]
    seen += re.findall(r"\(([^()\s]+)\)\s*$", check.error, re.MULTILINE)
    up_to_date = bool(_UP_TO_DATE.search(check.description))
    if not seen or not ("version" in check.description or up_to_date):
        return False
    unknown = [v for v in seen if not _RELEASE.match(v)]
    if unknown and not _about_proxies(check):
        if up_to_date:  # a release-freshness check: a hint, whatever it names
            return False
        acc.finding.hint(
            f"{check.description}: {', '.join(unknown)} are not release versions, "
            "so the versions were not compared"
        )
        return True
    if not unknown and (up_to_date or len(set(seen)) < 2):
        return False  # compared with the newest release online: a hint at most
    acc.detail("versions", {"check": check.description, "seen": seen})
    if unknown:
        acc.add(check, "version_unknown", _UNKNOWN_HINT, forced=True)
    else:
        acc.add(check, "version_mismatch", _MISMATCH_HINT, forced=True)
    return True


def _about_proxies(check: Check) -> bool:
    """Whether a version check is about proxies (version_unknown is only theirs)."""
    where = f"{check.category} {check.description}".lower()
    return any(w in where for w in ("data-plane", "data plane", "prox"))


_MISMATCH_HINT = "upgrade so that CLI, control plane and proxies run one release"


_UNKNOWN_HINT = (
    "a proxy reports a version that is not a release (an image digest or registry "
    "path), so it cannot be compared; pin proxy images by release tag"
)


def _certificates(check: Check, acc: Tally) -> bool:
    expired = _EXPIRED.findall(check.error)
    expiring = _EXPIRES.findall(check.error)
    if not (expired or expiring or _NOT_YET.search(check.error)):
        return False
    if not re.search(r"issuer|anchor|root", check.description, re.IGNORECASE):
        return False
    if expired:
        return _expiring(check, acc, expired, "expired")
    if not expiring:  # not yet valid: a clock or a freshly made certificate
        acc.add(check, "check_failed", _SKEW_HINT)
        acc.detail("failed_checks", _check_details(check))
        return True
    return _judge_expiry(check, acc, expiring)


def _judge_expiry(check: Check, acc: Tally, dates: list[str]) -> bool:
    now = acc.ctx.now
    if now is None:
        acc.finding.hint(
            f"{check.description}: expires {', '.join(dates)}; no judging time was "
            "given (Context.now), so whether that is within 7 days was not judged"
        )
        acc.add(check, "check_failed")
        acc.detail("failed_checks", _check_details(check))
        return True
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    times = [(d, t) for d in dates if (t := _when(d)) is not None]
    past = [d for d, t in times if t <= now]
    soon = [d for d, t in times if now < t <= now + EXPIRY_BOUND]
    if past or soon:
        if past:
            _expiring(check, acc, past, "expired")
        if soon:
            _expiring(check, acc, soon, "expires within 7 days")
        return True
    acc.add(check, "check_failed", f"{check.description}: expires {', '.join(dates)}")
    acc.detail("failed_checks", _check_details(check))
    return True


def _expiring(check: Check, acc: Tally, dates: list[str], state: str) -> bool:
    for d in dates:
        acc.detail(
            "certificates", {"check": check.description, "date": d, "state": state}
        )
    acc.add(
        check,
        "identity_issuer_expiring",
        "rotate the identity issuer / trust anchor now (see Linkerd's "
        "'replacing expired certificates' procedure)",
        forced=True,
    )
    return True


def _when(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.rstrip(".,;)").replace("Z", "+00:00"))
    except (ValueError, RecursionError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_RULES = (
    _rbac,
    _already_exists,
    _clock_skew,
    _cni,
    _viz,
    _certificates,
    _versions,
    _offline_version,
    _not_meshed,
    _identity_down,
    _not_ready,
)
