"""Pure judgements and tables over Kubernetes objects for the k3s cluster layer.

Nothing here does I/O: the provider gathers Nodes, Pods and Endpoints (as JSON
dicts from the API) and these functions judge them into a :class:`Finding` or
render them as ``kubectl get -o wide`` does, for reports.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from typing import Any

from meshstack.analyzers.k3s_log import flag_values
from meshstack.verdicts import Finding

Obj = dict[str, Any]
SVCLB_LABEL = "svccontroller.k3s.cattle.io/svcname"
ROLE_PREFIX = "node-role.kubernetes.io/"


def ready(node: Obj) -> bool:
    conds = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def internal_ip(node: Obj) -> str:
    addrs = node.get("status", {}).get("addresses") or []
    return next((a["address"] for a in addrs if a.get("type") == "InternalIP"), "")


def pod_ready(pod: Obj) -> bool:
    if pod.get("status", {}).get("phase") == "Succeeded":
        return True
    conds = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def node_args(node: Obj) -> list[str]:
    """The k3s command line a node runs with (its ``k3s.io/node-args``)."""
    raw = (node["metadata"].get("annotations") or {}).get("k3s.io/node-args", "[]")
    try:
        return [str(a) for a in json.loads(raw)]
    except ValueError:
        return []


def roles(node: Obj) -> list[str]:
    labels = node["metadata"].get("labels") or {}
    return sorted(
        k.removeprefix(ROLE_PREFIX) for k in labels if k.startswith(ROLE_PREFIX)
    )


def judge_nodes(nodes: list[Obj], expected: list[dict[str, Any]], f: Finding) -> None:
    """Every expected node registered and Ready, with its expected role."""
    present = {n["metadata"]["name"]: n for n in nodes}
    missing = sorted({e["name"] for e in expected} - set(present))
    for name in missing:
        f.add(
            "node_not_ready",
            f"node {name} was installed but never registered",
            missing=missing,
        )
    if not nodes:
        f.add("node_not_ready", "the cluster has no nodes")
    for n in nodes:
        name = n["metadata"]["name"]
        f.evidence.append(
            f"node {name} {'Ready' if ready(n) else 'NotReady'} {internal_ip(n)}"
        )
        if not ready(n):
            f.add(
                "node_not_ready",
                f"node {name} is not Ready: read its k3s log",
                not_ready=name,
            )
    for e in expected:
        node = present.get(e["name"])
        if node is not None and (e.get("role") == "server") != (
            "control-plane" in roles(node)
        ):
            f.add(
                "node_not_ready",
                f"node {e['name']} should be a k3s {e.get('role')} "
                f"but has roles {roles(node) or ['<none>']}",
            )


def judge_pods(pods: list[Obj], f: Finding) -> None:
    """kube-system's pods are ready; svclb pods are the lb layer's to judge."""
    system = [p for p in pods if SVCLB_LABEL not in (p["metadata"].get("labels") or {})]
    if not system:
        f.add(
            "system_pods_not_ready",
            "kube-system has no pods: k3s deployed none of its components",
        )
    bad = [p["metadata"]["name"] for p in system if not pod_ready(p)]
    for name in bad:
        f.add(
            "system_pods_not_ready",
            f"kube-system/{name} is not ready: describe it and read its events",
            pods=bad,
        )
    f.evidence.append(f"{len(system) - len(bad)}/{len(system)} kube-system pods ready")


def judge_addresses(
    nodes: list[Obj], api_ips: list[str], cidr: str, f: Finding
) -> None:
    """Node InternalIPs and the API's endpoint addresses lie inside the overlay."""
    net = ipaddress.ip_network(cidr, strict=False)
    pairs = [(f"node {n['metadata']['name']}", internal_ip(n)) for n in nodes]
    pairs += [("the API endpoint (endpoints/kubernetes)", ip) for ip in api_ips]
    for what, ip in pairs:
        f.evidence.append(f"{what}: {ip or 'no address'}")
        if not ip or ipaddress.ip_address(ip) not in net:
            f.add(
                "node_ip_not_on_overlay",
                f"{what} has address {ip or 'none'}, outside the overlay {cidr}: pin "
                "--node-ip, --advertise-address and --flannel-iface to the overlay",
                address=ip,
                overlay_cidr=cidr,
            )


def judge_flags(nodes: list[Obj], f: Finding) -> int:
    """node-ip and flannel-iface given together; returns how many nodes had args."""
    judged = 0
    for n in nodes:
        args = node_args(n)
        if not args:
            continue
        judged += 1
        has_ip = bool(flag_values(args, "node-ip"))
        has_iface = bool(flag_values(args, "flannel-iface"))
        f.evidence.append(f"node {n['metadata']['name']}: k3s {' '.join(args)}")
        if has_ip != has_iface:
            given, missing = (
                ("--node-ip", "--flannel-iface")
                if has_ip
                else ("--flannel-iface", "--node-ip")
            )
            f.add(
                "overlay_flags_incomplete",
                f"node {n['metadata']['name']} runs k3s with {given} but without "
                f"{missing}: give both, on the overlay",
            )
    return judged


def _age(ts: str | None, now: dt.datetime) -> str:
    if not ts:
        return "<unknown>"
    then = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    secs = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    )


def nodes_table(nodes: list[Obj], now: dt.datetime | None = None) -> str:
    """``kubectl get nodes -o wide``, rendered from Node objects."""
    now = now or dt.datetime.now(dt.UTC)
    rows = [
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
        ]
    ]
    for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        info = n.get("status", {}).get("nodeInfo") or {}
        external = next(
            (
                a["address"]
                for a in n.get("status", {}).get("addresses") or []
                if a.get("type") == "ExternalIP"
            ),
            "<none>",
        )
        rows.append(
            [
                n["metadata"]["name"],
                "Ready" if ready(n) else "NotReady",
                ",".join(roles(n)) or "<none>",
                _age(n["metadata"].get("creationTimestamp"), now),
                info.get("kubeletVersion", ""),
                internal_ip(n) or "<none>",
                external,
                info.get("osImage", ""),
                info.get("kernelVersion", ""),
                info.get("containerRuntimeVersion", ""),
            ]
        )
    return _table(rows)


def pods_table(pods: list[Obj], now: dt.datetime | None = None) -> str:
    """``kubectl get pods -o wide``, rendered from Pod objects."""
    now = now or dt.datetime.now(dt.UTC)
    rows = [["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]]
    for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
        st = p.get("status", {})
        cs = st.get("containerStatuses") or []
        waiting = [
            c["state"]["waiting"].get("reason", "")
            for c in cs
            if "waiting" in (c.get("state") or {})
        ]
        rows.append(
            [
                p["metadata"]["name"],
                f"{sum(bool(c.get('ready')) for c in cs)}/"
                f"{len(p['spec'].get('containers') or [])}",
                waiting[0] if waiting else st.get("phase", ""),
                str(sum(int(c.get("restartCount", 0)) for c in cs)),
                _age(p["metadata"].get("creationTimestamp"), now),
                st.get("podIP") or "<none>",
                p["spec"].get("nodeName") or "<none>",
            ]
        )
    return _table(rows)
