"""Local-stack component: the ZeroTier controller twin and the overlay bridge.

The controller listens on the cloud bridge's host address (where the instances'
namespaces reach it, as real nodes reach their controller over the underlay) and
on loopback. Member interfaces hang off the overlay bridge ``msovl0``, whose host
end (198.19.0.1/24) puts this machine on the overlay like a laptop joined to the
network, so the harness can reach overlay addresses.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.request
from typing import Any

from meshstack.local import bridge
from meshstack.local.env import LocalEnv, LocalStackError, port_taken

BRIDGE = "msovl0"
BRIDGE_ADDRESS = "198.19.0.1/24"
UNDERLAY_HOST = "198.18.10.1"
PORT = 9993
NAME = "zerotier-controller"
START_TIMEOUT = 15.0


def listens(env: LocalEnv) -> list[tuple[str, int, str]]:
    """The addresses the controller listens on: (host, port, what)."""
    return [(host, PORT, NAME) for host in (UNDERLAY_HOST, "127.0.0.1")]


def _write_cli(env: LocalEnv, url: str) -> None:
    wrapper = env.path("bin", "zerotier-cli")
    wrapper.write_text(
        "#!/bin/sh\n"
        "# The twin zerotier-cli: this node's home is named after its hostname.\n"
        f'exec "{env.python}" -m meshstack.twin.zerotier.cli '
        f'--home "{env.root}/nodes/$(hostname)/zerotier" --controller "{url}" "$@"\n'
    )
    wrapper.chmod(0o755)


def start(env: LocalEnv) -> dict[str, Any]:
    underlay = env.run(["ip", "-o", "addr", "show", "to", UNDERLAY_HOST], check=False)
    if not underlay.stdout.strip():
        raise LocalStackError(
            f"the cloud bridge address {UNDERLAY_HOST} is missing: the openstack "
            "component must start first"
        )
    for host, port, _ in listens(env):
        if port_taken(host, port):
            raise LocalStackError(
                f"{host}:{port} is taken by another program; stop it, then "
                "`meshstack local up` again"
            )
    token_file = env.path("zerotier", "authtoken.secret")
    if not token_file.exists():
        token_file.write_text(secrets.token_hex(24) + "\n")
        token_file.chmod(0o600)
    bridge.claim(env, BRIDGE, BRIDGE_ADDRESS)
    env.spawn(
        NAME,
        [
            env.python,
            "-m",
            "meshstack.twin.zerotier.controller",
            "--listen",
            f"{UNDERLAY_HOST}:{PORT}",
            "--listen",
            f"127.0.0.1:{PORT}",
            "--token-file",
            str(token_file),
            "--data",
            str(env.path("zerotier", "controller.json")),
            "--bridge",
            BRIDGE,
        ],
    )
    url = f"http://{UNDERLAY_HOST}:{PORT}"
    _wait_ready(env, token_file.read_text().strip())
    _write_cli(env, url)
    return {"url": url, "token_file": str(token_file), "bridge": BRIDGE}


def _wait_ready(env: LocalEnv, token: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if not env.running(NAME):
            raise LocalStackError(
                f"the ZeroTier controller twin exited at start; see {env.log(NAME)}"
            )
        try:
            _get(f"http://127.0.0.1:{PORT}/controller", token)
            return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise LocalStackError(
        f"the ZeroTier controller twin did not answer within {START_TIMEOUT:.0f}s "
        f"(last: {last}); see {env.log(NAME)}"
    )


def _get(url: str, token: str) -> Any:
    req = urllib.request.Request(url, headers={"X-ZT1-Auth": token})
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read())


def stop(env: LocalEnv) -> None:
    env.kill(NAME)
    bridge.release(env, BRIDGE)
    for name in ("controller.json", "controller.tmp"):
        (env.root / "zerotier" / name).unlink(missing_ok=True)


def status(env: LocalEnv) -> dict[str, Any]:
    if not env.running(NAME):
        return {"up": False, "detail": "controller not running"}
    try:
        token = (env.root / "zerotier" / "authtoken.secret").read_text().strip()
        info = _get(f"http://127.0.0.1:{PORT}/status", token)
    except (OSError, ValueError) as exc:
        return {"up": False, "detail": f"controller not answering: {exc}"}
    bridge = (
        subprocess.run(
            ["ip", "link", "show", BRIDGE], capture_output=True, timeout=10
        ).returncode
        == 0
    )
    if not bridge:
        return {"up": False, "detail": f"bridge {BRIDGE} missing"}
    return {
        "up": True,
        "detail": f"controller {info['address']} on :{PORT}, bridge {BRIDGE}",
    }
