"""Judge `linkerd stat` / `linkerd viz stat` tables (and their `-o json` form).

Tables are read by header name, never by position: widths vary, `-o wide` adds
columns, `-A` adds NAMESPACE, `stat srv` adds UNAUTHORIZED and drops MESHED, and
several resource types print several tables one after another. Values are read
by their unit suffix (`86.67%`, `2.0rps`, `1ms`, `1.2s`); `-` means no data.

A line head every line carries (a CI timestamp, `kubectl logs --prefix`, `> `
quoting, a syslog head) is removed before reading, as for `linkerd check`
(:func:`meshstack.analyzers._linkerd_check_read.strip_prefix`).

Objectives. ``Context.extra["objectives"]`` may hold bounds to judge against:
``success_rate`` (a fraction, 0.99; a number above 1 is read as a percentage)
and ``latency_p50_ms`` / ``latency_p95_ms`` / ``latency_p99_ms`` (upper bounds in
milliseconds). ``Context.extra["objective"] = {"op": ">=", "bound": 0.99}``, the
form `meshstack analyze --help` shows, is read as the success-rate bound; for a
success rate only a lower bound (``>=`` or ``>``) means anything, so another
``op`` or a missing bound is INCONCLUSIVE ``context_missing``, never ignored.
A row outside a bound is ``objective_missed``. Without a success objective, a row
below 100% is ``partial_success`` (WARN): it may be by design (emojivoto fails one
vote on purpose), and only an objective can say otherwise.

A row at 0% success while it carries requests (RPS above 0) is not partial: every
request failed, which is ``endpoint_unhealthy`` (FAIL, "an application endpoint
does not answer correctly") with or without an objective; no design fails all of
a workload's requests, and no objective can make that a pass.

A row whose MESHED count is below its pod count is ``not_meshed``; the finding is
then reported on the mesh layer, since a workload without its proxy makes every
other number in the table meaningless for the mesh.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._linkerd_check_read import unprefixed
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "linkerd-stat"
_STAT_COLUMNS = {"MESHED", "SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95"}
_NUMBER = re.compile(r"^(-?\d+(?:\.\d+)?)(%|rps|ms|µs|us|s)?$")
_MESHED = re.compile(r"^(\d+)/(\d+)$")
_PERCENTILES = ("p50", "p95", "p99")
_MAX_EVIDENCE = 24
_OBJECTIVE_KEYS = ("success_rate", *(f"latency_{p}_ms" for p in _PERCENTILES))


@dataclass
class Row:
    """One workload's line of a stat table, with its values parsed."""

    name: str
    namespace: str = ""
    meshed: tuple[int, int] | None = None
    success: float | None = None
    rps: float | None = None
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    unauthorized_rps: float | None = None
    line: str = ""
    header: str = ""

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def number(token: str) -> float | None:
    """A stat value in its base unit (fraction, rps, ms); None for `-` or junk."""
    m = _NUMBER.match(token.strip())
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2) or ""
    scale = {"%": 0.01, "s": 1000.0, "µs": 0.001, "us": 0.001}.get(unit, 1.0)
    return value * scale


# --- reading -------------------------------------------------------------------


# The 2018 CLIs named the same columns differently.
_ALIASES = {
    "SUCCESS_RATE": "SUCCESS",
    "REQUEST_RATE": "RPS",
    "P50_LATENCY": "LATENCY_P50",
    "P95_LATENCY": "LATENCY_P95",
    "P99_LATENCY": "LATENCY_P99",
}


def _header(tokens: list[str]) -> list[str] | None:
    names = [_ALIASES.get(t, t) for t in tokens]
    if "NAME" in names and len(_STAT_COLUMNS.intersection(names)) >= 2:
        return names
    return None


def _text_row(header: list[str], header_line: str, line: str) -> Row | None:
    tokens = line.split()
    if len(tokens) != len(header):
        return None
    cells = dict(zip(header, tokens, strict=True))
    meshed = _MESHED.match(cells.get("MESHED", ""))
    return Row(
        name=cells["NAME"],
        namespace=cells.get("NAMESPACE", ""),
        meshed=(int(meshed.group(1)), int(meshed.group(2))) if meshed else None,
        success=number(cells.get("SUCCESS", "-")),
        rps=number(cells.get("RPS", "-")),
        latency_ms={
            p: number(cells.get(f"LATENCY_{p.upper()}", "-")) for p in _PERCENTILES
        },
        unauthorized_rps=number(cells.get("UNAUTHORIZED", "-")),
        line=line.rstrip(),
        header=header_line,
    )


