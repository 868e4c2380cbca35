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
``linkerd-proxy`` container, which is read here when the artifact holds one).
A ``kubectl label`` command alone is not enough to detect the kind.

A line head every line carries (a CI timestamp, `kubectl logs --prefix`, `> `
quoting, a syslog head) is removed before reading, as for `linkerd check`
(:func:`meshstack.analyzers._linkerd_check_read.strip_prefix`).

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._linkerd_check_read import unprefixed
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "injector-log"
INJECT_KEY = "linkerd.io/inject"
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

_LOGFMT_MSG = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')
_SKIP_EVENT = re.compile(r"InjectionSkipped\b.{0,200}?injection skipped:?\s*(.*)$")
_INJECTED_EVENT = re.compile(r"\bInjected\b.{0,200}Linkerd sidecar proxy injected")
_EVENT_OBJECT = re.compile(r"\b((?:pod|deployment|statefulset|daemonset)/\S+)")
_SKIPPED = re.compile(r"^skipp(?:ed|ing) (?:deployment )?(\S+?):?(?:\s+(.*))?$")
_PATCHED = re.compile(
    r"^(?:injection )?patch generated for:?\s*(\S+)|^patch generated: \S", re.I
)
_RECEIVED = re.compile(r"^received (?:admission review request )?\S+")
_LABEL_CMD = re.compile(
    r"kubectl\s+label\s+(?:ns|namespaces?)\s+(\S+)\s.{0,200}?linkerd\.io/inject=(\w+)"
)
_ANNOTATE_CMD = re.compile(
    r"kubectl\s+annotate\s+(?:ns|namespaces?)\s+(\S+)\s.{0,200}?linkerd\.io/inject="
)
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


# --- reading where the inject setting sits -------------------------------------


