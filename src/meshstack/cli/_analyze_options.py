"""The option types of `meshstack analyze`: each parses one flag's value or refuses it.

A refusal is an ``argparse.ArgumentTypeError`` naming what was expected and the value
given; argparse turns it into a usage error (exit status 4) naming the flag.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import re
from typing import Any


def tolerance(text: str) -> float:
    """0.05 or 5%: a fraction of the target rate, at least 0."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction (0.05) or a percentage (5%), got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"tolerance must be 0 or more, got {text!r}")
    return value


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def extra(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        return key.strip(), value
    return key.strip(), _finite(parsed, key.strip())


def cidr(text: str) -> str:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an address range like 198.51.100.0/24, got {text!r}"
        ) from None
    return text.strip()


def version(text: str) -> str:
    if not re.fullmatch(r"v?\d+\.\d+(\.\d+)?([-+][0-9A-Za-z.-]+)?", text.strip()):
        raise argparse.ArgumentTypeError(
            f"expected a release version like 0.14.5 or v0.13.12, got {text!r}"
        )
    return text.strip()


def _finite(value: Any, key: str) -> Any:
    """--extra's JSON values, with NaN and infinities refused: nothing compares."""
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"--extra {key}: {value} is not a finite number"
        )
    if isinstance(value, dict):
        return {k: _finite(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v, key) for v in value]
    return value
