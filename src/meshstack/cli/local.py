"""`meshstack local up|down|status`: the local stack this machine can run.

Exit status: 0 done (also: already up, already down); 2 a component would not
start or stop (the message says which and why; nothing is left half-started);
4 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from meshstack.cli.main import EXIT_OK, EXIT_OPERATION


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("local", help="bring the local stack up or down, or show it")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument(
        "--root",
        type=Path,
        default=Path(".meshstack/local"),
        help="the local stack's working directory (default: .meshstack/local)",
    )
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(run=run)


def _progress(layer: str, step: str) -> None:
    print(f"[meshstack] {layer:<8} {step}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from meshstack.local import launcher
    from meshstack.local.env import LocalStackError

    try:
        if args.action == "up":
            try:
                found = launcher.up(args.root, _progress)
            except launcher.AlreadyUp as exc:
                print(str(exc))
                return EXIT_OK
            print(f"local stack up at {found['root']}")
            return EXIT_OK
        if args.action == "down":
            left = launcher.down(args.root, _progress)
            for item in left:
                print(f"not stopped: {item}", file=sys.stderr)
            return EXIT_OPERATION if left else EXIT_OK
        st = launcher.status(args.root)
    except LocalStackError as exc:
        print(f"meshstack local {args.action}: {exc}", file=sys.stderr)
        return EXIT_OPERATION
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        print(f"local stack at {st['root']}: {'up' if st['up'] else 'not up'}")
        for name, comp in st["components"].items():
            mark = "up  " if comp["up"] else "down"
            print(f"  {mark} {name:<12} {comp.get('detail', '')}")
    return EXIT_OK if st["up"] else EXIT_OPERATION
