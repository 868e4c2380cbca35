"""A nova compute driver whose servers are network namespaces running OpenSSH.

Loaded by nova-compute (the system python, ``compute_driver =
meshstack_nova_driver.NamespaceDriver``), not by meshstack: it imports only nova
and the standard library. It keeps nova's FakeDriver bookkeeping (resources,
power state) and adds what a server needs to be reachable:

- a network namespace ``ms-<first 8 hex of the uuid>``;
- a veth pair whose host end joins the cloud bridge and whose inner end (``eth0``)
  carries the port's MAC and fixed address, with a default route to the gateway;
- OpenSSH's sshd in that namespace under ``unshare --uts`` (hostname = the
  server's hostname), listening on the fixed address, port 22, accepting the
  server's keypair for root. Its files live in ``<root>/nodes/<server name>/``.

Settings come from the environment nova-compute is started with:
``MESHSTACK_LOCAL_ROOT`` (required) and ``MESHSTACK_CLOUD_BRIDGE`` (mscloud0).
Each namespace is registered in ``<root>/openstack/instances/<ns>.json`` before it
is made, so that stopping the local cloud can remove whatever a crash left.
"""

import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import time

from nova.virt import fake
from oslo_concurrency import lockutils

LOG = logging.getLogger(__name__)

COMMAND_TIMEOUT = 20
KILL_TIMEOUT = 5.0


# One server's namespace is made at a time: nova-compute runs spawns in
# concurrent green threads, and two interleaved chains of `ip` and sshd commands
# under eventlet's patched subprocess were seen to stall one spawn for good.
NODE_LOCK = lockutils.internal_lock("meshstack-namespace-driver")


class NodeError(Exception):
    """Making or removing a server's namespace failed; the message says how."""


def run(argv):
    """Run a command with a timeout; raise NodeError with its output on failure."""
    LOG.debug("run: %s", " ".join(argv))
    res = subprocess.run(
        argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if res.returncode != 0:
        raise NodeError(
            f"`{' '.join(argv)}` exited {res.returncode}: "
            f"{(res.stderr or res.stdout).strip()}"
        )
    return res.stdout


class Node:
    """One server's namespace, link, sshd and private directory."""

    def __init__(self, instance):
        self.root = os.environ["MESHSTACK_LOCAL_ROOT"]
        self.bridge = os.environ.get("MESHSTACK_CLOUD_BRIDGE", "mscloud0")
        short = instance.uuid.replace("-", "")[:8]
        self.uuid = instance.uuid
        self.name = instance.display_name or instance.uuid
        self.hostname = instance.hostname or short
        self.netns = "ms-" + short
        self.host_link = "msv" + short
        self.peer_link = "msp" + short
        self.dir = os.path.join(self.root, "nodes", self.name)
        self.record = os.path.join(
            self.root, "openstack", "instances", self.netns + ".json"
        )

    # -- making ---------------------------------------------------------------
    def create(self, vif, key_data):
        address, prefix, gateway = _fixed_address(vif)
        self._register(address)
        run(["ip", "netns", "add", self.netns])
        self._plug(vif["address"], address, prefix, gateway)
        self._write_files(address, key_data)
        self._start_sshd()
        LOG.info("[%s] namespace %s up on %s", self.name, self.netns, address)

    def _register(self, address):
        os.makedirs(os.path.dirname(self.record), exist_ok=True)
        data = {
            "uuid": self.uuid,
            "name": self.name,
            "netns": self.netns,
            "host_link": self.host_link,
            "node_dir": self.dir,
            "address": address,
        }
        with open(self.record, "w") as fh:
            json.dump(data, fh)

    def _plug(self, mac, address, prefix, gateway):
        ns = ["ip", "-n", self.netns]
        run(
            [
                "ip",
                "link",
                "add",
                self.host_link,
                "type",
                "veth",
                "peer",
                "name",
                self.peer_link,
                "netns",
                self.netns,
            ]
        )
        run(["ip", "link", "set", self.host_link, "master", self.bridge, "up"])
        run(ns + ["link", "set", self.peer_link, "name", "eth0"])
        run(ns + ["link", "set", "eth0", "address", mac])
        run(ns + ["addr", "add", f"{address}/{prefix}", "dev", "eth0"])
        run(ns + ["link", "set", "eth0", "up"])
        run(ns + ["link", "set", "lo", "up"])
        if gateway:
            run(ns + ["route", "add", "default", "via", gateway])

    def _write_files(self, address, key_data):
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir, mode=0o700)
        with open(os.path.join(self.dir, ".meshstack-node"), "w") as fh:
            json.dump({"uuid": self.uuid, "netns": self.netns}, fh)
        keys = os.path.join(self.dir, "authorized_keys")
        with open(keys, "w") as fh:
            fh.write((key_data or "").strip() + "\n")
        os.chmod(keys, 0o600)
        hostkey = os.path.join(self.dir, "ssh_host_ed25519_key")
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                self.name,
                "-f",
                hostkey,
            ]
        )
        with open(os.path.join(self.dir, "sshd_config"), "w") as fh:
            fh.write(_sshd_config(address, self.dir))

    def _start_sshd(self):
        # sshd's privilege-separation directory; the init script would make it.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        script = 'hostname "$1" && exec /usr/sbin/sshd -f "$2" -E "$3"'
        run(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                script,
                "sh",
                self.hostname,
                os.path.join(self.dir, "sshd_config"),
                os.path.join(self.dir, "sshd.log"),
            ]
        )

    # -- removing -------------------------------------------------------------
    def remove(self):
        """Kill every process in the namespace, then delete it, its link and dir."""
        remove_recorded(self.record)


