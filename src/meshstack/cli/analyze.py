"""`meshstack analyze`: judge captured artifacts with the same analyzers the suites use.

Each input is a file, a directory or ``-`` (stdin). A directory is walked
recursively in sorted order and every file in it is judged on its own, except a
directory that is itself of a directory kind (an ``allure-results`` directory, when
detected or named with ``--kind``), which is judged as a whole. Without ``--kind``
each input's kind is detected from its content, never from its name; with ``--kind``
an input that is not of that kind is HARNESS-ERROR ``unrecognised_input``, and so is
an empty input (nothing but white space, or an empty directory), whatever its kind:
"empty: nothing to judge". A message never suggests ``--kind`` where a kind was
named (by ``--kind`` or by a bundle's manifest).

Exit status, by precedence: 4 usage error (a missing input, a bad ``--now``, an
unknown ``--kind``); 3 any HARNESS-ERROR; 1 any FAIL, INCONCLUSIVE or INVALID-RUN;
else 0. ``--json`` prints one JSON object per judged input and nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TextIO

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.cli import _analyze_inputs as sources
from meshstack.cli import _analyze_options as options
from meshstack.verdicts import Finding, Verdict

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_HARNESS, EXIT_USAGE = 0, 1, 3, 4
_FAILED = (Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.INVALID_RUN)


class _Usage(Exception):
    """An input or option that makes the command unusable (exit status 4)."""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "analyze",
        help="judge captured artifacts (logs, CLI output, CSV, JSON, allure-results)",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="exit status: 0 all PASS/WARN, 1 any FAIL/INCONCLUSIVE/INVALID-RUN, "
        "3 any HARNESS-ERROR, 4 usage error. Context for analyzers: --extra "
        'objective=\'{"op": ">=", "bound": 0.99}\', window=5m, '
        "scrape_interval=15s, ramp=30, window_start=..., duration=60, "
        "expected_results=N",
    )
    p.add_argument("inputs", nargs="*", metavar="FILE|DIR|-")
    p.add_argument("--kind", help="judge every input as this kind (see --list-kinds)")
    p.add_argument("--now", help="judging time, RFC 3339 (default: the clock)")
    p.add_argument("--json", action="store_true", help="print JSON Lines only")
    p.add_argument("--list-kinds", action="store_true", help="list kinds and exit")
    p.add_argument("--target-rps", type=options.positive, help="the load's target rate")
    p.add_argument(
        "--tolerance", type=options.tolerance, default=None, help="0.05 or 5%%"
    )
    p.add_argument("--min-sample", type=options.count, default=None, help="default 100")
    p.add_argument(
        "--metallb-version", type=options.version, help="MetalLB version, e.g. 0.14.5"
    )
    p.add_argument(
        "--overlay-cidr", type=options.cidr, help="the overlay's address range"
    )
    p.add_argument("--cni-namespace", help="namespace the CNI plugin runs in")
    p.add_argument(
        "--extra",
        type=options.extra,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='analyzer context (JSON values), e.g. objective=\'{"op":">=",...}\'',
    )
    p.set_defaults(run=run)


def _parse_now(text: str | None) -> datetime:
    """The judging time: --now, else the clock (analyzers never read the clock)."""
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise _Usage(
            f"--now {text!r} is not an RFC 3339 time: "
            "give one like 2025-01-31T12:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise _Usage(f"--now {text!r} has no UTC offset: add Z or +hh:mm")
    return when


def _check_kind(name: str | None) -> None:
    if name is None:
        return
    known = analyzers.kinds()
    if name not in known:
        raise _Usage(
            f"--kind {name!r} is not a known kind; known kinds: "
            f"{', '.join(sorted(known))} (see --list-kinds)"
        )


def _check_inputs(inputs: list[str]) -> None:
    if not inputs:
        raise _Usage("no input given: name files, directories or - for stdin")
    missing = [i for i in inputs if i != "-" and not os.path.exists(i)]
    if missing:
        raise _Usage(
            f"input not found: {', '.join(missing)}; check the path "
            "(use - to read standard input)"
        )
    if inputs.count("-") > 1:
        raise _Usage("- (stdin) can be given only once")


def _given(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    """The context options the user gave: they win over a bundle's recorded ones."""
    names = (
        "now",
        "target_rps",
        "tolerance",
        "min_sample",
        "metallb_version",
        "overlay_cidr",
        "cni_namespace",
    )
    out = {n: getattr(ctx, n) for n in names if getattr(args, n) is not None}
    if args.extra:
        out["extra"] = ctx.extra
    return out


def _context(args: argparse.Namespace) -> Context:
    return Context(
        now=_parse_now(args.now),
        target_rps=args.target_rps,
        tolerance=0.05 if args.tolerance is None else args.tolerance,
        min_sample=100 if args.min_sample is None else args.min_sample,
        metallb_version=args.metallb_version,
        overlay_cidr=args.overlay_cidr,
        cni_namespace=args.cni_namespace,
        extra=dict(args.extra),
    )


