"""What the end-to-end self-tests share: the checkout, runs of the harness, leftovers.

These tests run the real main job and real `pytest suites` runs on the local stack
(brought up once, by the first of them, and left up for the next ones). They are
slow by nature (minutes), so each runs the smallest run that shows its claim.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
RUN_TIMEOUT = 1500.0


@dataclass
class Run:
    argv: list[str]
    exit_status: int
    output: str
    workdir: Path

    @property
    def run_id(self) -> str:
        for line in self.output.splitlines():
            if line.startswith("[meshstack] run"):
                return line.split()[2]
        raise AssertionError(f"no run id in the output of {self.argv}:\n{self.tail()}")

    def tail(self, lines: int = 80) -> str:
        """What explains a run: the harness's own lines and pytest's summary of
        outcomes (a warnings summary can be long enough to push both out of a
        plain tail)."""
        out = self.output.splitlines()
        own = [line for line in out if line.startswith("[meshstack]")][-lines:]
        summary = next(
            (i for i, line in enumerate(out) if "short test summary info" in line),
            max(0, len(out) - lines),
        )
        return "\n".join([*own, "...", *out[summary:][-lines:]])

    def junit(self) -> dict[str, dict[str, str]]:
        """Each test case of the run: its outcome and message, by node id."""
        tree = ET.parse(self.workdir / "junit.xml")
        out = {}
        for case in tree.iter("testcase"):
            name = f"{case.get('classname')}.{case.get('name')}"
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = case.find(tag)
                if el is not None:
                    outcome = {
                        "failure": "failed",
                        "error": "error",
                        "skipped": "skipped",
                    }[tag]
                    message = (el.get("message") or "") + "\n" + (el.text or "")
            out[name] = {"outcome": outcome, "message": message}
        return out


def harness_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MESHSTACK_", "OS_"))
    }
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_suites(tmp: Path, *args: str, timeout: float = RUN_TIMEOUT) -> Run:
    """`pytest suites ...` in the checkout, with its own state file and results."""
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "-p",
        "no:cacheprovider",
        f"--stack-state={tmp / 'state.json'}",
        f"--junitxml={tmp / 'junit.xml'}",
        f"--alluredir={tmp / 'allure-results'}",
        "-rfEs",
        *args,
    ]
    proc = subprocess.run(
        argv,
        cwd=REPO,
        env=harness_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    (tmp / "output.txt").write_text(proc.stdout + proc.stderr)
    return Run(argv, proc.returncode, proc.stdout + proc.stderr, tmp)


def interrupt_when(tmp: Path, marker: str, *args: str) -> Run:
    """Start a fresh run, send Ctrl-C once a line containing `marker` appears."""
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "-p",
        "no:cacheprovider",
        "--stack=fresh",
        f"--stack-state={tmp / 'state.json'}",
        *args,
    ]
    proc = subprocess.Popen(
        argv,
        cwd=REPO,
        env=harness_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT
    sent = False
    for line in proc.stdout:
        lines.append(line)
        if not sent and marker in line:
            os.kill(proc.pid, signal.SIGINT)
            sent = True
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(timeout=600)
    output = "".join(lines)
    (tmp / "output.txt").write_text(output)
    assert sent, f"the run never printed {marker!r}:\n{output[-4000:]}"
    return Run(argv, proc.returncode, output, tmp)


def leftovers(run_id: str) -> list[str]:
    """Everything on this machine still tagged with a run id, or made for it."""
    found = []
    state = _local_status()
    if not state.get("up"):
        return [f"the local stack is not up: {state}"]
    found += _openstack_leftovers(run_id)
    found += _overlay_leftovers()
    return found


def _openstack_leftovers(run_id: str) -> list[str]:
    from meshstack.providers.cloud_openstack import RUN_KEY, connect

    conn = connect(REPO / ".meshstack" / "local" / "clouds.yaml", "meshstack-local")
    tag = f"{RUN_KEY}={run_id}"
    out = [
        f"server {s.name}"
        for s in conn.compute.servers()
        if (s.metadata or {}).get(RUN_KEY) == run_id
    ]
    out += [f"image {i.name}" for i in conn.image.images() if tag in (i.tags or [])]
    out += [
        f"network {n.name}" for n in conn.network.networks() if tag in (n.tags or [])
    ]
    out += [f"router {r.name}" for r in conn.network.routers() if tag in (r.tags or [])]
    return out


def _overlay_leftovers() -> list[str]:
    token = (REPO / ".meshstack/local/zerotier/authtoken.secret").read_text().strip()
    import urllib.request

    req = urllib.request.Request(
        "http://127.0.0.1:9993/controller/network", headers={"X-ZT1-Auth": token}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        networks = json.loads(resp.read())
    return [f"overlay network {n}" for n in networks]


def by_layer(cases: dict[str, dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for name, case in cases.items():
        parts = name.split(".")
        layer = parts[1] if len(parts) > 2 and parts[0] == "suites" else "?"
        out.setdefault(layer, []).append({"name": name, **case})
    return out


@pytest.fixture(scope="session")
def local_stack() -> Iterator[dict[str, Any]]:
    """The local stack, brought up once for the end-to-end tests (reused if up).

    A stack these tests started is removed at the end of the session; one that was
    already up (a developer's) is left as it was found.
    """
    was_up = _local_status().get("up", False)
    _local("up", timeout=900)
    yield {"root": REPO / ".meshstack" / "local"}
    if not was_up:
        _local("down", timeout=600)


def _local(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`meshstack local ...`, checked."""
    proc = subprocess.run(
        [str(VENV_BIN / "meshstack"), "local", *args],
        cwd=REPO,
        env=harness_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _local_status() -> dict[str, Any]:
    out = subprocess.run(
        [str(VENV_BIN / "meshstack"), "local", "status", "--json"],
        cwd=REPO,
        env=harness_env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(json.loads(out or "{}"))