def remove_recorded(record_path):
    """Remove what one registry record names; quiet about parts already gone."""
    try:
        with open(record_path) as fh:
            rec = json.load(fh)
    except FileNotFoundError:
        return
    netns = rec["netns"]
    if netns in _namespaces():
        _kill_namespace_processes(netns)
        subprocess.run(
            ["ip", "link", "del", rec["host_link"]],
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        run(["ip", "netns", "del", netns])
    marker = os.path.join(rec["node_dir"], ".meshstack-node")
    if os.path.exists(marker):
        with open(marker) as fh:
            if json.load(fh).get("uuid") == rec["uuid"]:
                shutil.rmtree(rec["node_dir"], ignore_errors=True)
    os.unlink(record_path)
    LOG.info("[%s] namespace %s removed", rec["name"], netns)


def _namespaces():
    return {
        line.split()[0]
        for line in run(["ip", "netns", "list"]).splitlines()
        if line.strip()
    }


def _kill_namespace_processes(netns):
    pids = [int(p) for p in run(["ip", "netns", "pids", netns]).split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + KILL_TIMEOUT
        while time.monotonic() < deadline:
            pids = [int(p) for p in run(["ip", "netns", "pids", netns]).split()]
            if not pids:
                return
            time.sleep(0.05)
    if pids:
        raise NodeError(f"processes {pids} in {netns} survived SIGKILL")


def _fixed_address(vif):
    """(address, prefix length, gateway or None) of the port's first IPv4 address."""
    for subnet in vif["network"]["subnets"]:
        cidr = ipaddress.ip_network(subnet["cidr"])
        if cidr.version != 4 or not subnet["ips"]:
            continue
        gateway = (subnet.get("gateway") or {}).get("address")
        return subnet["ips"][0]["address"], cidr.prefixlen, gateway
    raise NodeError(f"port {vif.get('id')} has no IPv4 fixed address")


def _sshd_config(address, node_dir):
    return "\n".join(
        [
            f"ListenAddress {address}:22",
            f"HostKey {node_dir}/ssh_host_ed25519_key",
            f"AuthorizedKeysFile {node_dir}/authorized_keys",
            f"PidFile {node_dir}/sshd.pid",
            "StrictModes no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ]
    )


class NamespaceDriver(fake.FakeDriver):
    """FakeDriver whose servers are reachable namespaces (see the module doc)."""

    def spawn(
        self,
        context,
        instance,
        image_meta,
        injected_files,
        admin_password,
        allocations,
        network_info=None,
        block_device_info=None,
        power_on=True,
        accel_info=None,
    ):
        if not network_info:
            raise NodeError(
                f"server {instance.uuid} has no port: a namespace server needs one"
            )
        # Resolve the port first: it waits for nova's asynchronous allocation.
        vif = network_info[0]
        _fixed_address(vif)
        node = Node(instance)
        try:
            with NODE_LOCK:
                node.create(vif, instance.key_data)
        except Exception:
            LOG.exception("[%s] could not make its namespace", node.name)
            node.remove()
            raise
        super().spawn(
            context,
            instance,
            image_meta,
            injected_files,
            admin_password,
            allocations,
            network_info,
            block_device_info,
            power_on,
            accel_info,
        )

    def destroy(
        self,
        context,
        instance,
        network_info,
        block_device_info=None,
        destroy_disks=True,
        destroy_secrets=True,
    ):
        Node(instance).remove()
        super().destroy(
            context,
            instance,
            network_info,
            block_device_info,
            destroy_disks,
            destroy_secrets,
        )