def _read_text(text: str) -> tuple[list[Row], list[str]]:
    """Rows of every table in the text, and the lines inside a table not read."""
    rows: list[Row] = []
    unread: list[str] = []
    header: list[str] | None = None
    header_line = ""
    for line in text.splitlines():
        tokens = line.split()
        if _header(tokens):
            header, header_line = _header(tokens), line.rstrip()
        elif not tokens or line.startswith(("$", "==>")):
            header = None
        elif header is not None:
            row = _text_row(header, header_line, line)
            if row is None:
                unread.append(line.rstrip())
            else:
                rows.append(row)
    return rows, unread


def _json_row(item: Mapping[str, Any]) -> Row:
    meshed = _MESHED.match(str(item.get("meshed", "")))

    def num(key: str) -> float | None:
        value = item.get(key)
        return float(value) if isinstance(value, int | float) else None

    return Row(
        name=str(item.get("name", "")),
        namespace=str(item.get("namespace", "")),
        meshed=(int(meshed.group(1)), int(meshed.group(2))) if meshed else None,
        success=num("success"),
        rps=num("rps"),
        latency_ms={p: num(f"latency_ms_{p}") for p in _PERCENTILES},
        unauthorized_rps=num("unauthorized"),
        line=json.dumps(dict(item), sort_keys=True),
    )


def _read_json(text: str) -> list[Row] | None:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, list):
        return None
    items = [i for i in doc if isinstance(i, dict) and "name" in i]
    if not items or not all("latency_ms_p50" in i or "success" in i for i in items):
        return None
    return [_json_row(i) for i in items]


def read(text: str) -> tuple[list[Row], list[str]]:
    """Every stat row in the artifact, and table lines that could not be read."""
    stripped = text.strip()
    if stripped.startswith("["):
        rows = _read_json(stripped)
        if rows is not None:
            return rows, []
    return _read_text(text)


def detect(evidence: Evidence) -> float:
    evidence = unprefixed(evidence)
    text = evidence.text[:200_000]
    if text.strip().startswith("[") and _read_json(text.strip()):
        return 0.9
    rows, _ = _read_text(text)
    if rows:
        return 0.95
    if text.strip() == "No traffic found.":
        return 0.6
    return 0.0


# --- judging -------------------------------------------------------------------


def judge(evidence: Evidence, ctx: Context) -> Finding:
    evidence = unprefixed(evidence)
    try:
        rows, unread = read(evidence.text)
    except Exception:  # a judge must never raise; say what happened instead
        log.exception("[%s] could not read the stat table", evidence.name)
        return unrecognised(evidence, expected=NAME)
    if not rows:
        return _no_rows(evidence)
    f = Finding(layer="apps", kind=NAME)
    objectives = _objectives(ctx, f)
    _judge_meshed(rows, f)
    _judge_success(rows, f, objectives)
    _judge_latency(rows, f, objectives)
    _note_quiet_rows(rows, f)
    if unread:
        f.hint(f"{len(unread)} table line(s) did not match their header: {unread[0]!r}")
    if "not_meshed" in f.reasons:
        f.layer = "mesh"
    return f


def _no_rows(evidence: Evidence) -> Finding:
    if evidence.text.strip() != "No traffic found.":
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="apps", kind=NAME, evidence=["No traffic found."])
    f.add("no_data", "no traffic reached the workloads in the stat window")
    return f


# TODO: objectives apply to every row alike; a per-workload bound (the web demo at
# 99%, emojivoto's voting judged on its own routes) needs route-level evidence
# this table does not carry, so such rows can only be judged by the caller.
def _objectives(ctx: Context, f: Finding) -> dict[str, float]:
    raw = ctx.extra.get("objectives") or {}
    out: dict[str, float] = {}
    if not isinstance(raw, Mapping):
        f.hint(f"Context.extra['objectives'] should be a mapping, got {raw!r}: ignored")
        raw = {}
    for key, value in raw.items():
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and key in _OBJECTIVE_KEYS:
            out[str(key)] = float(value)
        else:
            f.hint(
                f"objectives: {key}={value!r} ignored (expected a number for one of "
                f"{', '.join(_OBJECTIVE_KEYS)})"
            )
    if "objective" in ctx.extra:
        _single_objective(ctx.extra["objective"], f, out)
    if out.get("success_rate", 0.0) > 1.0:
        out["success_rate"] /= 100.0
    return out


