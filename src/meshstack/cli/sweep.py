"""`meshstack sweep`: remove what runs left in the cloud after their state was lost.

Every server, router, network and image a run makes carries its run id as a tag.
When the state file that recorded them is gone (a runner wiped, a run killed before
it could save), `meshstack down` cannot find them; sweep finds them by their tags,
on the cloud the profile names:

    meshstack sweep --run-id ms-20261204-101500-1a2b
    meshstack sweep --every-run          # every run's but the stack the state records

The stack the state file records is never swept (remove it with `meshstack down`),
and sweep takes the state file's run lock, so it does not race a run on it.

Exit status: 0 swept (or nothing to sweep); 2 the cloud could not be reached or a
deletion failed (what was removed so far is printed); 4 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from meshstack.cli.main import EXIT_OK, EXIT_OPERATION, UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sweep", help="remove cloud resources that runs with a lost state tagged"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="the run whose resources to remove")
    which.add_argument(
        "--every-run",
        action="store_true",
        help="every run's resources, except the stack the state file records",
    )
    p.add_argument(
        "--stack-profile",
        type=Path,
        default=Path("stacks/local.yaml"),
        help="the profile naming the cloud (default: stacks/local.yaml)",
    )
    p.add_argument(
        "--stack-state",
        type=Path,
        default=Path(".meshstack/state.json"),
        help="the state file whose recorded stack is left alone "
        "(default: .meshstack/state.json)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from meshstack.state import RunLock, StackState, StateError

    cloud = _cloud_settings(args.stack_profile)
    state = StackState.load(args.stack_state)
    keep = state.run_id if state.exists else None
    if args.run_id and args.run_id == keep:
        raise UsageError(
            f"run {keep} is the stack {args.stack_state} records: remove it with "
            "`meshstack down`"
        )
    lock = RunLock(args.stack_state)
    try:
        lock.acquire()
    except StateError as exc:
        raise UsageError(str(exc)) from None
    try:
        return _sweep(cloud, args.run_id, keep)
    finally:
        lock.release()


def _cloud_settings(profile_path: Path) -> dict[str, Any]:
    from meshstack.profile import ProfileError, load_profile

    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        raise UsageError(str(exc)) from None
    section = profile.layers.get("cloud")
    if not section or section.get("provider") != "openstack":
        raise UsageError(
            f"{profile_path}: layers.cloud: expected the openstack provider, found "
            f"{(section or {}).get('provider')!r}; sweep only knows OpenStack's tags"
        )
    return {**section, "clouds_yaml": profile.resolve(str(section["clouds_yaml"]))}


def _sweep(cloud: dict[str, Any], run_id: str | None, keep: str | None) -> int:
    import keystoneauth1.exceptions as ks_exc
    import openstack.exceptions as os_exc

    from meshstack.providers.cloud_openstack import connect
    from meshstack.providers.cloud_openstack_checks import sweep

    try:
        conn = connect(
            Path(cloud["clouds_yaml"]),
            cloud["cloud"],
            float(cloud.get("api_timeout", 30)),
        )
    except (FileNotFoundError, os_exc.ConfigException) as exc:
        raise UsageError(f"cloud {cloud['cloud']!r}: {exc}") from None
    try:
        removed = sweep(conn, run_id, keep=keep)
    except (os_exc.SDKException, ks_exc.ClientException) as exc:
        print(
            f"meshstack sweep: the cloud {cloud['cloud']!r} failed: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_OPERATION
    finally:
        conn.close()
    for line in removed:
        print(f"removed {line}")
    which = f"run {run_id}" if run_id else "any run"
    if not removed:
        print(f"nothing tagged by {which} in cloud {cloud['cloud']!r}")
    return EXIT_OK
