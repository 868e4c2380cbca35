"""Judge the logs of a `linkerd-proxy` container.

Three line formats have been printed over the years, and all are read:

- current: ``[     0.0016s]  INFO ThreadId(01) linkerd2_proxy: Admin interface ...``
- 2019-2020: ``ERR! [ 14047.95s] linkerd2_proxy_identity::certify Failed ...``
- JSON (``LINKERD2_PROXY_LOG_FORMAT=json``): ``{"timestamp": ..., "level": "WARN",
  "fields": {"message": ...}, "target": ...}``

A proxy that cannot get its identity certificate (the identity service is
unreachable, or the certificate it gets is expired or not yet valid) is
``identity_unreachable``, unless a later line shows the identity was certified
after all, which makes the earlier errors a hint. Any other ERROR line is
``check_failed``; warnings are hints; a log of INFO lines is a PASS.

A line head every line carries (a CI timestamp, `kubectl logs --prefix`, `> `
quoting, a syslog head) is removed before reading, as for `linkerd check`
(:func:`meshstack.analyzers._linkerd_check_read.strip_prefix`).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._linkerd_check_read import unprefixed
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "proxy-log"
_MAX_EVIDENCE = 6
# Messages are matched up to this length, so that no pattern turns slow on a
# pathological line; real proxy messages are far shorter.
_MAX_MESSAGE = 4000

_CURRENT = re.compile(r"\[\s*[\d.]+s\]\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s+(.*)$")
_OLDER = re.compile(r"\b(TRCE|DBUG|INFO|WARN|ERR!)\s+\[\s*[\d.]+s\]\s+(.*)$")
_LEVELS = {"TRCE": "TRACE", "DBUG": "DEBUG", "ERR!": "ERROR"}

_IDENTITY_FAILURE = re.compile(
    r"Failed to (obtain|certify) identity|identity initialization failed"
    r"|identity daemon (lost|failed|stopped)|Waiting for identity to be initialized"
    r"|Received invalid ce\w*ficate|invalid certificate: Cert(Expired|NotValidYet)"
    r"|certificate has expired or is not yet valid|certificate already expired"
    r"|\bidentity[:{][^\n]{0,300}?(Failed to (connect|resolve)|fail-fast"
    r"|Connection refused)",
    re.IGNORECASE,
)
_CERTIFIED = re.compile(r"Certified identity|Identity certified", re.IGNORECASE)
_CLOCK_WORDS = re.compile(r"not yet valid|NotValidYet|expired", re.IGNORECASE)


@dataclass
class Line:
    """One log record: its level, its text after the level, the raw line."""

    level: str
    message: str
    raw: str


def _json_line(raw: str) -> Line | None:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "level" not in doc:
        return None
    fields = doc.get("fields")
    message = fields.get("message", "") if isinstance(fields, dict) else ""
    rest = " ".join(f"{k}={v}" for k, v in (fields or {}).items() if k != "message")
    text = f"{doc.get('spans', '')} {doc.get('target', '')}: {message} {rest}"
    return Line(str(doc["level"]).upper(), text.strip()[:_MAX_MESSAGE], raw)


def parse_line(raw: str) -> Line | None:
    """A proxy log record, or None for any other line."""
    stripped = raw.strip()
    if stripped.startswith("{"):
        return _json_line(stripped)
    m = _CURRENT.search(stripped) or _OLDER.search(stripped)
    if not m:
        return None
    level = _LEVELS.get(m.group(1), m.group(1))
    return Line(level, m.group(2)[:_MAX_MESSAGE], raw.rstrip())


def read(text: str) -> list[Line]:
    return [line for raw in text.splitlines() if (line := parse_line(raw))]


def detect(evidence: Evidence) -> float:
    evidence = unprefixed(evidence)
    lines = read(evidence.text[:200_000])
    if not lines:
        return 0.0
    proxy = sum(1 for ln in lines if re.search(r"linkerd[2_]\w*", ln.message))
    if proxy:
        return 0.9 if proxy * 2 >= len(lines) or proxy >= 3 else 0.7
    return 0.0


def judge(evidence: Evidence, ctx: Context) -> Finding:
    evidence = unprefixed(evidence)
    try:
        lines = read(evidence.text)
    except Exception:  # a judge must never raise; say what happened instead
        log.exception("[%s] could not read the proxy log", evidence.name)
        return unrecognised(evidence, expected=NAME)
    if not lines or detect(evidence) == 0.0:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="mesh", kind=NAME)
    f.details["lines"] = len(lines)
    accounted = {id(ln) for ln in _judge_identity(lines, f)}
    _judge_errors([ln for ln in lines if id(ln) not in accounted], f)
    return f


def _judge_identity(lines: list[Line], f: Finding) -> list[Line]:
    """Identity failures at WARN or above; returns the lines it accounted for."""
    failures = [
        (i, ln)
        for i, ln in enumerate(lines)
        if ln.level in ("WARN", "ERROR") and _IDENTITY_FAILURE.search(ln.message)
    ]
    if not failures:
        return []
    last_failure = failures[-1][0]
    certified = [i for i, ln in enumerate(lines) if _CERTIFIED.search(ln.message)]
    f.details["identity_failures"] = len(failures)
    if certified and certified[-1] > last_failure:
        f.hint(
            f"{len(failures)} identity error(s) before the proxy was certified: "
            "transient at start-up"
        )
        return [ln for _, ln in failures]
    f.evidence.extend(ln.raw for _, ln in failures[:_MAX_EVIDENCE])
    f.add("identity_unreachable", _IDENTITY_HINT)
    if any(_CLOCK_WORDS.search(ln.message) for _, ln in failures):
        f.hint(
            "certificate validity errors: compare `date -u` on the nodes (clock "
            "skew) and check the issuer's expiry with `linkerd check`"
        )
    return [ln for _, ln in failures]


_IDENTITY_HINT = (
    "the proxy has no identity certificate: check that linkerd-identity pods are "
    "ready, its headless service resolves, and the issuer certificate is valid"
)


def _judge_errors(lines: list[Line], f: Finding) -> None:
    errors = Counter(_shape(ln.message) for ln in lines if ln.level == "ERROR")
    warnings = Counter(_shape(ln.message) for ln in lines if ln.level == "WARN")
    if errors:
        f.details["errors"] = [{"message": m, "count": n} for m, n in errors.items()]
        cited = [ln.raw for ln in lines if ln.level == "ERROR"][:_MAX_EVIDENCE]
        f.evidence.extend(cited)
        f.add("check_failed", f"{sum(errors.values())} ERROR line(s) in the proxy log")
    if warnings:
        first, count = warnings.most_common(1)[0]
        f.details["warnings"] = sum(warnings.values())
        f.hint(
            f"{sum(warnings.values())} WARN line(s); most frequent ({count}x): {first}"
        )


def _shape(message: str) -> str:
    """A message with its addresses and numbers blurred, to count repeats."""
    text = re.sub(r"ThreadId\(\d+\)\s*", "", message)
    text = re.sub(r"\d+(\.\d+){3}(:\d+)?", "<addr>", text)
    return re.sub(r"\d+", "N", text)[:200]


KIND = register(
    Kind(
        name=NAME,
        layer="mesh",
        summary="logs of a linkerd-proxy container (text or JSON format)",
        detect=detect,
        judge=judge,
    )
)