def _single_objective(obj: object, f: Finding, out: dict[str, float]) -> None:
    """Read ``objective={"op": ">=", "bound": 0.99}`` as the success-rate bound."""
    bound = obj.get("bound") if isinstance(obj, Mapping) else None
    op = obj.get("op") if isinstance(obj, Mapping) else None
    numeric = isinstance(bound, int | float) and not isinstance(bound, bool)
    if op in (">=", ">") and numeric:
        out["success_rate"] = float(bound)  # type: ignore[arg-type]
        out["success_strict"] = 1.0 if op == ">" else 0.0
        return
    f.add(
        "context_missing",
        f"objective {obj!r} cannot bound a success rate: expected "
        '{"op": ">=", "bound": 0.99} (op >= or >, bound a fraction or a percentage)',
    )


def _cite(f: Finding, row: Row) -> None:
    if len(f.evidence) >= _MAX_EVIDENCE:
        return
    if row.header and row.header not in f.evidence:
        f.evidence.append(row.header)
    if row.line not in f.evidence:
        f.evidence.append(row.line)


def _judge_meshed(rows: list[Row], f: Finding) -> None:
    for row in rows:
        if row.meshed is None:
            continue
        meshed, pods = row.meshed
        if pods == 0:
            f.hint(f"{row.label}: no running pods (MESHED 0/0)")
        elif meshed < pods:
            f.details.setdefault("not_meshed", []).append(
                {"name": row.label, "meshed": f"{meshed}/{pods}"}
            )
            _cite(f, row)
            f.add("not_meshed", _NOT_MESHED_HINT)


_NOT_MESHED_HINT = (
    "pods without the proxy: annotate the namespace or pod template with "
    "linkerd.io/inject=enabled, then `kubectl rollout restart` the workload"
)


def _judge_success(rows: list[Row], f: Finding, objectives: dict[str, float]) -> None:
    dead = _judge_total_failure(rows, f)
    objective = objectives.get("success_rate")
    strict = bool(objectives.get("success_strict"))
    bound = 1.0 if objective is None else objective
    low = [
        r
        for r in rows
        if r.success is not None
        and (r.success < bound or (strict and r.success <= bound))
        and (objective is not None or r not in dead)
    ]
    if not low:
        return
    cited = [{"name": r.label, "success": round(r.success or 0.0, 4)} for r in low]
    for row in low:
        _cite(f, row)
    names = _names(low)
    if objective is None:
        f.details["partial_success"] = cited
        f.add(
            "partial_success",
            f"success below 100% with no usable objective given: {names}",
        )
    else:
        f.details["success_missed"] = cited
        f.details["success_objective"] = objective
        f.add("objective_missed", f"success below {objective:.2%}: {names}")


def _judge_total_failure(rows: list[Row], f: Finding) -> list[Row]:
    """Rows whose every request failed while requests flowed: endpoint_unhealthy."""
    dead = [r for r in rows if r.success == 0.0 and (r.rps or 0.0) > 0.0]
    for row in dead:
        _cite(f, row)
        f.details.setdefault("no_success", []).append(
            {"name": row.label, "rps": row.rps}
        )
    if dead:
        f.add(
            "endpoint_unhealthy",
            f"0% success with traffic flowing: {_names(dead)}; see the workload's "
            "logs and `linkerd viz tap` for the responses it sends",
        )
    return dead


def _names(rows: list[Row], limit: int = 8) -> str:
    names = ", ".join(r.label for r in rows[:limit])
    return names + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _judge_latency(rows: list[Row], f: Finding, objectives: dict[str, float]) -> None:
    for p in _PERCENTILES:
        bound = objectives.get(f"latency_{p}_ms")
        if bound is None:
            continue
        slow = [r for r in rows if (r.latency_ms.get(p) or 0.0) > bound]
        for row in slow:
            f.details.setdefault("latency_missed", []).append(
                {"name": row.label, "percentile": p, "ms": row.latency_ms[p]}
            )
            _cite(f, row)
            f.add("objective_missed", f"latency {p} above {bound:g} ms: {row.label}")


def _note_quiet_rows(rows: list[Row], f: Finding) -> None:
    quiet = [r for r in rows if r.success is None]
    if quiet:
        f.details["no_data"] = [r.label for r in quiet]
        f.hint(f"no requests seen (no inbound traffic) for: {_names(quiet)}")
    if len(quiet) == len(rows) and not f.reasons:
        for row in rows:
            _cite(f, row)
        f.add("no_data", "no row of the table carries any request data")
    for row in rows:
        if row.unauthorized_rps:
            f.hint(f"{row.label}: {row.unauthorized_rps:g} rps refused as unauthorized")


KIND = register(
    Kind(
        name=NAME,
        layer="apps",
        summary="`linkerd stat` / `linkerd viz stat` tables (text or -o json)",
        detect=detect,
        judge=judge,
    )
)
