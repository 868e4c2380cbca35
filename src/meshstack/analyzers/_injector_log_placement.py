"""Where the Linkerd inject setting was put, and which pods went without the proxy.

The injector reads ``linkerd.io/inject`` as an annotation on the namespace or on a
workload's pod template. This module finds the setting anywhere else: a ``kubectl
label`` command, Kubernetes objects printed as YAML or JSON inside the artifact (or
passed in ``Context.extra["objects"]``), and ``kubectl describe`` of a namespace or
workload. It also reads Pod objects to name those that were meant to carry the
proxy and have no ``linkerd-proxy`` container. The injector-log analyzer
(:mod:`meshstack.analyzers.injector_log`) turns both into reason codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from meshstack.analyzers import Context

INJECT_KEY = "linkerd.io/inject"
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_LABEL_CMD = re.compile(
    r"kubectl\s+label\s+(?:ns|namespaces?)\s+(\S+)\s.{0,200}?linkerd\.io/inject=(\w+)"
)
_ANNOTATE_CMD = re.compile(
    r"kubectl\s+annotate\s+(?:ns|namespaces?)\s+(\S+)\s.{0,200}?linkerd\.io/inject="
)


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
