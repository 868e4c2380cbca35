"""The MetalLB twin's controller process: allocation, status, events, webhook.

See :mod:`meshstack.twin.metallb` for the behaviour it reproduces.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client, config, watch

from meshstack.twin import metallb as m

WEBHOOK_CONFIG = "metallb-webhook-configuration"
# Pods listen on every address of their (node's) namespace, as real pods do;
# self-tests that run this in the host namespace narrow it to loopback.
BIND = os.environ.get("MESHSTACK_BIND_ADDRESS", "0.0.0.0")


def say(level: str, msg: str, **kw: Any) -> None:
    ts = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(json.dumps({"level": level, "ts": ts, "msg": msg, **kw}), flush=True)


def host_port(port: int) -> int:
    return int(os.environ.get(f"MESHSTACK_PORT_{port}", port))


def api() -> client.ApiClient:
    return config.new_client_from_config(config_file=os.environ["MESHSTACK_KUBECONFIG"])


def plain(obj: Any) -> Any:
    return client.ApiClient().sanitize_for_serialization(obj)


def load_pools(cl: client.ApiClient, tag: str) -> list[m.Pool]:
    """The pools this release reads: CRDs from 0.13, else the ``config`` ConfigMap."""
    if m.reads_crds(tag):
        got: Any = client.CustomObjectsApi(cl).list_namespaced_custom_object(
            m.GROUP, m.VERSION, m.NS, "ipaddresspools"
        )
        return [m.pool_from_crd(o) for o in got["items"]]
    try:
        cm = client.CoreV1Api(cl).read_namespaced_config_map("config", m.NS)
    except client.ApiException as exc:
        if exc.status == 404:
            return []
        raise
    return m.pools_from_configmap(cm.data)


def serve_metrics(port: int, ready: threading.Event | None = None) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            ok = ready is None or ready.is_set()
            body = b"metallb_up 1\n" if ok else b"not ready\n"
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((BIND, host_port(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def event(
    cl: client.ApiClient, svc: dict, type_: str, reason: str, msg: str, component: str
) -> None:
    meta = svc["metadata"]
    now = dt.datetime.now(dt.UTC)
    ev = client.CoreV1Event(
        metadata=client.V1ObjectMeta(
            name=f"{meta['name']}.{uuid.uuid4().hex[:16]}", namespace=meta["namespace"]
        ),
        involved_object=client.V1ObjectReference(
            kind="Service",
            name=meta["name"],
            namespace=meta["namespace"],
            api_version="v1",
            uid=meta.get("uid"),
        ),
        reason=reason,
        message=msg,
        type=type_,
        count=1,
        first_timestamp=now,
        last_timestamp=now,
        source=client.V1EventSource(component=component),
    )
    try:
        client.CoreV1Api(cl).create_namespaced_event(meta["namespace"], ev)
    except client.ApiException as exc:
        say("warn", "could not record event", reason=reason, error=str(exc.reason))


# --- allocation loop -------------------------------------------------------------


class Controller:
    def __init__(self, cl: client.ApiClient, tag: str) -> None:
        self.cl, self.tag = cl, tag
        self.core = client.CoreV1Api(cl)
        self.said: dict[str, str] = {}

    def reconcile(self) -> str:
        """Assign what is pending; the Service list's resourceVersion, to watch from."""
        pools = load_pools(self.cl, self.tag)
        listed = self.core.list_service_for_all_namespaces()
        services = [plain(s) for s in listed.items]
        lbs = [
            s
            for s in services
            if (s.get("spec") or {}).get("type") == "LoadBalancer"
            and not (s.get("spec") or {}).get("loadBalancerClass")
        ]
        used: set[str] = set()
        pending = []
        for svc in lbs:
            ip = current_ip(svc)
            if ip and any(p.contains(ip) for p in pools) and ip not in used:
                used.add(ip)
            else:
                pending.append(svc)
        for svc in pending:
            self._assign(svc, pools, used)
        return str(getattr(listed.metadata, "resource_version", ""))

    def _assign(self, svc: dict, pools: list[m.Pool], used: set[str]) -> None:
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        ip, why = m.allocate(svc, pools, used)
        if ip is None:
            msg = f'Failed to allocate IP for "{key}": {why}'
            if self.said.get(key) != msg:
                say(
                    "error",
                    "IP allocation failed",
                    op="allocateIPs",
                    service=key,
                    error=why,
                )
                event(
                    self.cl,
                    svc,
                    "Warning",
                    "AllocationFailed",
                    msg,
                    "metallb-controller",
                )
                self.said[key] = msg
            return
        used.add(ip)
        body = {"status": {"loadBalancer": {"ingress": [{"ip": ip}]}}}
        self.core.patch_namespaced_service_status(
            svc["metadata"]["name"], svc["metadata"]["namespace"], body
        )
        msg = f'Assigned IP ["{ip}"]'
        say("info", "service assigned", service=key, ip=ip)
        if self.said.get(key) != msg:
            event(self.cl, svc, "Normal", "IPAllocated", msg, "metallb-controller")
            self.said[key] = msg

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                await_service_change(self.core, self.reconcile(), m.RESYNC_INTERVAL)
            except Exception as exc:  # the API may come and go; retry after a pause
                say("error", "reconcile failed; retrying in 1s", error=str(exc))
                time.sleep(1.0)


