"""A Prometheus HTTP API query response: did the objective hold over the window?

The input is the JSON body of ``/api/v1/query`` or ``/api/v1/query_range``:
``{"status": "success", "data": {"resultType": "vector" | "matrix" | "scalar" |
"string", "result": ...}}`` or ``{"status": "error", "errorType": ..., "error": ...}``.

Judged:

* no series, no samples, or NaN samples (a ratio of zero over zero: no traffic) give
  INCONCLUSIVE ``no_data``; an empty answer is never a pass;
* an error answer gives INCONCLUSIVE ``no_data`` too, with ``details.error_type``.
  For ``bad_data`` (Prometheus could not parse or run the query) the fault is the
  harness's own query, which the vocabulary has no HARNESS-ERROR code for; no_data
  is the honest "nothing to judge", and the hint says the query must be fixed.
  # TODO: a HARNESS-ERROR code for a query Prometheus rejects (say
  # ``query_rejected``) would report bad_data as the harness's fault; until the
  # vocabulary has one, such a run is INCONCLUSIVE, which still never passes.
* ``Context.extra["objective"] = {"op": ">=", "bound": 0.99}``: every sample of every
  series must satisfy it, else FAIL ``objective_missed``; without an objective,
  present values are a PASS with the values in ``details``;
* ``Context.extra["window"]`` and ``["scrape_interval"]`` (seconds, or durations like
  ``"1m"``): a window under four scrape intervals is HARNESS-ERROR
  ``window_too_short``, because ``rate()`` over it is missing or noise.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.verdicts import Finding

NAME = "prometheus-response"
_MAX_VALUES = 20

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "y": 31536000,
}


@dataclass
class Series:
    labels: str
    raw: list[str] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        out = []
        for text in self.raw:
            try:
                out.append(float(text))
            except ValueError:
                out.append(math.nan)
        return out


def detect(evidence: Evidence) -> float:
    head = evidence.text[:65536]
    if not re.search(r'"status"\s*:\s*"(success|error)"', head):
        return 0.0
    if not re.search(r'"(resultType|errorType)"\s*:', head):
        return 0.0
    return 0.95 if _load(evidence.text) is not None else 0.6


def _load(text: str) -> dict[str, Any] | None:
    """The answer as a mapping, if the text is a whole Prometheus API answer."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        return None
    data = doc.get("data")
    if "errorType" in doc or (isinstance(data, dict) and "resultType" in data):
        return doc
    return None


def _labels(metric: object) -> str:
    if not isinstance(metric, dict) or not metric:
        return "{}"
    name = str(metric.get("__name__", ""))
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__")
    return f"{name}{{{rest}}}"


def _sample_value(pair: object) -> str | None:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        return str(pair[1])
    return None


def _series(data: dict[str, Any]) -> list[Series]:
    """Every series of the result with its sample values as Prometheus wrote them."""
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string"):
        value = _sample_value(result)
        return [Series(kind, [value])] if value is not None else []
    if not isinstance(result, list):
        return []
    out = []
    for item in result:
        if not isinstance(item, dict):
            continue
        s = Series(_labels(item.get("metric")))
        pairs = item.get("values") if kind == "matrix" else [item.get("value")]
        for pair in pairs if isinstance(pairs, list) else []:
            value = _sample_value(pair)
            if value is not None:
                s.raw.append(value)
        out.append(s)
    return out


