"""Label and field selectors in the API server's string syntax.

Labels: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``
(exists) and ``!a`` (does not exist), comma-separated, all must hold. Fields:
``path=value``, ``path==value``, ``path!=value`` on any dotted path
(``metadata.name``, ``spec.nodeName``, ``status.phase`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from meshstack.twin.kube.errors import bad_request

Matcher = Callable[[dict[str, str]], bool]

_SET = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of a set term."""
    terms, depth, buf = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(buf)
            buf = ""
        else:
            buf += ch
    terms.append(buf)
    return [t for t in terms if t.strip()]


def _term(term: str) -> Matcher:
    m = _EQ.match(term)
    if m:
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    m = _SET.match(term)
    if not m:
        raise bad_request(f"unable to parse requirement: {term!r}")
    neg, key, op, values = m.groups()
    if op:
        wanted = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in wanted
        return lambda labels: labels.get(key) not in wanted
    if neg:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_matcher(text: str | None) -> Matcher:
    """A predicate over a label dict; an empty selector matches everything."""
    terms = [_term(t) for t in _split_terms(text or "")]
    return lambda labels: all(t(labels) for t in terms)


def selector_from_dict(sel: dict[str, Any] | None) -> Matcher | None:
    """A LabelSelector object (matchLabels, matchExpressions) as a predicate.

    ``None`` for a missing selector (which selects nothing on a Service).
    """
    if sel is None:
        return None
    terms: list[Matcher] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        terms.append(_equals(k, v))
    for expr in sel.get("matchExpressions") or []:
        terms.append(_expression(expr))
    return lambda labels: all(t(labels) for t in terms)


def _expression(expr: dict[str, Any]) -> Matcher:
    key, op = expr["key"], expr["operator"]
    values = set(expr.get("values") or [])
    ops: dict[str, Matcher] = {
        "In": lambda labels: labels.get(key) in values,
        "NotIn": lambda labels: labels.get(key) not in values,
        "Exists": lambda labels: key in labels,
        "DoesNotExist": lambda labels: key not in labels,
    }
    if op not in ops:
        raise bad_request(f"{op!r} is not a valid label selector operator")
    return ops[op]


def field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def field_matcher(text: str | None) -> Callable[[dict[str, Any]], bool]:
    terms: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split_terms(text or ""):
        m = _EQ.match(term)
        if not m:
            raise bad_request(f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        terms.append(_field_term(path, value, op == "!="))
    return lambda obj: all(t(obj) for t in terms)


def _equals(key: str, value: str) -> Matcher:
    return lambda labels: labels.get(key) == value


def _field_term(
    path: str, value: str, negate: bool
) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: (field_value(obj, path) == value) != negate
