"""Ending the processes of a network namespace, as server deletion and test
cleanup do (deleting a namespace does not end what runs in it)."""

from __future__ import annotations

import subprocess
import uuid

from meshstack.local.env import end_namespace_processes, namespace_pids


def test_every_process_of_a_namespace_is_ended_and_none_elsewhere() -> None:
    netns = f"mstest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=10)
    outside = subprocess.Popen(["sleep", "60"])
    try:
        inside = [
            subprocess.Popen(["ip", "netns", "exec", netns, "sleep", "60"])
            for _ in range(2)
        ]
        # A process that ignores SIGTERM must still be ended (by SIGKILL).
        stubborn = subprocess.Popen(
            ["ip", "netns", "exec", netns, "sh", "-c", "trap '' TERM; exec sleep 60"]
        )
        for _ in range(50):
            if len(namespace_pids(netns)) == 3:
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert len(namespace_pids(netns)) == 3

        assert end_namespace_processes(netns, timeout=2.0) == []
        assert namespace_pids(netns) == []
        for proc in [*inside, stubborn]:
            assert proc.wait(timeout=5) != 0
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", netns], timeout=10)


def test_a_namespace_that_is_gone_has_no_processes_to_end() -> None:
    assert end_namespace_processes("mstest-never-made", timeout=0.1) == []
