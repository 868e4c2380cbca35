"""What a load profile may say: its schema and the checks across its fields.

A load profile (``loadprofiles/*.yaml``) sets one Locust run: the rate and users,
duration, ramp and steady window, the minimum sample, the rate tolerance and the
objectives the SLO layer judges over that window. :func:`check_load_profile` is the
one validator, used by the profile loader and by the load provider alike.
"""

from __future__ import annotations

from typing import Any

from meshstack.schema import Spec, check
from meshstack.schema import describe as _describe

# Seconds a load window's measured length can be off: Locust's history rows carry
# whole seconds, and each end of the window can be off by one. A profile's steady
# window times its tolerance must be at least this, or the rate cannot be judged.
RESOLUTION_SECONDS = 2

_SHARE: Spec = {"type": "float", "min": 0, "max": 1, "note": "a share: 0.99 is 99%"}
_TEXT: Spec = {"type": "str", "required": True}

# The quantiles the SLO layer judges (slo_prometheus.checks_for): a bound for any
# other would never be checked, so it is refused.
LATENCY_QUANTILES = ("p95", "p99")

SLO_SPEC: Spec = {
    "type": "dict",
    "required": True,
    "keys": {
        "selector": {
            "type": "dict", "required": True, "min_len": 1, "values": {"type": "str"},
        },
        "success_rate": _SHARE,
        "latency_ms": {
            "type": "dict",
            "keys": {q: {"type": "float", "above": 0} for q in LATENCY_QUANTILES},
            "note": "the SLO layer judges these quantiles only",
        },
        "declared_failures": {
            "type": "list",
            "items": {
                "type": "dict",
                "keys": {
                    "name": _TEXT, "label": _TEXT, "value": _TEXT,
                    "locust_name": {"type": "str"},
                    "failure_rate": {**_SHARE, "default": 1.0},
                },
            },
        },
    },
}  # fmt: skip

LOAD_SPEC: Spec = {
    "type": "dict",
    "keys": {
        "name": _TEXT,
        "locustfile": {"type": "path", "required": True},
        "app": _TEXT,
        "rate": {"type": "float", "required": True, "min": 0.001},
        "users": {"type": "int", "required": True, "min": 1},
        "duration": {"type": "seconds", "required": True, "min": 1},
        "ramp": {"type": "seconds", "default": 0},
        "steady": {"type": "seconds", "above": 0},
        "min_sample": {"type": "int", "default": 100, "min": 1},
        "tolerance": {**_SHARE, "default": 0.05, "above": 0},
        "locust_args": {"type": "list", "default": [], "items": {"type": "str"}},
        "slo": SLO_SPEC,
    },
}


def check_load_profile(data: Any) -> tuple[Any, list[str]]:
    """A load profile with its defaults (``steady``: what ``ramp`` leaves of
    ``duration``) and every problem found, each as ``key.path: message``."""
    if not isinstance(data, dict):
        return data, [f"expected a mapping of settings, found {_describe(data)}"]
    errors: list[str] = []
    data = check(data, LOAD_SPEC, "", errors)
    unsound = {e.split(":")[0] for e in errors}
    # Each cross-field check needs the fields it reads to be sound numbers.
    if unsound & {"duration", "ramp", "steady"}:
        return data, errors
    data.setdefault("steady", data["duration"] - data["ramp"])
    errors.extend(_fit_problems(data))
    if data["steady"] > 0 and not unsound & {"tolerance", "rate", "min_sample"}:
        errors.extend(_resolution_problems(data))
    return data, errors


def _fit_problems(p: dict[str, Any]) -> list[str]:
    """Whether the steady window fits in the run after the ramp."""
    duration, ramp, steady = p["duration"], p["ramp"], p["steady"]
    if steady <= 0:
        return [
            f"ramp: {ramp} s leaves no steady window in duration ({duration} s); "
            "shorten ramp or lengthen duration"
        ]
    if ramp + steady > duration:
        return [
            f"steady: ramp ({ramp} s) + steady ({steady} s) is longer than duration "
            f"({duration} s); lengthen duration to {ramp + steady} s or shorten steady"
        ]
    return []


def _resolution_problems(p: dict[str, Any]) -> list[str]:
    """Whether the window can judge the rate and hold the sample the profile sets."""
    steady, tolerance, out = p["steady"], p["tolerance"], []
    if steady * tolerance < RESOLUTION_SECONDS:
        out.append(
            f"steady: {steady} s cannot resolve a tolerance of {tolerance:.0%}: "
            "Locust stamps its history in whole seconds, so each end of the window "
            f"can be off by one; make steady x tolerance >= {RESOLUTION_SECONDS} "
            "(e.g. 40 s at 5%)"
        )
    most = p["rate"] * steady * (1 + tolerance)
    if p["min_sample"] > most:
        out.append(
            f"min_sample: {p['min_sample']} requests is more than the window can "
            f"hold within tolerance ({most:.0f} at {p['rate']} rps over {steady} s); "
            "lower min_sample or lengthen steady"
        )
    return out
