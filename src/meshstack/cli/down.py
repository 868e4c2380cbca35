"""`meshstack down`: remove a stack a run kept (``--keep-stack``), exactly as recorded.

Exit status: 0 removed (or nothing recorded); 2 something could not be removed (the
state file keeps it, so a second `down` retries); 4 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meshstack.cli.main import EXIT_OK, EXIT_OPERATION, UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("down", help="remove a stack kept by an earlier run")
    p.add_argument(
        "--stack-state",
        type=Path,
        default=Path(".meshstack/state.json"),
        help="the state file of the kept stack (default: .meshstack/state.json)",
    )
    p.add_argument(
        "--stack-profile",
        type=Path,
        default=None,
        help="the profile it was built from (default: the one the state names)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from meshstack.profile import ProfileError, load_profile
    from meshstack.stack import Stack
    from meshstack.state import RunLock, StackState, StateError

    state = StackState.load(args.stack_state)
    if not state.exists:
        print(f"{args.stack_state}: no stack recorded; nothing to remove")
        return EXIT_OK
    profile_path = args.stack_profile or Path(state.profile)
    lock = RunLock(args.stack_state)
    try:
        profile = load_profile(profile_path)
        lock.acquire()
    except (ProfileError, StateError) as exc:
        raise UsageError(str(exc)) from None
    try:
        stack = Stack(profile, "fresh", args.stack_state, progress=_progress)
        left = stack.down(force=True)
    finally:
        lock.release()
    for item in left:
        print(f"not removed: {item}", file=sys.stderr)
    if not left:
        print(f"removed the stack of run {state.run_id}")
    return EXIT_OPERATION if left else EXIT_OK


def _progress(layer: str, step: str) -> None:
    print(f"[meshstack] {layer:<8} {step}", file=sys.stderr, flush=True)
