"""Judge linkerd-proxy-injector logs and InjectionSkipped events.

`linkerd check` stays clean when the injector skips a workload, so this is where
a missing proxy shows. The artifact may mix several captures, and all are read:

- injector log records, logfmt (``time=... level=info msg="skipped pod/web-: ..."``)
  or JSON (``{"level": "info", "msg": ...}``), of every version since 2019;
- Kubernetes events (`kubectl describe` or `kubectl get events`): ``InjectionSkipped
  ... Linkerd sidecar proxy injection skipped: <reason>`` and ``Injected``;
- where the inject setting was put: a ``kubectl label ns <ns> linkerd.io/inject=...``
  command, `kubectl get -o yaml|json` documents, and `kubectl describe` of a
  namespace or workload.

A manifest alone (a Deployment or Namespace as YAML, `kubectl get -o yaml|json`
or `kubectl describe`) that shows the inject setting misplaced is judged too, as
``annotation_misplaced`` (FAIL) only: the manifest cannot show whether the pods
went without the proxy (the namespace, not shown, may carry the annotation), and
C29 asks for ``not_meshed`` only on evidence of pods without it (a skip, an
InjectionSkipped event, or a Pod object of that workload without a
``linkerd-proxy`` container, which is read when the artifact holds one).
A ``kubectl label`` command alone is not enough to detect the kind.

A line head every line carries (a CI timestamp, `kubectl logs --prefix`, `> `
quoting, a syslog head) is removed before reading, as for `linkerd check`
(:func:`meshstack.analyzers._linkerd_check_read.strip_prefix`).

Where the inject setting sits and which Pod objects lack the proxy is read by
:mod:`meshstack.analyzers._injector_log_placement`; the log records and events are
read here.

Context. ``Context.extra["objects"]`` may carry Kubernetes objects (dicts) a live
suite read, judged like documents found in the artifact. ``Context.extra
["expect_meshed"]`` may list the workload names that must carry the proxy: a
skip of any other pod is then a hint, not a failure. Without it, every pod the
injector skipped for want of the annotation counts as ``not_meshed``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._injector_log_placement import (
    INJECT_KEY,
    manifest_misplacements,
    misplacements,
    unmeshed_pods,
)
from meshstack.analyzers._linkerd_check_read import unprefixed
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "injector-log"

_LOGFMT_MSG = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')
_SKIP_EVENT = re.compile(r"InjectionSkipped\b.{0,200}?injection skipped:?\s*(.*)$")
_INJECTED_EVENT = re.compile(r"\bInjected\b.{0,200}Linkerd sidecar proxy injected")
_EVENT_OBJECT = re.compile(r"\b((?:pod|deployment|statefulset|daemonset)/\S+)")
_SKIPPED = re.compile(r"^skipp(?:ed|ing) (?:deployment )?(\S+?):?(?:\s+(.*))?$")
_PATCHED = re.compile(
    r"^(?:injection )?patch generated for:?\s*(\S+)|^patch generated: \S", re.I
)
_RECEIVED = re.compile(r"^received (?:admission review request )?\S+")
_ABSENT = "neither the namespace nor the pod have the annotation"
_BENIGN = ("sidecar injected already", f'annotation "{INJECT_KEY}:disabled"')


@dataclass
class Decision:
    """One injection decision: skipped or injected, for which resource, why."""

    action: str  # "skipped", "injected" or "received" (no decision yet)
    resource: str
    reason: str
    line: str


# --- reading decisions -----------------------------------------------------------


def _message(line: str) -> str | None:
    """The message of an injector log record, or None for other lines."""
    m = _LOGFMT_MSG.search(line)
    if m and "level=" in line:
        return m.group(1).replace('\\"', '"')
    stripped = line.strip()
    if stripped.startswith("{") and '"msg"' in stripped:
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
        return str(doc.get("msg", "")) if isinstance(doc, dict) else None
    return None


def _decision(line: str) -> Decision | None:
    event = _SKIP_EVENT.search(line)
    if event:
        obj = _EVENT_OBJECT.search(line)
        return Decision("skipped", obj.group(1) if obj else "", event.group(1), line)
    if _INJECTED_EVENT.search(line):
        obj = _EVENT_OBJECT.search(line)
        return Decision("injected", obj.group(1) if obj else "", "", line)
    msg = _message(line)
    if msg is None:
        return None
    skipped = _SKIPPED.match(msg)
    if skipped:
        return Decision("skipped", skipped.group(1), skipped.group(2) or "", line)
    patched = _PATCHED.match(msg)
    if patched:
        return Decision("injected", patched.group(1) or "", "", line)
    if _RECEIVED.match(msg):
        return Decision("received", "", "", line)
    return None


def read(text: str) -> list[Decision]:
    return [d for line in text.splitlines() if (d := _decision(line.rstrip()))]


# --- detecting and judging -----------------------------------------------------


def detect(evidence: Evidence) -> float:
    evidence = unprefixed(evidence)
    text = evidence.text[:200_000]
    decisions = read(text)
    if any(d.action in ("skipped", "injected") for d in decisions):
        return 0.9
    if decisions or manifest_misplacements(text, Context()):
        return 0.6
    return 0.0


def judge(evidence: Evidence, ctx: Context) -> Finding:
    evidence = unprefixed(evidence)
    try:
        decisions = read(evidence.text)
        manifest = [] if decisions else manifest_misplacements(evidence.text, ctx)
        misplaced = misplacements(evidence.text, ctx) if decisions or manifest else []
        pods = unmeshed_pods(evidence.text, ctx) if misplaced or decisions else []
    except Exception:  # a judge must never raise; say what happened instead
        log.exception("[%s] could not read the injector log", evidence.name)
        return unrecognised(evidence, expected=NAME)
    if not decisions and not misplaced:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="mesh", kind=NAME)
    _judge_skips([d for d in decisions if d.action == "skipped"], ctx, f)
    _judge_pods(pods, f)
    _judge_misplaced(misplaced, evidence.text, f)
    injected = [d.resource for d in decisions if d.action == "injected"]
    if injected:
        f.details["injected"] = injected
    elif not decisions and "not_meshed" not in f.reasons:
        f.hint(
            "whether the pods went without the proxy is not shown (no injector "
            "log, event or Pod here): see `kubectl get pods` for a linkerd-proxy "
            "container"
        )
    elif not f.reasons:
        f.add("no_data", "the log shows no injection decision (only requests)")
    return f


def _judge_pods(pods: list[str], f: Finding) -> None:
    if not pods:
        return
    f.details["unmeshed_pods"] = pods
    f.add("not_meshed", _ANNOTATE_HINT)


def _expected(resource: str, ctx: Context) -> bool:
    names = ctx.extra.get("expect_meshed")
    if not isinstance(names, list) or not resource:
        return True
    base = resource.split("/", 1)[-1]
    return any(base == n or base.startswith(f"{n}-") for n in map(str, names))


def _judge_skips(skips: list[Decision], ctx: Context, f: Finding) -> None:
    for d in skips:
        benign = any(b in d.reason for b in _BENIGN)
        if benign or not _expected(d.resource, ctx):
            f.hint(f"skipped {d.resource or 'a pod'}: {d.reason or 'no reason given'}")
            continue
        if d.reason and _ABSENT not in d.reason and "expect_meshed" not in ctx.extra:
            f.hint(f"skipped {d.resource or 'a pod'}: {d.reason}")
            continue
        if not d.reason:
            f.hint(
                "this injector logs no skip reason; the usual one is a missing "
                "or misplaced inject annotation"
            )
        f.details.setdefault("skipped", []).append(
            {"resource": d.resource, "reason": d.reason}
        )
        if d.line not in f.evidence:
            f.evidence.append(d.line)
        f.add("not_meshed", _ANNOTATE_HINT)


_ANNOTATE_HINT = (
    "annotate the namespace (`kubectl annotate ns <ns> linkerd.io/inject=enabled`) "
    "or the pod template, then `kubectl rollout restart` the workloads"
)


def _judge_misplaced(misplaced: list[str], text: str, f: Finding) -> None:
    if not misplaced:
        return
    f.details["misplaced"] = misplaced
    f.evidence.extend(
        ln.strip()
        for ln in text.splitlines()
        if INJECT_KEY in ln and "skipped" not in ln and ln.strip() not in f.evidence
    )
    f.add(
        "annotation_misplaced",
        "the injector reads the annotation on the namespace or the pod template "
        "(spec.template.metadata.annotations), not a label nor the workload's own "
        "metadata",
    )


KIND = register(
    Kind(
        name=NAME,
        layer="mesh",
        summary="linkerd-proxy-injector logs and InjectionSkipped events",
        detect=detect,
        judge=judge,
    )
)
