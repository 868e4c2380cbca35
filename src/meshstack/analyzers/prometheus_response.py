"""A Prometheus HTTP API query response: did the objective hold over the window?

The input is the JSON body of ``/api/v1/query`` or ``/api/v1/query_range``:
``{"status": "success", "data": {"resultType": "vector" | "matrix" | "scalar" |
"string", "result": ...}}`` or ``{"status": "error", "errorType": ..., "error": ...}``.

Judged:

* no series, no samples, or NaN samples (a ratio of zero over zero: no traffic) give
  INCONCLUSIVE ``no_data``; an empty answer is never a pass;
* an error answer of type ``bad_data`` (Prometheus could not parse or run the query)
  is HARNESS-ERROR ``query_rejected``: the harness's own query is at fault, not the
  stack. Other error types (timeout, canceled, execution, unavailable ...) are
  INCONCLUSIVE ``no_data``: Prometheus could not answer this time. Both carry
  ``details.error_type``;
* ``Context.extra["objective"] = {"op": ">=", "bound": 0.99}``: every sample of every
  series must satisfy it, else FAIL ``objective_missed``. Without an objective,
  present values are INCONCLUSIVE ``context_missing`` (nothing was judged, so never
  a pass, even for a value of 0), with the values in ``details`` and a hint naming
  ``--extra objective=...``; unless ``Context.extra["values_only"]`` is true: a
  caller that judges the values itself (the SLO layer's reconciliation of proxy and
  Locust counts) asks only for them, and present values are then a PASS. An
  objective that cannot be used (not a mapping, an unknown op, a bound that is not
  a finite number: NaN compares false with everything, so ``value <= NaN`` would
  fail every sample and ``value != NaN`` pass every one) is HARNESS-ERROR
  ``objective_invalid``: the harness's input is at fault;
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
# One part of a duration ("1m" of "1m30s"). Every part ends in a unit, so a run of
# digits cannot be split two ways: matching is linear even on a megabyte of digits.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_MAX_DURATION_CHARS = 64  # "1y2w3d4h5m6s7ms" is 15; anything longer is not one
_DURATIONS = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")
_OBJECTIVE_HINT = (
    'give the objective to judge against: --extra objective=\'{"op": ">=", '
    '"bound": 0.99}\' (op one of >=, >, <=, <, ==, !=)'
)
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
            except (ValueError, RecursionError):
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
    except (ValueError, RecursionError):
        pass
    if len(text) > _MAX_DURATION_CHARS or _DURATIONS.fullmatch(text) is None:
        return None
    parts = _DURATION.finditer(text)
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
        f.add(
            "query_rejected",
            f"Prometheus rejected the query ({error[:200]}): the harness's query is "
            "at fault, not the stack; fix it in the profile or the SLO definition",
        )
        return
    f.add(
        "no_data",
        f"Prometheus could not answer ({error_type}): retry, or check its load",
    )


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
    if not math.isfinite(bound):
        return f"objective {obj!r} has a bound that is not a finite number"
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
        f.add(
            "objective_invalid",
            f"{objective}: nothing can be judged against it; fix the SLO "
            "definition in the profile (or --extra objective=...)",
        )
    elif objective is None and extra.get("values_only") is True:
        f.hint("values only, as asked: the caller judges them")
    elif objective is None:
        f.add(
            "context_missing",
            "no objective given: the values are recorded in details, nothing was "
            f"judged; {_OBJECTIVE_HINT}",
        )
    else:
        _judge_objective(f, numeric, *objective)


def _judge_objective(
    f: Finding, numeric: list[tuple[Series, float]], op: str, bound: float
) -> None:
    """FAIL objective_missed for every sample outside the bound.

    An infinite sample that would meet the bound (+Inf against a lower bound, -Inf
    against an upper one) is a ratio over zero traffic, not a good value: it is
    judged no data. One that misses the bound (histogram_quantile's +Inf, a latency
    beyond the largest bucket, against an upper bound) is a miss like any other.
    """
    f.details["objective"] = {"op": op, "bound": bound}
    hollow = [(s, v) for s, v in numeric if math.isinf(v) and _OPS[op](v, bound)]
    if hollow:
        f.evidence.extend(f"{s.labels} = {v!r}" for s, v in hollow[:_MAX_VALUES])
        f.add(
            "no_data",
            f"{len(hollow)} sample(s) are infinite (a ratio over zero requests?): "
            f"an infinite value cannot show {op} {bound:g}; not a pass",
        )
        numeric = [(s, v) for s, v in numeric if (s, v) not in hollow]
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
