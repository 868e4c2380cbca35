"""``kubectl get`` tables and ``describe``/``get events`` lines (kind ``kube-output``).

What it reads: tables for nodes (``-o wide`` gives ``INTERNAL-IP``), pods, services,
endpoints, DaemonSets and events, with or without ``NAMESPACE`` and the
``kind/name`` prefixes of ``kubectl get all``; ``Events:`` blocks of ``kubectl
describe`` (with or without the ``Age`` column); ``kubectl describe svc`` of a
LoadBalancer Service (its ``LoadBalancer Ingress`` field, counted once where the
same Service is also listed); and shell transcripts where a
``$ kubectl -n NS get pods | grep x`` line stands for the header it filtered away.
Columns are found by header name, never by position alone.

What it judges:

- cluster: ``node_not_ready`` (``details.nodes``); ``system_pods_not_ready`` for
  kube-system pods that are neither Running with all containers ready nor
  Completed; ``node_ip_not_on_overlay`` for an ``INTERNAL-IP`` or an address of
  the ``kubernetes`` endpoints outside ``Context.overlay_cidr`` (without it, a hint
  says the addresses could not be judged).
- lb: ``ip_pending`` for a LoadBalancer Service whose EXTERNAL-IP is ``<pending>``,
  with the reasons found in the same artifact attached (``details.pending_reasons``:
  the Service's own events, MetalLB's AllocationFailed, the scheduler's reasons
  for svclb pods); ``k3s_servicelb_active_with_metallb`` when ``svclb-*`` pods or
  DaemonSets exist and MetalLB is known to be present (``Context.metallb_version``,
  ``Context.extra["metallb_installed"]``, metallb-system objects or MetalLB events
  in the artifact), or when svclb pods cannot be scheduled because another load
  balancer holds the ports ("didn't have free ports"). svclb pods are not counted
  as failing system pods: their failure is this lb condition.

- MetalLB resources pasted beside the tables (case C10: ``kubectl get svc`` then
  the IPAddressPool, no ``---``) are judged as ``metallb-config`` judges them, with
  its reasons and hints added here and its details under ``details.metallb``.
- Nothing judged is not a PASS: the ``kubernetes`` endpoints without
  ``--overlay-cidr``, or only rows this analyzer leaves to others, give
  INCONCLUSIVE ``context_missing``.

Application pods (READY 1/2 in an app namespace) are left to the mesh and apps
analyzers. The finding's layer is the lowest layer with a failing code. A ``Key:``
line at the left margin (a ``describe`` field, a YAML key) ends the table above it.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from meshstack.analyzers import (
    Context,
    Evidence,
    Kind,
    metallb_config,
    register,
    unrecognised,
)
from meshstack.analyzers._kube_output_read import (
    EVENT_LINE,
    TABLES,
    Event,
    Parsed,
    Row,
    header_of,
    parse,
)
from meshstack.analyzers.k3s_log import metallb_known
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "kube-output"
_METALLB_EVENT = re.compile(r"IPAllocated|AllocationFailed|nodeAssigned|metallb", re.I)

# --- detection -----------------------------------------------------------------------


def detect(evidence: Evidence) -> float:
    text = evidence.text[:200_000]
    if not text.strip():
        return 0.0
    for line in text.splitlines()[:2000]:
        if header_of(line):
            return 0.85
    if re.search(r"^[ \t]*\$[ \t]*kubectl[ \t].*\b(get|describe)\b", text, re.M):
        parsed = parse(text)
        if parsed.rows or parsed.events:
            return 0.7
    if re.search(r"^Events:[ \t]*$", text, re.M) and EVENT_LINE.search(text):
        return 0.7
    return 0.0


# --- judging -------------------------------------------------------------------------


def _not_ready_pod(row: Row) -> bool:
    status = row.cells.get("STATUS", "")
    if status in ("Completed", "Succeeded"):
        return False
    ready = re.match(r"(\d+)/(\d+)", row.cells.get("READY", ""))
    all_ready = bool(ready) and ready.group(1) == ready.group(2)  # type: ignore[union-attr]
    return status != "Running" or not all_ready


def _judge_nodes(rows: list[Row], net: object, f: Finding) -> None:
    bad = [r for r in rows if r.cells.get("STATUS", "").split(",")[0] != "Ready"]
    if bad:
        f.add(
            "node_not_ready",
            "nodes are not Ready: see `kubectl describe node` conditions and the "
            "k3s/k3s-agent journal on them",
            nodes=[r.name for r in bad],
        )
        f.evidence += [r.line for r in bad]
    ips = {r.name: r.cells["INTERNAL-IP"] for r in rows if r.cells.get("INTERNAL-IP")}
    _judge_addresses(ips, net, "INTERNAL-IP", f)


def _judge_addresses(ips: dict[str, str], net: object, what: str, f: Finding) -> None:
    if not ips:
        return
    if net is None:
        f.hint(f"{what} addresses could not be judged: give --overlay-cidr")
        return
    off = {}
    for name, value in ips.items():
        try:
            if ipaddress.ip_address(value) not in net:  # type: ignore[operator]
                off[name] = value
        except (ValueError, RecursionError):
            continue
    if off:
        f.add(
            "node_ip_not_on_overlay",
            f"{what} outside the overlay {net}: pin --node-ip, --node-external-ip "
            "and --flannel-iface to the overlay on every node",
            off_overlay={**f.details.get("off_overlay", {}), **off},
        )


def _endpoint_ips(rows: list[Row]) -> dict[str, str]:
    ips = {}
    for row in rows:
        if row.name != "kubernetes":
            continue
        for i, ep in enumerate(
            re.findall(r"([\d.]+|\[[0-9a-f:]+\]):\d+", row.cells.get("ENDPOINTS", ""))
        ):
            ips[f"kubernetes#{i}"] = ep.strip("[]")
    return ips


# Pods k3s itself deploys into kube-system: they mark a pod table whose namespace
# column and command line were cut away.
_K3S_SYSTEM_POD = re.compile(
    r"^(coredns|metrics-server|local-path-provisioner|traefik|helm-install-)"
)


def _system(row: Row) -> bool:
    if row.namespace is not None:
        return row.namespace == "kube-system"
    return bool(_K3S_SYSTEM_POD.match(row.name))


def _judge_system_pods(rows: list[Row], f: Finding) -> None:
    system = [r for r in rows if _system(r) and not _svclb(r)]
    bad = [r for r in system if _not_ready_pod(r)]
    if bad:
        f.add(
            "system_pods_not_ready",
            "kube-system pods are not ready: describe them and read their events",
            pods=[r.name for r in bad],
        )
        f.evidence += [r.line for r in bad]


def _svclb(row: Row) -> bool:
    return row.name.startswith("svclb-")


def _metallb_proof(parsed: Parsed, ctx: Context) -> list[str] | None:
    """The lines showing MetalLB is installed ([] when context says so), or None."""
    if metallb_known(ctx):
        return []
    rows = [r.line for r in parsed.rows if r.namespace == "metallb-system"]
    events = [
        e.line
        for e in parsed.events
        if _METALLB_EVENT.search(f"{e.reason} {e.message}")
    ]
    return (rows + events)[:3] or None


def _port_conflicts(parsed: Parsed) -> list[Event]:
    return [
        e
        for e in parsed.events
        if e.reason == "FailedScheduling" and "free ports" in e.message
    ]


def _svclb_names(parsed: Parsed) -> tuple[list[str], bool]:
    """svclb pods/DaemonSets in tables or described; and whether one is Pending."""
    rows = [r for r in parsed.rows if _svclb(r) and r.table in ("pods", "daemonsets")]
    names = [r.name for r in rows]
    pending = any(r.cells.get("STATUS") == "Pending" for r in rows)
    for e in parsed.events:
        obj = e.obj.split("/")[-1]
        if obj.startswith("svclb-"):
            names += [] if obj in names else [obj]
            pending = pending or e.reason == "FailedScheduling"
    return names, pending


def _judge_servicelb(parsed: Parsed, ctx: Context, f: Finding) -> None:
    names, pending = _svclb_names(parsed)
    if not names:
        return
    proof = _metallb_proof(parsed, ctx)
    if proof is not None or (pending and _port_conflicts(parsed)):
        f.add(
            "k3s_servicelb_active_with_metallb",
            "k3s servicelb runs beside MetalLB: restart the k3s servers with "
            "--disable servicelb and delete the leftover svclb-* DaemonSets",
            svclb=names,
        )
        f.evidence += [r.line for r in parsed.rows if r.name in names]
        f.evidence += [e.line for e in _port_conflicts(parsed)] + (proof or [])
    else:
        f.hint("k3s servicelb is active; if MetalLB is installed, disable servicelb")


def _reasons_for(svc: str, parsed: Parsed) -> list[str]:
    out = []
    for e in parsed.events:
        own = e.obj.split("/")[-1] == svc or f'/{svc}"' in e.message
        svclb = e.obj.split("/")[-1].startswith("svclb-") or (
            e.reason == "FailedScheduling" and "free ports" in e.message
        )
        if (own or svclb) and e.type == "Warning":
            out.append(f"{e.reason}: {e.message}")
    return out


def _qualified(row: Row) -> str:
    return f"{row.namespace}/{row.name}" if row.namespace else row.name


def _judge_services(parsed: Parsed, f: Finding) -> None:
    pending = [
        r
        for r in parsed.rows
        if r.table == "services"
        and r.cells.get("TYPE") == "LoadBalancer"
        and r.cells.get("EXTERNAL-IP", "").strip() == "<pending>"
    ]
    if not pending:
        return
    reasons = {_qualified(r): _reasons_for(r.name, parsed) for r in pending}
    f.add("ip_pending", None, pending=list(reasons), pending_reasons=reasons)
    f.evidence += [r.line for r in pending]
    for name, why in reasons.items():
        if why:
            f.hint(f"{name} is pending: {why[0]}")
        else:
            f.hint(
                f"{name} is pending and nothing here says why: capture `kubectl "
                "describe svc` and the MetalLB controller log"
            )


_CLUSTER_CODES = {"node_not_ready", "system_pods_not_ready", "node_ip_not_on_overlay"}


def _overlay(ctx: Context) -> object:
    try:
        return (
            ipaddress.ip_network(ctx.overlay_cidr, strict=False)
            if ctx.overlay_cidr
            else None
        )
    except (ValueError, RecursionError):
        return None


def _judge_metallb(evidence: Evidence, ctx: Context, f: Finding) -> bool:
    """Judge MetalLB resources pasted beside the tables as metallb-config does.

    A capture of ``kubectl get svc`` followed by the pools (case C10) is one
    configuration: its Services are only judgeable against the pools.
    """
    if metallb_config.detect(evidence) < 0.9:
        return False
    mf = metallb_config.judge(evidence, ctx)
    for code in mf.reasons:
        f.add(code)
    for text in mf.hints:
        f.hint(text)
    f.evidence += [e for e in mf.evidence if e not in f.evidence]
    f.details["metallb"] = mf.details
    return True


def _nothing_judged(
    parsed: Parsed, by_table: dict[str, list[Row]], net: object, f: Finding
) -> None:
    """INCONCLUSIVE where no row or event was of a kind this analyzer judges."""
    lb = [r for r in by_table["services"] if r.cells.get("TYPE") == "LoadBalancer"]
    judged = (
        by_table["nodes"]
        or any(_system(r) for r in by_table["pods"])
        or lb
        or _svclb_names(parsed)[0]
        or (net is not None and _endpoint_ips(by_table["endpoints"]))
    )
    if judged or f.reasons:
        return
    if _endpoint_ips(by_table["endpoints"]):
        f.add("context_missing")  # _judge_addresses' hint names --overlay-cidr
        return
    f.add(
        "context_missing",
        "nothing here is judged by kube-output: capture nodes (-o wide), "
        "kube-system pods, LoadBalancer Services or the kubernetes endpoints",
    )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    try:
        parsed = parse(evidence.text) if detect(evidence) > 0 else Parsed()
    except Exception:  # arbitrary text must give a finding, not a traceback
        log.debug("[%s] unreadable as kubectl output", evidence.name, exc_info=True)
        parsed = Parsed()
    if not parsed.rows and not parsed.events:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="cluster", kind=NAME)
    net = _overlay(ctx)
    by_table = {t: [r for r in parsed.rows if r.table == t] for t in TABLES}
    _judge_nodes(by_table["nodes"], net, f)
    _judge_addresses(
        _endpoint_ips(by_table["endpoints"]), net, "kubernetes endpoint", f
    )
    _judge_system_pods(by_table["pods"], f)
    _judge_servicelb(parsed, ctx, f)
    _judge_services(parsed, f)
    with_metallb = _judge_metallb(evidence, ctx, f)
    lb_only = not (set(f.reasons) & _CLUSTER_CODES)
    if lb_only and (f.reasons or by_table["services"] or with_metallb):
        f.layer = "lb"
    if not with_metallb:
        _nothing_judged(parsed, by_table, net, f)
    f.details["counts"] = {t: len(rows) for t, rows in by_table.items() if rows}
    f.details["events"] = len(parsed.events)
    log.debug("[%s] judged %s", evidence.name, f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="cluster",
        summary="kubectl get tables (nodes, pods, svc, endpoints) and event lines",
        detect=detect,
        judge=judge,
    )
)
