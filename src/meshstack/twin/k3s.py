"""``python -m meshstack.twin.k3s server|agent|killall|uninstall [k3s flags]``.

The twin's stand-in for the ``k3s`` binary (see :mod:`meshstack.twin.kube` for
how it maps to k3s). ``server`` runs the API server, the controllers, the join
endpoints and a kubelet for its own node; ``agent`` joins a server and runs a
kubelet. Both accept ``--daemon``: detach, record the pid in
``<node dir>/run/k3s.pid``, log to ``<node dir>/var/log/k3s.log``, and return
once the node runs (exit 0) or has failed (exit 1, the log's tail printed), as
``systemctl start k3s`` returns once k3s reports ready. ``killall`` stops the
node's k3s and every container it started (k3s-killall.sh); ``uninstall`` also
removes the node's k3s state (k3s-uninstall.sh).

The node's directory is ``$MESHSTACK_NODE_DIR`` (or ``--data-dir``); under it the
usual paths: ``etc/rancher/k3s/k3s.yaml`` (admin kubeconfig),
``etc/rancher/node/password``, ``var/lib/rancher/k3s/server/{token,node-token}``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from meshstack.twin.kube import kubeconfig
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.kube.controllers import ControllerOptions
from meshstack.twin.kube.join import JoinError, JoinService, full_token, token_secret
from meshstack.twin.kube.k3sargs import Settings, UsageError, parse
from meshstack.twin.kube.logserver import fetch_log
from meshstack.twin.kube.node import NodeRuntime, node_ip, start_node
from meshstack.twin.kube.runtime import kill_recorded, stop_group
from meshstack.twin.kube.system import deploy

log = logging.getLogger("k3s")

READY_TIMEOUT = 60.0


_LEVELS = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}


class LogrusFormatter(logging.Formatter):
    """k3s's log line shape: time="..." level=info msg="..."."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        msg = record.getMessage().replace('"', '\\"')
        if record.exc_info:
            msg += " " + self.formatException(record.exc_info).replace("\n", " | ")
        return f'time="{ts}" level={_LEVELS.get(record.levelno, "info")} msg="{msg}"'


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogrusFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("MESHSTACK_LOG_LEVEL", "INFO"))
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _run_dir(s: Settings) -> Path:
    d = s.node_dir / "run"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _server_token(s: Settings) -> str:
    """The cluster's join secret: from the flags, else kept in server/token."""
    path = s.data_dir / "server/token"
    if s.token:
        return token_secret(s.token)
    if path.exists():
        return token_secret(path.read_text(encoding="utf-8").strip())
    return secrets.token_hex(16)


def run_server(s: Settings, stop: threading.Event) -> None:
    secret = _server_token(s)
    ip = node_ip(s)
    controllers = ControllerOptions(
        resync_interval=float(os.environ.get("MESHSTACK_TWIN_RESYNC_INTERVAL") or 2.0),
        node_grace_period=float(os.environ.get("MESHSTACK_TWIN_NODE_GRACE") or 40.0),
        servicelb="servicelb" not in s.disabled,
    )
    cfg = ApiServerConfig(
        data_dir=s.data_dir / "server",
        bind_address=s.bind_address,
        port=s.https_port,
        advertise_address=s.advertise_address or ip,
        service_cidr=s.service_cidr,
        tls_sans=[ip, *s.tls_sans],
        controllers=controllers,
    )
    server = ApiServer(cfg)
    server.start()
    JoinService(server, secret).install()
    server.http.pod_logs = lambda ns, pod, q: _pod_log(server, ns, pod, q)
    token = full_token(secret, server.ca_pem)
    kubeconfig.write(cfg.data_dir / "token", token)
    kubeconfig.write(cfg.data_dir / "node-token", token)
    kc = s.kubeconfig_path or s.node_dir / "etc/rancher/k3s/k3s.yaml"
    kubeconfig.write(kc, server.kubeconfig(), s.kubeconfig_mode)
    log.info("Wrote kubeconfig %s", kc)
    deploy(server.api, s.disabled, s.service_cidr)
    node = start_node(s, server.url, token, s.cluster_cidr)
    _ready(s, f"k3s is up and running (node {node.name}, InternalIP {node.ip})")
    _snapshot_until(stop, server)
    node.stop(stop_pods=False)
    server.stop()