def seconds(value: object) -> float | None:
    """Seconds from a number or a Prometheus duration ("30s", "1m30s"); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) and value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return seconds(float(text))
    except ValueError:
        pass
    parts = list(_DURATION.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        return None
    total = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    return total if total > 0 else None


def _judge_window(f: Finding, extra: dict[str, object]) -> None:
    if "window" not in extra or "scrape_interval" not in extra:
        return
    window, scrape = seconds(extra["window"]), seconds(extra["scrape_interval"])
    if window is None or scrape is None:
        f.hint("the window or scrape interval given could not be read as a duration")
        return
    f.details.update(window_seconds=window, scrape_interval_seconds=scrape)
    if window < 4 * scrape:
        f.add(
            "window_too_short",
            f"the rate window ({window:g} s) is under four scrape intervals "
            f"({4 * scrape:g} s): widen the window in the query or the profile",
        )


def _judge_error(f: Finding, doc: dict[str, Any]) -> None:
    error_type = str(doc.get("errorType", ""))
    error = str(doc.get("error", ""))
    f.details.update(error_type=error_type, error=error[:500])
    f.evidence.append(f"{error_type}: {error}"[:500])
    if error_type == "bad_data":
        hint = (
            f"Prometheus rejected the query ({error[:200]}): the harness's query "
            "is at fault; fix it in the profile or the SLO definition"
        )
    else:
        hint = f"Prometheus could not answer ({error_type}): retry, or check its load"
    f.add("no_data", hint)


def _objective(extra: dict[str, object]) -> tuple[str, float] | None | str:
    """(op, bound) from the context, None when absent, a message when unusable."""
    obj = extra.get("objective")
    if obj is None:
        return None
    if not isinstance(obj, dict):
        return f"objective {obj!r} is not a mapping with op and bound"
    op, bound = obj.get("op"), obj.get("bound")
    if op not in _OPS or isinstance(bound, bool) or not isinstance(bound, int | float):
        return f"objective {obj!r} needs op in {sorted(_OPS)} and a numeric bound"
    return str(op), float(bound)


def _judge_values(f: Finding, series: list[Series], extra: dict[str, object]) -> None:
    numeric = [(s, v) for s in series for v in s.values if not math.isnan(v)]
    if len(numeric) < sum(len(s.raw) for s in series):
        f.add("no_data", "some samples are NaN (no traffic in the window): not a pass")
    if not numeric:
        f.add("no_data", "no numeric sample to judge")
        return
    objective = _objective(extra)
    if isinstance(objective, str):
        f.add("context_missing", objective)
    elif objective is None:
        f.hint("no objective given: values recorded, nothing judged against a bound")
    else:
        _judge_objective(f, numeric, *objective)


def _judge_objective(
    f: Finding, numeric: list[tuple[Series, float]], op: str, bound: float
) -> None:
    """FAIL objective_missed for every sample outside the bound."""
    f.details["objective"] = {"op": op, "bound": bound}
    missed = [(s, v) for s, v in numeric if not _OPS[op](v, bound)]
    if missed:
        f.details["violations"] = len(missed)
        f.evidence.extend(f"{s.labels} = {v!r}" for s, v in missed[:_MAX_VALUES])
        f.add(
            "objective_missed",
            f"{len(missed)} of {len(numeric)} samples miss the objective "
            f"value {op} {bound:g}",
        )


def _value_details(series: list[Series]) -> dict[str, Any]:
    finite = [v for s in series for v in s.values if math.isfinite(v)]
    out: dict[str, Any] = {
        "series": len(series),
        "samples": sum(len(s.raw) for s in series),
        "values": [
            {"metric": s.labels, "values": s.raw[:_MAX_VALUES]}
            for s in series[:_MAX_VALUES]
        ],
    }
    if finite:
        out.update(min=min(finite), max=max(finite))
    return out


def judge(evidence: Evidence, ctx: Context) -> Finding:
    doc = _load(evidence.text)
    if doc is None:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="slo", kind=NAME)
    warnings = doc.get("warnings")
    for warning in warnings if isinstance(warnings, list) else []:
        f.hint(f"Prometheus warned: {warning}")
    _judge_window(f, ctx.extra)
    if doc.get("status") != "success":
        _judge_error(f, doc)
        return f
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    series = _series(data or {})
    f.details["result_type"] = str((data or {}).get("resultType", ""))
    f.details.update(_value_details(series))
    if not series or not any(s.raw for s in series):
        f.add("no_data", "the query matched no series: check the selector and window")
        return f
    _judge_values(f, series, ctx.extra)
    return f


register(
    Kind(
        name=NAME,
        layer="slo",
        summary="Prometheus HTTP API query response: no data, objective, window",
        detect=detect,
        judge=judge,
    )
)
