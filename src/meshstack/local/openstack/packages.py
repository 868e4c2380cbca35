"""Install the local cloud's Debian packages: shell-free, idempotent, no prompts.

Called by CI's setup on a bare machine. Packages already installed are skipped;
if all are, nothing runs. Debian's maintainer scripts would start each daemon on
its default ports (a system MariaDB on 3306 would then block ours), so while apt
runs, a policy-rc.d that denies every start is in place unless the machine
already has one.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGES = (
    "mariadb-server",
    "mariadb-client",
    "python3-pymysql",
    "rabbitmq-server",
    "keystone",
    "glance",
    "placement-api",
    "nova-api",
    "nova-conductor",
    "nova-scheduler",
    "nova-compute",
    # satisfies nova-compute's hypervisor dependency without libvirt and qemu;
    # its driver is replaced by ours.
    "nova-compute-ironic",
    "neutron-server",
    "uwsgi-plugin-python3",
    "openssh-server",
    "openssh-client",
    "iproute2",
    "util-linux",
)
POLICY_RC = Path("/usr/sbin/policy-rc.d")
APT_TIMEOUT = 1800.0
UPDATE_TIMEOUT = 300.0


def missing(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages dpkg does not report as installed."""
    res = _run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
        timeout=60,
        check=False,
    )
    installed = {
        line.split()[0]
        for line in res.stdout.splitlines()
        if line.endswith(" installed")
    }
    return [p for p in packages if p not in installed]


def install(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """apt-get install what is missing; returns the packages it installed."""
    todo = missing(packages)
    if not todo:
        log.info("[openstack] all %d packages already installed", len(packages))
        return []
    log.info("[openstack] installing %d packages: %s", len(todo), " ".join(todo))
    made_policy = _deny_service_starts()
    try:
        _run(["apt-get", "update"], timeout=UPDATE_TIMEOUT)
        _run(
            ["apt-get", "install", "-y", "--no-install-recommends", *todo],
            timeout=APT_TIMEOUT,
        )
    finally:
        if made_policy:
            POLICY_RC.unlink(missing_ok=True)
    still = missing(packages)
    if still:
        raise RuntimeError(
            f"apt-get reported success but {', '.join(still)} are not installed; "
            "run `apt-get install` by hand and read its output"
        )
    return todo


def _deny_service_starts() -> bool:
    if POLICY_RC.exists():
        return False
    POLICY_RC.write_text("#!/bin/sh\n# meshstack install: start no daemon\nexit 101\n")
    POLICY_RC.chmod(0o755)
    return True


def _run(
    argv: list[str], timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    log.debug("run: %s", shlex.join(argv))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    res = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and res.returncode != 0:
        raise RuntimeError(
            f"`{shlex.join(argv)}` exited {res.returncode} (expected 0)\n"
            f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}\n"
            "fix the package source or the named package and run the install again"
        )
    return res
