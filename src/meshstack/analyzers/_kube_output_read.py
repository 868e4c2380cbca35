"""Reading `kubectl get` tables, `kubectl describe` output and events.

Tables are found by their header words (any column order, wide or not), under a
``$ kubectl ...`` prompt line or without one; events are read from event tables
and from describe output. :func:`parse` returns every row and event by resource;
the kube-output analyzer (:mod:`meshstack.analyzers.kube_output`) judges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER_WORD = re.compile(r"^[A-Z][A-Z0-9()_.-]*( [A-Z][A-Z-]*)?$")
_PROMPT = re.compile(r"^\s*(\$|#|>)\s*kubectl\b(.*)$")
_EVENT = re.compile(r"^[ \t]*(Normal|Warning)[ \t]+([A-Z][A-Za-z]+)[ \t]+(.*)$")
EVENT_LINE = re.compile(_EVENT.pattern, re.M)
TABLES = {
    "nodes": ({"NAME", "STATUS", "ROLES"}, {"NAME", "STATUS", "INTERNAL-IP"}),
    "pods": ({"NAME", "READY", "STATUS", "RESTARTS"},),
    "services": ({"NAME", "TYPE", "CLUSTER-IP"},),
    "endpoints": ({"NAME", "ENDPOINTS"},),
    "daemonsets": ({"NAME", "DESIRED", "CURRENT"},),
    "events": ({"TYPE", "REASON", "MESSAGE"},),
}
_DEFAULT_HEADERS = {
    "pods": ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
    "services": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
    "nodes": ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
    "daemonsets": ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"],
}
_RESOURCE = {
    alias: table
    for table, aliases in (
        ("pods", "po pod pods"),
        ("services", "svc service services"),
        ("nodes", "no node nodes"),
        ("daemonsets", "ds daemonset daemonsets"),
    )
    for alias in aliases.split()
}


@dataclass
class Row:
    table: str
    cells: dict[str, str]
    line: str
    namespace: str | None = None

    @property
    def name(self) -> str:
        return self.cells.get("NAME", "").split("/")[-1]


@dataclass
class Event:
    type: str
    reason: str
    obj: str
    message: str
    line: str


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


# --- parsing -------------------------------------------------------------------------


def header_of(line: str) -> tuple[str, list[str], list[int]] | None:
    cols = [c for c in re.split(r"\s{2,}", line.strip()) if c]
    if len(cols) < 2 or not all(_HEADER_WORD.match(c) for c in cols):
        return None
    names = set(cols)
    for table, sets in TABLES.items():
        if any(s <= names for s in sets):
            indent = len(line) - len(line.lstrip())
            starts = [line.index(c, indent) for c in cols]
            return table, cols, starts
    return None


def _cells(line: str, cols: list[str], starts: list[int]) -> dict[str, str] | None:
    parts = re.split(r"\s{2,}", line.strip())
    if len(parts) == len(cols):
        return dict(zip(cols, parts, strict=True))
    if (
        starts
        and len(line) > starts[-1]
        and all(s == 0 or line[s - 1] == " " for s in starts)
    ):
        ends = [*starts[1:], len(line)]
        return {
            c: line[a:b].strip() for c, a, b in zip(cols, starts, ends, strict=True)
        }
    words = line.split()
    if len(words) >= len(cols):
        head = words[: len(cols) - 1]
        return dict(zip(cols, [*head, " ".join(words[len(cols) - 1 :])], strict=True))
    return None


@dataclass
class _Prompt:
    resource: str | None = None
    namespace: str | None = None
    describe: str | None = None


def _read_prompt(args: str) -> _Prompt:
    words = args.split()
    ns = None
    for i, w in enumerate(words[:-1]):
        if w in ("-n", "--namespace"):
            ns = words[i + 1]
    ns = next((w.split("=", 1)[1] for w in words if w.startswith("--namespace=")), ns)
    res = None
    if "get" in words and words.index("get") + 1 < len(words):
        first = words[words.index("get") + 1].split(",")[0].split("/")[0]
        res = _RESOURCE.get(first)
    obj = None
    if "describe" in words and words.index("describe") + 2 < len(words):
        i = words.index("describe")
        obj = f"{words[i + 1]}/{words[i + 2]}"
    return _Prompt(res, ns, obj)


# A ``Key:`` line at the left margin (a ``describe`` field, a YAML key): it ends any
# table above it, and the command whose output that table was.
_FIELD = re.compile(r"([A-Za-z_][\w./-]*(?: [A-Z][\w-]*)*):(?:[ \t]+(.*)|$)")
# describe fields read for a Service; the later ones prove LoadBalancer Ingress was
# printed (kubectl prints it only when an address exists) rather than cut off.
_SVC_FIELDS = {"Name", "Namespace", "Type", "LoadBalancer Ingress"}
_AFTER_INGRESS = {"Port", "TargetPort", "NodePort", "Endpoints", "Events"}


def parse(text: str) -> Parsed:
    out = Parsed()
    table: tuple[str, list[str], list[int]] | None = None
    prompt = _Prompt()
    described = ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            table = None
            continue
        if m := _PROMPT.match(line):
            prompt, table = _read_prompt(m.group(2)), None
            described = prompt.describe or ""
            continue
        if m := _FIELD.match(line):
            key, value = m.group(1), (m.group(2) or "").strip()
            if key == "Name":
                _described_service(fields, out)
                described, fields = value, {}
            if key in _SVC_FIELDS | _AFTER_INGRESS:
                fields[key] = value
            table, prompt = None, _Prompt()
            continue
        if head := header_of(line):
            table = head
            continue
        if (ev := _EVENT.match(line)) and (table is None or table[0] == "events"):
            out.events.append(_event(ev, line, described, table))
            continue
        _row(line, table or _implied(prompt), prompt, out)
    _described_service(fields, out)
    out.rows = _one_row_per_service(out.rows)
    return out


def _one_row_per_service(rows: list[Row]) -> list[Row]:
    """Drop a Service shown twice (described and listed); keep its namespace."""
    kept: list[Row] = []
    for row in rows:
        same = next(
            (
                k
                for k in kept
                if row.table == k.table == "services"
                and k.name == row.name
                and None in (k.namespace, row.namespace, k.namespace == row.namespace)
            ),
            None,
        )
        if same is None:
            kept.append(row)
        elif same.namespace is None:
            same.namespace = row.namespace
    return kept


def _described_service(fields: dict[str, str], out: Parsed) -> None:
    """A ``kubectl describe svc`` of type LoadBalancer, as a services row."""
    if fields.get("Type") != "LoadBalancer" or not fields.get("Name"):
        return
    ingress = fields.get("LoadBalancer Ingress", "")
    if not ingress and not _AFTER_INGRESS & set(fields):
        return  # cut off before kubectl would have printed the address
    name, ns = fields["Name"], fields.get("Namespace") or None
    cells = {"NAME": name, "TYPE": "LoadBalancer", "EXTERNAL-IP": ingress}
    cells["EXTERNAL-IP"] = ingress.replace(" ", "") or "<pending>"
    line = f"describe service {ns or '?'}/{name}: LoadBalancer Ingress: {ingress}"
    out.rows.append(Row("services", cells, line.strip(), ns))


def _implied(prompt: _Prompt) -> tuple[str, list[str], list[int]] | None:
    cols = _DEFAULT_HEADERS.get(prompt.resource or "")
    return (prompt.resource or "", cols, []) if cols else None


def _row(
    line: str,
    table: tuple[str, list[str], list[int]] | None,
    prompt: _Prompt,
    out: Parsed,
) -> None:
    if table is None or line.lstrip().startswith(("#", "-")):
        return
    cells = _cells(line, table[1], table[2])
    if cells is None or not cells.get("NAME") and table[0] != "events":
        return
    if table[0] == "events":
        obj = cells.get("OBJECT", "")
        out.events.append(
            Event(
                cells.get("TYPE", ""),
                cells.get("REASON", ""),
                obj,
                cells.get("MESSAGE", ""),
                line,
            )
        )
        return
    out.rows.append(
        Row(table[0], cells, line.strip(), cells.get("NAMESPACE") or prompt.namespace)
    )


def _event(m: re.Match[str], line: str, described: str, table: object) -> Event:
    rest = m.group(3)
    parts = re.split(r"\s{2,}", rest.strip())
    message = parts[-1] if len(parts) > 1 else rest
    return Event(m.group(1), m.group(2), described, message, line.strip())
