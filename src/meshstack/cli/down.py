"""`meshstack down`: remove a stack a run kept (``--keep-stack``), exactly as recorded.

Exit status: 0 removed (or nothing recorded); 2 something could not be removed (the
state file keeps it, so a second `down` retries); 4 a usage error.

``--forget`` drops the record without removing anything: for a stack that is gone
already (its cloud was restarted, its servers lost), whose removal can only fail.
Whatever of it still exists is found by its run tag with `meshstack sweep`.
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
    p.add_argument(
        "--forget",
        action="store_true",
        help="drop the record of a stack that is already gone, removing nothing "
        "(then `meshstack sweep --run-id ID` removes what is still tagged)",
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
        if args.forget:
            return _forget(args.stack_state, state.run_id)
        stack = Stack(profile, "fresh", args.stack_state, progress=_progress)
        left = stack.down(force=True)
    finally:
        lock.release()
    for item in left:
        print(f"not removed: {item}", file=sys.stderr)
    if left:
        print(
            "if this stack is gone already (its cloud restarted, its servers lost), "
            "`meshstack down --forget` drops its record, and `meshstack sweep "
            f"--run-id {state.run_id}` removes what is still tagged",
            file=sys.stderr,
        )
    else:
        print(f"removed the stack of run {state.run_id}")
    return EXIT_OPERATION if left else EXIT_OK


def _forget(state_path: Path, run_id: str | None) -> int:
    """Drop the state file (and the kubeconfig it names, if any) of a lost stack."""
    from meshstack.state import StackState

    state = StackState.load(state_path)
    cluster = state.layers.get("cluster")
    kubeconfig = cluster.outputs.get("kubeconfig") if cluster else None
    # The admin kubeconfig the cluster layer wrote beside the state goes too.
    if kubeconfig and Path(kubeconfig).parent == state_path.parent:
        Path(kubeconfig).unlink(missing_ok=True)
    state_path.unlink(missing_ok=True)
    print(
        f"forgot the stack of run {run_id} (nothing was removed); "
        f"`meshstack sweep --run-id {run_id}` removes what is still tagged"
    )
    return EXIT_OK


def _progress(layer: str, step: str) -> None:
    print(f"[meshstack] {layer:<8} {step}", file=sys.stderr, flush=True)
