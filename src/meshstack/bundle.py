"""The evidence bundle: every artifact a live run judged, one file each.

While a run lasts, every analyzer call is recorded here: the artifact's text as a
file, and one line of ``bundle.jsonl`` naming that file, its kind, the context it
was judged with and the verdict it got. ``meshstack analyze DIR`` reads that
manifest and judges each file again with the same kind and context, so a reviewer
(or a self-test) can check that the live verdicts follow from the evidence alone.
Several processes (xdist workers) may append at once: lines are written under a
file lock.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind
from meshstack.verdicts import Finding

MANIFEST = "bundle.jsonl"


def context_to_json(ctx: Context) -> dict[str, Any]:
    out = dataclasses.asdict(ctx)
    out["now"] = ctx.now.isoformat() if ctx.now else None
    return out


def context_from_json(data: dict[str, Any]) -> Context:
    fields = {f.name for f in dataclasses.fields(Context)}
    values = {k: v for k, v in data.items() if k in fields}
    if values.get("now"):
        values["now"] = datetime.fromisoformat(values["now"])
    return Context(**values)


class Bundle:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._count = 0

    def record(
        self, kind: Kind, evidence: Evidence, ctx: Context, finding: Finding
    ) -> None:
        """Keep one judged artifact and its verdict."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._count += 1
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", evidence.name)[:60].strip("-")
        name = f"{os.getpid()}-{self._count:04d}-{kind.name}-{stem or 'artifact'}"
        if kind.directory:
            # A copy, not the folder's name: the folder (allure-results) is rewritten
            # by the next run, and the bundle must re-judge what this run judged.
            _copy_files(Path(str(evidence.path)), self.directory / name, kind.keeps)
        else:
            name += ".txt"
            (self.directory / name).write_text(evidence.text, encoding="utf-8")
        try:
            context = json.loads(json.dumps(context_to_json(ctx)))
        except (TypeError, ValueError):
            context = json.loads(json.dumps(context_to_json(ctx), default=str))
            context["lossy"] = True
        line = {
            "file": name,
            "kind": kind.name,
            "context": context,
            "verdict": str(finding.verdict),
            "reasons": list(finding.reasons),
        }
        with open(self.directory / MANIFEST, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(json.dumps(line) + "\n")
            fcntl.flock(fh, fcntl.LOCK_UN)


def _copy_files(source: Path, target: Path, keeps: tuple[str, ...]) -> None:
    """The regular files directly in ``source`` whose names end in ``keeps``."""
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir() if source.is_dir() else ():
        if item.is_file() and (not keeps or item.name.endswith(keeps)):
            shutil.copyfile(item, target / item.name)


def read_manifest(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / MANIFEST).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
