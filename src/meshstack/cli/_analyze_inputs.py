"""The inputs of `meshstack analyze`: files, directories, standard input, bundles.

A directory is walked in name order and each file in it is one input, except a
directory of a directory kind (judged whole) and a live run's evidence bundle (its
manifest names each artifact with the kind and context it was judged in). An input
that cannot be read becomes one carrying the reason, so the others are still judged.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshstack import analyzers, bundle
from meshstack.analyzers import Context, Evidence, decode


@dataclass
class Input:
    name: str
    evidence: Evidence
    error: str | None = None
    # Set for the members of a live run's evidence bundle: judged as recorded.
    kind: str | None = None
    ctx: Context | None = None


def _file(path: Path, name: str, explicit: bool = False) -> Input:
    """A file as evidence; a special file or one that cannot be read says so.

    A pipe or device named on the command line (``<(cmd)``, ``/dev/stdin``) is read;
    one met while walking a directory is not, since reading it could block forever.
    """
    special = path.exists() and not path.is_file() and not path.is_dir()
    if not path.exists() or (special and not explicit):
        what = "a broken link" if path.is_symlink() else "not a regular file"
        return Input(
            name, Evidence(text="", name=name), f"{what}; give a readable file"
        )
    try:
        if special:
            return Input(name, Evidence(text=decode(path.read_bytes()), name=name))
        return Input(name, Evidence.from_path(path, name=name))
    except OSError as exc:
        return Input(name, Evidence(text="", name=name), f"cannot be read: {exc}")


def _is_directory_kind(path: Path, kind: str | None) -> bool:
    """Whether a directory is judged whole: named so, or detected as one."""
    if kind is not None:
        return analyzers.get(kind).directory
    found = analyzers.detect(Evidence.from_path(path), threshold=0.9)
    return found is not None and found.directory


def _bundle(path: Path, name: str) -> Iterator[Input]:
    """A live run's bundle: each artifact with the kind and context it was judged in."""
    manifest = path / bundle.MANIFEST
    lines = manifest.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{os.path.join(name, bundle.MANIFEST)}:{number}"
        try:
            yield _bundle_member(path, name, json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            message = f"not a bundle entry ({problem}); was the manifest edited?"
            yield Input(where, Evidence(text="", name=where), message)


def _bundle_member(path: Path, name: str, entry: dict[str, Any]) -> Input:
    kind = analyzers.get(str(entry["kind"]))
    target = Path(str(entry["file"]))
    if target.is_absolute():
        if not kind.directory:
            raise ValueError(f"{target}: only directory kinds may name absolute paths")
        item = _file(target, str(target))
    else:
        resolved = (path / target).resolve()
        if path.resolve() not in resolved.parents:
            raise ValueError(f"{target} lies outside the bundle")
        item = _file(resolved, os.path.join(name, str(target)))
    item.kind = kind.name
    item.ctx = bundle.context_from_json(dict(entry["context"]))
    return item


def _walk(path: Path, name: str, kind: str | None) -> Iterator[Input]:
    if kind is None and (path / bundle.MANIFEST).is_file():
        yield from _bundle(path, name)
        return
    if _is_directory_kind(path, kind):
        yield Input(name, Evidence.from_path(path, name=name))
        return
    entries = sorted(path.iterdir(), key=lambda p: p.name)
    if not entries:
        yield Input(name, Evidence(text="", name=name, path=path))
    for entry in entries:
        member = os.path.join(name, entry.name)
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry, member, kind)
        else:
            yield _file(entry, member)


def inputs(given_inputs: list[str], kind: str | None) -> Iterator[Input]:
    """Every input to judge, in the order given; directories walked in name order."""
    for given in given_inputs:
        if given == "-":
            text = decode(sys.stdin.buffer.read())
            yield Input("-", Evidence(text=text, name="-"))
        elif Path(given).is_dir():
            yield from _walk(Path(given), given, kind)
        else:
            yield _file(Path(given), given, explicit=True)