def _judge(
    item: sources.Input, ctx: Context, kind: str | None, named_by: str
) -> Finding:
    """The finding for one input; ``named_by`` says who named ``kind`` ("" if none)."""
    if item.error is not None:
        f = Finding(layer=analyzers.layer_of(kind), kind=kind or "")
        f.add("unrecognised_input", f"{item.name}: {item.error}")
        return f
    path = item.evidence.path
    if (
        kind is not None
        and analyzers.get(kind).directory
        and not (path and path.is_dir())
    ):
        f = Finding(layer=analyzers.layer_of(kind), kind=kind)
        f.add(
            "unrecognised_input",
            f"{item.name}: not a directory; {kind} is judged whole from its "
            "folder: name the folder",
        )
        return f
    if _is_empty(item.evidence):
        return _empty(item, kind)
    try:
        finding = analyzers.analyze(item.evidence, ctx, kind=kind)
    except Exception as exc:  # an analyzer bug must not hide the other inputs
        log.exception("[%s] analyzer crashed", item.name)
        return Finding(
            layer=analyzers.layer_of(kind),
            kind=kind or "",
            hints=["an analyzer crashed on this input: report it with the file"],
            details={"error": f"{type(exc).__name__}: {exc}"[:500]},
            verdict_override=Verdict.HARNESS_ERROR,
        )
    if kind is not None and named_by:
        _reword_unrecognised(finding, item.evidence, kind, named_by)
    return finding


def _is_empty(evidence: Evidence) -> bool:
    """Nothing to judge: white space only, or a directory with nothing in it."""
    if evidence.path is not None and evidence.path.is_dir():
        return not any(evidence.path.iterdir())
    return not evidence.text.strip()


def _empty(item: sources.Input, kind: str | None) -> Finding:
    f = Finding(
        layer=analyzers.layer_of(kind), kind=kind or "", details={"empty": True}
    )
    if item.evidence.path is not None and item.evidence.path.is_dir():
        todo = "name the directory that holds the artifacts"
    else:
        todo = (
            "capture it again (an empty capture often means the command printed "
            "only to stderr, or did not run)"
        )
    f.add("unrecognised_input", f"{item.name}: empty: nothing to judge; {todo}")
    return f


def _reword_unrecognised(
    finding: Finding, evidence: Evidence, kind: str, named_by: str
) -> None:
    """Say an input is not of the kind named without suggesting --kind again.

    The analyzers word "not of this kind" for every caller; where a kind was named
    here, their advice to name a kind is replaced with advice that fits.
    """
    if "unrecognised_input" not in finding.reasons:
        return
    stock = set(analyzers.unrecognised(evidence, expected=kind).hints)
    ours = f"{evidence.name}: the input is not {kind} output, the kind {named_by} " + (
        "names; check the file, or leave --kind out to have its kind detected"
        if named_by == "--kind"
        else "records; was the file changed after the run?"
    )
    finding.hints = [ours if h in stock else h for h in finding.hints]


def _jsonable(value: Any) -> Any:
    """Details made strict JSON: non-finite floats and odd types become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _print_human(out: TextIO, name: str, f: Finding) -> None:
    out.write(f"{name}: {f.verdict} {f.kind or '?'} [{f.layer}]\n")
    if f.reasons:
        out.write(f"  reasons: {', '.join(f.reasons)}\n")
    for hint in f.hints:
        out.write(f"  hint: {hint}\n")
    for line in f.evidence[:20]:
        out.write(f"  evidence: {line}\n")
    if len(f.evidence) > 20:
        out.write(f"  evidence: ... {len(f.evidence) - 20} more lines\n")
    for key, value in f.details.items():
        out.write(f"  {key}: {json.dumps(_jsonable(value))[:300]}\n")


def _list_kinds(as_json: bool) -> int:
    for name, kind in sorted(analyzers.kinds().items()):
        if as_json:
            row: dict[str, object] = {"kind": name, "layer": kind.layer}
            row.update(summary=kind.summary, directory=kind.directory)
            print(json.dumps(row))
        else:
            print(f"{name:22} {kind.layer:8} {kind.summary}")
    return EXIT_OK


def _status(verdicts: list[Verdict]) -> int:
    if Verdict.HARNESS_ERROR in verdicts:
        return EXIT_HARNESS
    if any(v in _FAILED for v in verdicts):
        return EXIT_FAILED
    return EXIT_OK


def _load_kinds() -> bool:
    """Import every analyzer now, so a broken install is one clear message."""
    try:
        analyzers.kinds()
    except ImportError as exc:
        print(
            f"meshstack analyze: error: an analyzer module could not be imported "
            f"({exc}); reinstall meshstack (pip install .) or report it",
            file=sys.stderr,
        )
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if not _load_kinds():
        return EXIT_HARNESS
    try:
        _check_kind(args.kind)
        if args.list_kinds:
            return _list_kinds(args.json)
        _check_inputs(args.inputs)
        ctx = _context(args)
    except _Usage as exc:
        print(f"meshstack analyze: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    verdicts = []
    given = _given(args, ctx)
    for item in sources.inputs(args.inputs, args.kind):
        item_ctx = replace(item.ctx, **given) if item.ctx else ctx
        named_by = "the bundle's manifest" if item.kind else ""
        named_by = named_by or ("--kind" if args.kind else "")
        finding = _judge(item, item_ctx, item.kind or args.kind, named_by)
        verdicts.append(finding.verdict)
        if args.json:
            print(json.dumps(_jsonable(finding.to_json(file=item.name))), flush=True)
        else:
            _print_human(sys.stdout, item.name, finding)
    return _status(verdicts)