def _pod_log(server: ApiServer, ns: str, pod: str, query: dict[str, str]) -> bytes:
    obj = server.api.get(server.api.resource("v1", "Pod"), ns, pod)
    node_name = obj["spec"].get("nodeName")
    from meshstack.twin.kube.errors import ApiError

    if not node_name:
        raise ApiError("BadRequest", f'pod "{pod}" is not yet scheduled to a node')
    node = server.api.get(server.api.resource("v1", "Node"), "", node_name)
    return fetch_log(node, ns, pod, query)


def _snapshot_until(stop: threading.Event, server: ApiServer) -> None:
    while not stop.wait(5.0):
        server.store.save()


def run_agent(s: Settings, stop: threading.Event) -> None:
    node: NodeRuntime = start_node(s, s.server_url.rstrip("/"), s.token)
    _ready(s, f"k3s agent is up and running (node {node.name}, InternalIP {node.ip})")
    stop.wait()
    node.stop(stop_pods=False)


def _ready(s: Settings, message: str) -> None:
    log.info(message)
    (_run_dir(s) / "k3s.ready").write_text(str(os.getpid()))


def _daemonize(s: Settings, argv: list[str]) -> int:
    """Start this command detached and wait until it is ready or dead."""
    run = _run_dir(s)
    (run / "k3s.ready").unlink(missing_ok=True)
    log_path = s.node_dir / "var/log/k3s.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_argv = [
        sys.executable,
        "-m",
        "meshstack.twin.k3s",
        *[a for a in argv if a != "--daemon"],
    ]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            child_argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (run / "k3s.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if (run / "k3s.ready").exists():
            print(f"k3s {s.role} running (pid {proc.pid}), log {log_path}")
            return 0
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            print(
                f"k3s {s.role} exited {proc.returncode}; last lines of {log_path}:",
                *tail,
                sep="\n",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.1)
    print(
        f"k3s {s.role} (pid {proc.pid}) not ready after {READY_TIMEOUT:.0f} s; "
        f"see {log_path}",
        file=sys.stderr,
    )
    return 1


def killall(node_dir: Path) -> int:
    """Stop the node's k3s (by its pid file) and every container it started."""
    pid_file = node_dir / "run/k3s.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip() or 0)
        if pid and _is_k3s(pid):
            stop_group(pid, 5.0)
            print(f"stopped k3s (pid {pid})")
        pid_file.unlink(missing_ok=True)
    (node_dir / "run/k3s.ready").unlink(missing_ok=True)
    stopped = kill_recorded(node_dir / "pods")
    print(f"stopped {stopped} container process(es)")
    return 0


def _is_k3s(pid: int) -> bool:
    try:
        return b"meshstack.twin.k3s" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def uninstall(node_dir: Path) -> int:
    killall(node_dir)
    for sub in (
        "etc/rancher/k3s",
        "etc/rancher/node",
        "var/lib/rancher/k3s",
        "run",
        "pods",
    ):
        shutil.rmtree(node_dir / sub, ignore_errors=True)
    print(f"removed k3s state under {node_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if not argv or argv[0] not in ("server", "agent", "killall", "uninstall"):
        print(
            "usage: python -m meshstack.twin.k3s "
            "server|agent|killall|uninstall [flags]",
            file=sys.stderr,
        )
        return 2
    if argv[0] in ("killall", "uninstall"):
        node_dir = Path(
            os.environ.get("MESHSTACK_NODE_DIR")
            or (argv[1] if len(argv) > 1 else "k3s-node")
        )
        return killall(node_dir) if argv[0] == "killall" else uninstall(node_dir)
    try:
        s = parse(argv[0], argv[1:])
    except UsageError as exc:
        log.fatal("%s", exc)
        return 1
    if s.daemon:
        return _daemonize(s, argv)
    return _serve(s)


def _serve(s: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        (run_server if s.role == "server" else run_agent)(s, stop)
    except JoinError as exc:
        log.fatal("Error: %s", exc)
        return 1
    except Exception as exc:
        log.fatal("Error: %s", exc, exc_info=True)
        return 1
    log.info("k3s %s stopped", s.role)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