def _documents(text: str) -> Iterator[Any]:
    """Kubernetes objects printed as YAML or JSON documents inside the text."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith(("apiVersion:", "kind:")):
            j = i + 1
            while j < len(lines) and _yaml_line(lines[j]):
                j += 1
            yield _safe_yaml("\n".join(lines[i:j]))
            i = j
        elif lines[i] == "{":
            j = next((k for k in range(i, len(lines)) if lines[k] == "}"), len(lines))
            yield _safe_json("\n".join(lines[i : j + 1]))
            i = j + 1
        else:
            i += 1


def _yaml_line(line: str) -> bool:
    """Whether a line continues a YAML document: indented, a list item, or a key."""
    if line == "---":
        return False
    return line[:1] in (" ", "-") or bool(re.match(r"^[A-Za-z][\w.-]*:(\s|$)", line))


def _safe_yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None


def _safe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(doc, Mapping):
        if isinstance(doc.get("items"), list):
            for item in doc["items"]:
                yield from _objects(item)
        elif "kind" in doc:
            yield doc


def _meta(obj: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _object_misplacements(obj: Mapping[str, Any]) -> list[str]:
    kind, name = str(obj.get("kind")), str(_meta(obj, "metadata").get("name", "?"))
    labels, notes = (
        _meta(obj, "metadata", "labels"),
        _meta(obj, "metadata", "annotations"),
    )
    out = []
    if INJECT_KEY in labels and INJECT_KEY not in notes:
        out.append(f"{kind.lower()}/{name} carries {INJECT_KEY} as a label")
    if kind in _WORKLOADS and INJECT_KEY in notes:
        tmpl = _meta(obj, "spec", "template", "metadata", "annotations")
        if INJECT_KEY not in tmpl:
            out.append(
                f"{kind.lower()}/{name} has {INJECT_KEY} on its own metadata, "
                "not on its pod template"
            )
    return out


def _describe_field(lines: list[str], indent: str, key: str) -> list[str] | None:
    """Values of a `kubectl describe` field at one indentation, with continuations."""
    head = re.compile(rf"^{indent}{key}:\s*(.*)$")
    more = re.compile(rf"^{indent}\s{{4,}}(\S.*)$")
    for i, line in enumerate(lines):
        m = head.match(line)
        if not m:
            continue
        values = [m.group(1).strip()]
        for cont in lines[i + 1 :]:
            c = more.match(cont)
            if not c:
                break
            values.append(c.group(1).strip())
        return values
    return None


# TODO: `kubectl describe` is read by indentation alone; a field whose value
# wraps oddly may be missed, which costs a missing annotation_misplaced (never a
# false one). Objects passed in Context.extra["objects"] are the reliable route.
def _describe_misplacements(text: str) -> list[str]:
    out = []
    for block in re.split(r"\n(?=Name:\s)", "\n" + text):
        lines = block.splitlines()
        name = next((ln.split()[1] for ln in lines if re.match(r"^Name:\s+\S", ln)), "")
        if not name:
            continue
        labels = " ".join(_describe_field(lines, "", "Labels") or [])
        notes = " ".join(_describe_field(lines, "", "Annotations") or [])
        if f"{INJECT_KEY}=" in labels and INJECT_KEY not in notes:
            out.append(f"{name} carries {INJECT_KEY} as a label")
        tmpl_at = next((i for i, ln in enumerate(lines) if ln == "Pod Template:"), None)
        if tmpl_at is not None and INJECT_KEY in notes:
            tmpl = " ".join(_describe_field(lines[tmpl_at:], "  ", "Annotations") or [])
            if INJECT_KEY not in tmpl:
                out.append(
                    f"{name} has {INJECT_KEY} on its own metadata, not on its pod "
                    "template"
                )
    return out


def _all_objects(text: str, ctx: Context) -> list[Mapping[str, Any]]:
    extra = ctx.extra.get("objects")
    docs = [*_documents(text), *(extra if isinstance(extra, list) else [])]
    return [obj for doc in docs for obj in _objects(doc)]


def manifest_misplacements(text: str, ctx: Context) -> list[str]:
    """Misplacements shown by objects and `kubectl describe`, not by commands."""
    found = [m for obj in _all_objects(text, ctx) for m in _object_misplacements(obj)]
    found.extend(_describe_misplacements(text))
    return list(dict.fromkeys(found))


def misplacements(text: str, ctx: Context) -> list[str]:
    """Every place the inject setting sits where the injector does not read it."""
    annotated = {m.group(1) for m in _ANNOTATE_CMD.finditer(text)}
    found = [
        f"namespace/{m.group(1)} was given {INJECT_KEY} as a label (`kubectl label`)"
        for m in _LABEL_CMD.finditer(text)
        if m.group(1) not in annotated
    ]
    return list(dict.fromkeys([*found, *manifest_misplacements(text, ctx)]))


# TODO: a Pod is tied to its workload by name (the longest workload name that
# prefixes it: `web-admin-x` belongs to web-admin, not web), not by
# ownerReferences through its ReplicaSet; a Pod whose workload is not in the
# artifact may be claimed by a shorter namesake, which costs a wrong not_meshed
# only when that namesake asks for the proxy and the Pod's own workload does not.
def unmeshed_pods(text: str, ctx: Context) -> list[str]:
    """Pod objects without a linkerd-proxy container that were meant to carry one.

    Meant: the Pod belongs (by name) to a workload that carries the inject
    setting anywhere on it, or to a name in ``Context.extra["expect_meshed"]``.
    """
    objects = _all_objects(text, ctx)
    expected = ctx.extra.get("expect_meshed")
    names = expected if isinstance(expected, list) else []
    workloads: dict[tuple[str, str], bool] = {("", str(n)): True for n in names}
    for o in objects:
        meta = _meta(o, "metadata")
        if o.get("kind") in _WORKLOADS and "name" in meta:
            key = (str(meta.get("namespace", "")), str(meta["name"]))
            workloads[key] = workloads.get(key, False) or _wants_proxy(o)
    out = []
    for pod in (o for o in objects if o.get("kind") == "Pod"):
        meta = _meta(pod, "metadata")
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        owners = [
            k for k in workloads if k[0] in ("", ns) and name.startswith(f"{k[1]}-")
        ]
        owner = max(owners, key=lambda k: len(k[1]), default=None)
        opted_out = _meta(meta, "annotations").get(INJECT_KEY) == "disabled"
        if owner and workloads[owner] and not opted_out and not _has_proxy(pod):
            out.append(f"{ns}/{name}" if ns else name)
    return out


def _wants_proxy(obj: Mapping[str, Any]) -> bool:
    """Whether a workload asks for the proxy anywhere, misplaced or not."""
    places = (
        ("metadata", "annotations"),
        ("metadata", "labels"),
        ("spec", "template", "metadata", "annotations"),
    )
    return any(_meta(obj, *p).get(INJECT_KEY) == "enabled" for p in places)


def _has_proxy(pod: Mapping[str, Any]) -> bool:
    spec = _meta(pod, "spec")
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    return any(
        isinstance(c, Mapping) and c.get("name") == "linkerd-proxy" for c in containers
    )


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
