"""Commands over SSH, one at a time and several at once, against a real sshd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshstack import ssh
from tests.sshd_support import free_port, running_sshd

SSH_IP = "127.0.41.1"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), SSH_IP) as server:
        yield server


def _target(sshd: dict[str, Any], name: str, port: int | None = None) -> ssh.Target:
    return ssh.Target(
        host=SSH_IP,
        port=port or sshd["port"],
        user="root",
        key_file=Path(sshd["key"]),
        name=name,
    )


def test_one_command_returns_its_output_and_exit_status(sshd: dict[str, Any]) -> None:
    res = ssh.run(_target(sshd, "a"), ["sh", "-c", "echo hi; exit 3"], timeout=10)
    assert (res.stdout, res.exit_status, res.ok) == ("hi\n", 3, False)


def test_an_unreachable_instance_raises_with_where_it_was_tried(
    sshd: dict[str, Any],
) -> None:
    port = free_port(SSH_IP)  # nothing listens there
    with pytest.raises(ssh.SSHError, match=f"root@{SSH_IP}:{port}"):
        ssh.run(_target(sshd, "gone", port), "true", timeout=3)


def test_jobs_run_at_once_keep_their_order_and_an_unreachable_one_fails_alone(
    sshd: dict[str, Any], tmp_path: Path
) -> None:
    gone = free_port(SSH_IP)
    # Each job waits until all three reachable jobs have started: they can only
    # all finish if they run at the same time (each gives up after 8 s).
    barrier = tmp_path / "started"
    wait_all = (
        f"echo $$ >> {barrier}; i=0; "
        f"while [ $(wc -l < {barrier}) -lt 3 ] && [ $i -lt 80 ]; "
        "do sleep 0.1; i=$((i+1)); done; wc -l < " + str(barrier)
    )
    jobs: list[tuple[ssh.Target, list[str] | str]] = [
        (_target(sshd, "n1"), wait_all),
        (_target(sshd, "down", gone), "true"),
        (_target(sshd, "n2"), wait_all),
        (_target(sshd, "n3"), wait_all),
    ]
    results = ssh.run_all(jobs, timeout=15)
    assert isinstance(results[1], ssh.SSHError)
    assert "[down]" in str(results[1])
    for res in (results[0], results[2], results[3]):
        assert isinstance(res, ssh.Result)
        assert res.stdout.strip() == "3", res.describe()
    assert [r.target for r in results if isinstance(r, ssh.Result)] == [
        "n1",
        "n2",
        "n3",
    ]


def test_run_every_raises_the_error_of_an_instance_it_cannot_reach(
    sshd: Any, tmp_path: Path
) -> None:
    gone = free_port("127.0.0.1")
    jobs: list[tuple[ssh.Target, list[str] | str]] = [
        (_target(sshd, "n1"), "echo one"),
        (_target(sshd, "down", gone), "true"),
    ]
    with pytest.raises(ssh.SSHError, match=r"\[down\]"):
        ssh.run_every(jobs, timeout=15)
    assert [r.stdout for r in ssh.run_every(jobs[:1], timeout=15)] == ["one\n"]
