"""Commands on the stack's instances over SSH (asyncssh), called synchronously.

Every command is logged at DEBUG as one line before it runs, has a timeout, and its
exit status is checked by the caller through :class:`Result`. Only the key the
profile names is used: no agent, no ``~/.ssh`` keys, no known_hosts from the home
directory and no ``~/.ssh/config``.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import asyncssh

log = logging.getLogger(__name__)


class SSHError(Exception):
    """The instance could not be reached, or refused the key."""


@dataclass(frozen=True)
class Target:
    host: str
    user: str
    key_file: Path
    name: str = ""
    port: int = 22

    def label(self) -> str:
        return self.name or self.host


@dataclass(frozen=True)
class Result:
    target: str
    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def describe(self) -> str:
        return (
            f"[{self.target}] `{self.command}` exited {self.exit_status}\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )

    def check(self) -> Result:
        if not self.ok:
            raise SSHError(self.describe())
        return self


async def _run(
    target: Target, command: str, stdin: str | None, timeout: float
) -> Result:
    async with asyncssh.connect(
        target.host,
        port=target.port,
        username=target.user,
        client_keys=[str(target.key_file)],
        # TODO: host keys are not checked (instances are new each run); pinning the
        # key seen at first contact in the state file would stop a spoofed instance.
        known_hosts=None,
        agent_path=None,
        config=[],
        connect_timeout=timeout,
    ) as conn:
        proc = await conn.run(command, input=stdin, check=False, timeout=timeout)
    return Result(
        target=target.label(),
        command=command,
        exit_status=proc.exit_status if proc.exit_status is not None else -1,
        stdout=str(proc.stdout or ""),
        stderr=str(proc.stderr or ""),
    )


def run(
    target: Target,
    argv: list[str] | str,
    stdin: str | None = None,
    timeout: float = 60.0,
) -> Result:
    """Run one command on an instance; raise SSHError if it cannot be reached."""
    return run_every([(target, argv)], timeout=timeout, stdin=stdin)[0]


def run_all(
    jobs: list[tuple[Target, list[str] | str]],
    timeout: float = 60.0,
    stdin: str | None = None,
) -> list[Result | SSHError]:
    """Run several commands at once, each over its own connection; per job, its
    result or the SSHError saying why its instance could not be reached."""

    async def one(target: Target, command: str) -> Result | SSHError:
        log.debug(
            "[%s] ssh %s@%s: %s", target.label(), target.user, target.host, command
        )
        try:
            return await asyncio.wait_for(
                _run(target, command, stdin, timeout), timeout + 5
            )
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            return SSHError(
                f"[{target.label()}] cannot run `{command}` over SSH at "
                f"{target.user}@{target.host}:{target.port}: "
                f"{type(exc).__name__}: {exc}"
            )

    async def every() -> list[Result | SSHError]:
        return list(
            await asyncio.gather(
                *(one(t, a if isinstance(a, str) else shlex.join(a)) for t, a in jobs)
            )
        )

    return asyncio.run(every())


def reachable(target: Target, timeout: float = 5.0) -> bool:
    try:
        return run(target, "true", timeout=timeout).ok
    except SSHError:
        return False


def run_every(
    jobs: list[tuple[Target, list[str] | str]],
    timeout: float = 60.0,
    stdin: str | None = None,
) -> list[Result]:
    """As :func:`run_all`, for callers that need every instance: the results in
    job order, or the first SSHError of an instance that could not be reached."""
    results = run_all(jobs, timeout=timeout, stdin=stdin)
    for res in results:
        if isinstance(res, SSHError):
            raise res
    return [res for res in results if isinstance(res, Result)]
