"""A small schema checker for the YAML the harness reads: stack and load profiles.

A spec is a mapping (see :func:`check`); providers export theirs as
``SETTINGS_SCHEMA``. Problems are collected, never raised, so a file's every
problem can be reported at once: each message is ``key.path: expected ...,
found ...`` and, where there is one, what to do.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
from collections.abc import Mapping
from typing import Any

Spec = Mapping[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "seconds": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
    "cidr": (str,),
    "secret": (dict,),
    "any": (object,),
}


def describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: Any, spec: Spec, where: str, errors: list[str]) -> Any:
    """Validate ``value`` against ``spec``; append messages; return it with defaults.

    A spec is ``{"type": ..., "required": bool, "default": v, "items": spec,
    "keys": {name: spec}, "values": spec, "choices": [...], "min": n, "above": n,
    "max": n, "min_len": n, "note": text}``. ``keys`` on a dict also rejects unknown
    keys (naming the nearest known one, and ``note`` if given) unless ``"open":
    True``; ``values`` checks every value of a mapping whose keys are free. Numbers
    must be finite and are ``>= min`` (0 unless ``min`` or ``above`` is given).
    """
    kind = spec.get("type", "any")
    if kind not in _TYPES:
        raise ValueError(f"schema at {where} has unknown type {kind!r}")
    if isinstance(value, bool) and kind in ("int", "float", "seconds"):
        errors.append(f"{where}: expected {kind}, found {describe(value)}")
        return value
    if not isinstance(value, _TYPES[kind]):
        errors.append(f"{where}: expected {kind}, found {describe(value)}")
        return value
    return _check_value(value, kind, spec, where, errors)


def _check_value(
    value: Any, kind: str, spec: Spec, where: str, errors: list[str]
) -> Any:
    if "choices" in spec and value not in spec["choices"]:
        errors.append(
            f"{where}: expected one of {', '.join(map(str, spec['choices']))}, "
            f"found {describe(value)}"
        )
    if kind in ("int", "float", "seconds"):
        _check_number(value, spec, where, errors)
    if kind in ("list", "dict") and len(value) < spec.get("min_len", 0):
        errors.append(f"{where}: expected a non-empty {kind}, found {describe(value)}")
    if kind == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            errors.append(
                f"{where}: expected a CIDR like 198.51.100.0/24, found {value!r}"
            )
    if kind == "secret" and set(value) not in ({"env"}, {"file"}):
        expected = "{env: NAME} or {file: PATH}"
        errors.append(f"{where}: expected {expected}, found {describe(value)}")
    if kind == "list" and "items" in spec:
        return [
            check(v, spec["items"], f"{where}[{i}]", errors)
            for i, v in enumerate(value)
        ]
    if kind == "dict" and "keys" in spec:
        return _check_keys(value, spec, where, errors)
    if kind == "dict" and "values" in spec:
        return _check_mapping(value, spec["values"], where, errors)
    return value


def _check_number(value: float, spec: Spec, where: str, errors: list[str]) -> None:
    """Finite, and ``>= min`` (0 unless ``min`` or ``above`` is given), ``> above``
    and ``<= max`` when given; ``note`` says what the number means."""
    note = f" ({spec['note']})" if "note" in spec else ""
    least = spec.get("min", None if "above" in spec else 0)
    if not math.isfinite(value):
        errors.append(
            f"{where}: expected a finite number, found {value!r} (YAML's .nan and "
            ".inf are not numbers a profile can use); write a number"
        )
    elif least is not None and value < least:
        errors.append(f"{where}: expected >= {least}, found {value}{note}")
    elif "above" in spec and value <= spec["above"]:
        errors.append(f"{where}: expected > {spec['above']}, found {value}{note}")
    elif "max" in spec and value > spec["max"]:
        errors.append(f"{where}: expected <= {spec['max']}, found {value}{note}")


def _check_mapping(
    value: dict[Any, Any], values: Spec, where: str, errors: list[str]
) -> dict[Any, Any]:
    """A mapping of str keys, each value checked against ``values``."""
    for key in value:
        if not isinstance(key, str):
            errors.append(
                f"{where}: expected str keys, found {describe(key)}; quote the key"
            )
    return {k: check(v, values, _join(where, str(k)), errors) for k, v in value.items()}


def _check_keys(
    value: dict[str, Any], spec: Spec, where: str, errors: list[str]
) -> dict[str, Any]:
    keys: Mapping[str, Spec] = spec["keys"]
    out = dict(value)
    for name, sub in keys.items():
        path = _join(where, name)
        if name in value:
            out[name] = check(value[name], sub, path, errors)
        elif sub.get("required"):
            errors.append(f"{path}: required {sub.get('type', 'value')} is missing")
        elif "default" in sub:
            out[name] = sub["default"]
    if not spec.get("open"):
        for name in value:
            if name not in keys:
                errors.append(_unknown_key(_join(where, str(name)), str(name), spec))
    return out


def _unknown_key(path: str, name: str, spec: Spec) -> str:
    """The message for a key the schema does not know, with the likeliest fix."""
    known = sorted(spec["keys"])
    near = difflib.get_close_matches(name, known, n=1)
    fix = f"did you mean {near[0]}? " if near else ""
    note = f" ({spec['note']})" if "note" in spec else ""
    return (
        f"{path}: unknown key; {fix}known keys: {', '.join(known)}{note}; "
        "fix its spelling or remove it"
    )


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name
