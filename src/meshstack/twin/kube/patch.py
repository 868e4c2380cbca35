"""The three patch types the API server accepts, over plain JSON objects.

Strategic merge is a JSON merge patch in which lists of objects that all carry a
``name`` are merged item by item on that name (containers, env, ports, volumes):
the list types the stack's manifests and controllers patch.
# TODO: no other patchMergeKey (containerPort, ip), no $patch/$retainKeys
# directives; such patches replace the list as a merge patch would.
"""

from __future__ import annotations

import copy
from typing import Any

from meshstack.twin.kube.errors import ApiError, bad_request


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    if not isinstance(patch, dict):
        if strategic and isinstance(patch, list) and isinstance(target, list):
            return _merge_named_lists(target, patch)
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value, strategic)
    return out


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge_named_lists(target: list[Any], patch: list[Any]) -> list[Any]:
    if not (_named(patch) and _named(target)):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target)
    index = {item["name"]: i for i, item in enumerate(out)}
    for item in patch:
        if item.get("$patch") == "delete":
            out = [o for o in out if o["name"] != item["name"]]
            index = {o["name"]: i for i, o in enumerate(out)}
        elif item["name"] in index:
            pos = index[item["name"]]
            out[pos] = merge_patch(out[pos], item, True)
        else:
            index[item["name"]] = len(out)
            out.append(copy.deepcopy(item))
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def _get(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _parent(doc, parts), parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/remove/replace/move/copy/test; 422 when an op cannot apply."""
    doc = copy.deepcopy(target)
    for op in ops:
        try:
            doc = _apply_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                "Invalid",
                f"the server rejected our request due to an error in "
                f"our request: json patch {op.get('op')} {op.get('path')}: {exc}",
            ) from None
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, parts = op["op"], _pointer(op["path"])
    if kind == "add":
        return _add(doc, parts, copy.deepcopy(op["value"]))
    if kind == "remove":
        return _remove(doc, parts)
    if kind == "replace":
        _get(doc, parts)
        return (
            _add(_remove(doc, parts), parts, copy.deepcopy(op["value"]))
            if parts
            else copy.deepcopy(op["value"])
        )
    if kind in ("move", "copy"):
        src = _pointer(op["from"])
        value = copy.deepcopy(_get(doc, src))
        if kind == "move":
            doc = _remove(doc, src)
        return _add(doc, parts, value)
    if kind == "test":
        if _get(doc, parts) != op["value"]:
            raise ValueError("test failed")
        return doc
    raise ValueError(f"unknown op {kind!r}")