def await_service_change(core: Any, version: str, timeout: float) -> None:
    """Until a Service changes after ``version`` (the resourceVersion of a list),
    or ``timeout`` passes.

    Watched from the list's version, as an informer does: a watch without one
    first replays every Service as ADDED, and would wake at once, for ever.
    """
    w = watch.Watch()
    for _ in w.stream(
        core.list_service_for_all_namespaces,
        resource_version=version,
        timeout_seconds=max(1, int(timeout)),
    ):
        w.stop()


def current_ip(svc: dict) -> str | None:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ingress[0].get("ip") if ingress else None


# --- webhook ---------------------------------------------------------------------


def _review(cl: client.ApiClient, tag: str, body: dict) -> dict:
    req = body.get("request") or {}
    resp: dict[str, Any] = {"uid": req.get("uid", ""), "allowed": True}
    obj = req.get("object") or {}
    if obj.get("kind") == "IPAddressPool":
        try:
            pool = m.pool_from_crd(obj)
            for r in pool.ranges:
                m.span(r)
            problem = m.overlaps(pool, load_pools(cl, tag))
        except ValueError as exc:
            name = (obj.get("metadata") or {}).get("name")
            problem = f'invalid CIDR in pool "{name}": {exc}'
        if problem:
            resp.update(allowed=False, status={"code": 403, "message": problem})
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": resp,
    }


def _publish_certificate(cl: client.ApiClient) -> tuple[ssl.SSLContext, str]:
    """Issue the serving cert, store it, and put its CA in the webhook config.

    Returns the TLS context to serve with and the CA bundle published.
    """
    from meshstack.twin.linkerd.certs import webhook_pair

    ca, leaf = webhook_pair("metallb-webhook-service", m.NS)
    bundle = base64.b64encode(ca.cert_pem.encode()).decode()
    inject_ca(cl, bundle)
    tmp = tempfile.mkdtemp(prefix="metallb-webhook-")
    crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
    with open(crt, "w") as fh:
        fh.write(leaf.cert_pem)
    with open(key, "w") as fh:
        fh.write(leaf.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx, bundle


def inject_ca(cl: client.ApiClient, bundle: str) -> bool:
    """Put ``bundle`` in every hook of the webhook config; False if all had it."""
    adm = client.AdmissionregistrationV1Api(cl)
    cfg = plain(adm.read_validating_webhook_configuration(WEBHOOK_CONFIG))
    hooks = cfg.get("webhooks") or []
    if all((h.get("clientConfig") or {}).get("caBundle") == bundle for h in hooks):
        return False
    for hook in hooks:
        hook.setdefault("clientConfig", {})["caBundle"] = bundle
    adm.patch_validating_webhook_configuration(WEBHOOK_CONFIG, {"webhooks": hooks})
    return True


def keep_ca_injected(cl: client.ApiClient, bundle: str, stop: threading.Event) -> None:
    """Put the CA back whenever the webhook config loses it, as MetalLB's cert
    rotator does: re-applying MetalLB's manifests resets ``caBundle``, and the
    controller restores it within moments instead of leaving the webhook
    untrusted."""
    while not stop.is_set():
        try:
            if inject_ca(cl, bundle):
                say("info", "webhook CA re-injected", name=WEBHOOK_CONFIG)
        except client.ApiException as exc:
            say("error", "cannot read the webhook config", reason=str(exc.reason))
        stop.wait(m.CA_RECHECK_SECONDS)


def serve_webhook(cl: client.ApiClient, tag: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            n = int(self.headers.get("Content-Length") or 0)
            answer = _review(cl, tag, json.loads(self.rfile.read(n) or b"{}"))
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    ctx, bundle = _publish_certificate(cl)
    threading.Thread(
        target=keep_ca_injected, args=(cl, bundle, threading.Event()), daemon=True
    ).start()
    time.sleep(m.WEBHOOK_DELAY)
    server = ThreadingHTTPServer((BIND, host_port(9443)), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    say("info", "webhook server listening", port=host_port(9443))
    server.serve_forever()


def run_controller() -> int:
    tag = os.environ.get("MESHSTACK_IMAGE_TAG", "v0.14.5")
    cl = api()
    serve_metrics(7472)
    say("info", "MetalLB controller starting", version=tag, crds=m.reads_crds(tag))
    threading.Thread(target=serve_webhook, args=(cl, tag), daemon=True).start()
    stop = threading.Event()
    import signal

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Controller(cl, tag).run(stop)
    return 0
