#!/usr/bin/env bash
# Install everything meshstack and its local stack need on a Debian 12 machine, as root.
# Safe to run again: each step skips what is already there.
#
#   MESHSTACK_VENV   virtual environment to create/use (default: ./.venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MESHSTACK_VENV:-.venv}"

# Debian packages: the real OpenStack services (nova-compute-ironic satisfies nova's
# hypervisor dependency without libvirt/qemu; the local stack overrides the driver),
# Prometheus, OpenSSH for the namespace-backed servers, Chromium for the report check.
packages=(
  mariadb-server rabbitmq-server keystone glance placement-api
  nova-api nova-conductor nova-scheduler nova-compute nova-compute-ironic
  neutron-server prometheus openssh-server openssh-client chromium
  iproute2 iptables iputils-ping procps python3-venv
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  # Keep the packages from starting their daemons (a system MariaDB or RabbitMQ
  # would hold the ports the local stack's own ones need).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

# The harness in its own virtual environment.
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import meshstack, pytest, locust, kubernetes, openstack, asyncssh, hypothesis" 2>/dev/null \
   || [ pyproject.toml -nt "$venv/.meshstack-installed" ]; then
  echo "[setup] installing meshstack and its dependencies into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -e ".[harness,dev]"
  touch "$venv/.meshstack-installed"
fi

# The Allure 3 command line for `meshstack report`.
if [ ! -x node_modules/.bin/allure ]; then
  echo "[setup] installing the Allure 3 command line (npm)"
  npm install --no-audit --no-fund --loglevel=error
fi
echo "[setup] done"
