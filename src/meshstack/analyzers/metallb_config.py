"""MetalLB configuration as applied or as read back (kind ``metallb-config``).

What it reads: one or more YAML documents, a JSON object, or a ``kubectl get -o
yaml`` List holding any of: the legacy ``ConfigMap`` (``data.config`` with
``address-pools``), Helm values or a HelmRelease with ``configInline``,
``IPAddressPool``, the deprecated ``AddressPool``, ``L2Advertisement``,
``BGPAdvertisement``, LoadBalancer ``Service`` objects (``status.loadBalancer``),
``Node`` objects (their ``k3s.io/node-args`` annotation and labels), k3s's own
``svclb-*`` DaemonSets or pods, and a k3s ``config.yaml``. A document cut short is
read up to its last complete line. Documents need not be separated by ``---``: one
pasted after a ``kubectl`` table or a shell line (case C10 as written) is read too,
and LoadBalancer rows of ``kubectl get svc`` tables count as Services (one per
name, where the same Service is also given as YAML). Legacy and CRD pools are
normalised to ``{pool, ranges, protocol, source}`` (``details.pools``).

What it judges (layer ``lb``), with ``Context.metallb_version``:

- >= 0.13, pools only in the ConfigMap/``configInline``: ``legacy_configmap_ignored``.
  Pools in both, every legacy range covered by the CRs: PASS, hint to delete the
  leftover; legacy ranges the CRs do not cover: ``legacy_configmap_ignored``.
- < 0.13, pools only as CRs: ``crds_unsupported_by_version``.
- No version: CRs are judged as CRs and a hint asks for ``--metallb-version``; legacy
  pools alone are INCONCLUSIVE ``context_missing`` (whether MetalLB reads them at all
  depends on the version), though everything else is still judged.
- ``pool_not_advertised``: an ``IPAddressPool`` that no L2/BGP advertisement selects
  (by ``ipAddressPools``, by ``ipAddressPoolSelectors``; an advertisement with
  neither selects every pool; one whose ``nodeSelectors`` match no Ready node among
  the ``Node`` objects given selects nothing). This fails when a Service's address
  lies in the pool *and also* when the pool auto-assigns (the default) with no
  Service yet: MetalLB will hand its addresses out and nobody will announce them.
  A pool with ``autoAssign: false`` and no Service gets a hint only. A
  configuration split over several files must therefore be judged as one input
  (concatenate the files with ``---``).
- ``ip_pending``: a LoadBalancer Service without an ingress address;
  ``ip_outside_pool``: one whose address lies in no effective pool.
- ``pool_mismatch``: with ``expected_pools`` in the context (name -> ranges, as
  the stack profile sets them; ``--extra 'expected_pools={...}'``), a pool the
  input lacks or holds with other ranges.
- ``k3s_servicelb_active_with_metallb``: ``svclb-*`` DaemonSets/pods, or a k3s
  server (node-args annotation, config.yaml) without ``--disable servicelb``.
- MetalLB objects with no pool, Service or k3s server to judge (a lone
  ``apiVersion`` line, advertisements only): INCONCLUSIVE ``context_missing``.
  Without ``--metallb-version``, a leftover ConfigMap whose pools the CRs cover
  still gets the hint to delete it.

The configuration is read by :mod:`meshstack.analyzers._metallb_read`, and which
advertisement announces which pool is worked out by
:mod:`meshstack.analyzers._metallb_select`; this module judges the result.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from meshstack.analyzers import Context, Evidence, Kind, register, unrecognised
from meshstack.analyzers._metallb_read import (
    Config,
    Pool,
    interval,
    mapping,
    read_config,
    svc_name,
)
from meshstack.analyzers._metallb_select import assign_protocols

# The selector helpers are not used here; they stay importable from this module,
# where they were defined.
from meshstack.analyzers._metallb_select import selector_matches as selector_matches
from meshstack.analyzers._metallb_select import selects as selects
from meshstack.analyzers.k3s_log import redact, servicelb_disabled
from meshstack.verdicts import Finding

log = logging.getLogger(__name__)

NAME = "metallb-config"


# --- detection -----------------------------------------------------------------------


def _score(cfg: Config) -> float:
    if cfg.legacy or cfg.crd or cfg.adverts:
        return 0.95
    return 0.6 if cfg.metallb_objects else 0.0


def _read(evidence: Evidence) -> Config | None:
    if not re.search(r"metallb\.io/|address-pools|configInline", evidence.text):
        return None
    try:
        cfg = read_config(evidence.text)
    except Exception:  # arbitrary text must give "not this kind", not a traceback
        log.debug("[%s] unreadable as MetalLB config", evidence.name, exc_info=True)
        return None
    return cfg if _score(cfg) > 0 else None


def detect(evidence: Evidence) -> float:
    cfg = _read(evidence)
    return _score(cfg) if cfg is not None else 0.0


# --- judging -------------------------------------------------------------------------


def parse_version(version: str | None) -> tuple[int, int] | None:
    m = re.match(r"\s*v?(\d+)\.(\d+)", version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _covered(pool: Pool, others: list[Pool]) -> bool:
    spans = [i for p in others for i in p.intervals]
    return bool(pool.intervals) and all(
        any(lo <= a and b <= hi for lo, hi in spans) for a, b in pool.intervals
    )


def _judge_version(
    cfg: Config, version: tuple[int, int] | None, f: Finding
) -> list[Pool]:
    """Apply the version rules; return the pools MetalLB actually uses."""
    if version is None:
        if cfg.crd:
            f.hint("no --metallb-version given: the resources were judged as 0.13+ CRs")
            lost = [p.name for p in cfg.legacy if not _covered(p, cfg.crd)]
            if lost:
                f.hint(f"pools only in the legacy ConfigMap, lost on 0.13+: {lost}")
            elif cfg.legacy:
                f.hint(_LEFTOVER_HINT)
            return cfg.crd
        if cfg.legacy:
            f.add(
                "context_missing",
                "pools exist only in the legacy ConfigMap/configInline, which MetalLB "
                "0.13+ ignores: give --metallb-version to judge them",
            )
        return cfg.legacy
    if version >= (0, 13):
        return _judge_new(cfg, f, version)
    if cfg.crd and not cfg.legacy:
        f.add(
            "crds_unsupported_by_version",
            "MetalLB before 0.13 reads only the metallb-system/config ConfigMap: "
            "upgrade MetalLB or express the pools as address-pools in the ConfigMap",
            version=f"{version[0]}.{version[1]}",
        )
    elif cfg.crd:
        f.hint("MetalLB before 0.13 ignores the IPAddressPool/advertisement resources")
    return cfg.legacy


def _judge_new(cfg: Config, f: Finding, version: tuple[int, int]) -> list[Pool]:
    pools = cfg.crd
    if version >= (0, 14) and any(p.source == "addresspool" for p in pools):
        # TODO: a dedicated code would make this a failure; the ignored-ConfigMap
        # code is defined for the ConfigMap and configInline only.
        f.hint("MetalLB 0.14 removed the AddressPool kind: use IPAddressPool")
        pools = [p for p in pools if p.source != "addresspool"]
    lost = [p for p in cfg.legacy if not _covered(p, pools)]
    if lost:
        f.add(
            "legacy_configmap_ignored",
            "MetalLB 0.13+ no longer reads the ConfigMap or configInline: export it "
            "(kubectl -n metallb-system get cm config -o yaml), convert it to "
            "IPAddressPool and L2Advertisement resources, apply them, delete the "
            "ConfigMap",
            ignored_pools=[p.name for p in lost],
        )
    elif cfg.legacy:
        f.hint(_LEFTOVER_HINT)
    return pools


_LEFTOVER_HINT = (
    "the legacy ConfigMap/configInline is ignored by MetalLB 0.13+ and every pool "
    "in it exists as an IPAddressPool: delete the leftover ConfigMap"
)


def _ingress_ips(svc: dict[str, Any]) -> list[str]:
    ingress = mapping(svc, "status", "loadBalancer").get("ingress")
    return [
        str(i.get("ip") or i.get("hostname"))
        for i in (ingress if isinstance(ingress, list) else [])
        if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))
    ]


def _judge_services(cfg: Config, pools: list[Pool], f: Finding) -> dict[str, list[str]]:
    """Record pending and out-of-pool services; return services per pool name."""
    users: dict[str, list[str]] = {}
    for svc in cfg.services:
        name, ips = svc_name(svc), _ingress_ips(svc)
        if not ips:
            f.add("ip_pending", None, pending=[*f.details.get("pending", []), name])
            f.evidence.append(f"Service {name}: no status.loadBalancer.ingress")
            continue
        for ip in ips:
            pool = next((p for p in pools if p.contains(ip)), None)
            if pool is not None:
                users.setdefault(pool.name, []).append(name)
            elif pools:
                outside = [*f.details.get("outside_pool", []), f"{name}={ip}"]
                f.evidence.append(f"Service {name}: ingress {ip} in no pool")
                f.add(
                    "ip_outside_pool",
                    f"{name} has {ip}, in no pool",
                    outside_pool=outside,
                )
    return users


def _judge_adverts(
    cfg: Config, pools: list[Pool], users: dict[str, list[str]], f: Finding
) -> None:
    for pool in pools:
        if pool.source != "crd" or pool.protocol:
            continue
        services = users.get(pool.name, [])
        if services or pool.auto_assign:
            f.add(
                "pool_not_advertised",
                f"no L2Advertisement or BGPAdvertisement selects pool {pool.name}: add "
                "an L2Advertisement whose spec.ipAddressPools lists it",
                unadvertised_pools=[
                    *f.details.get("unadvertised_pools", []),
                    pool.name,
                ],
            )
            f.evidence.append(
                f"IPAddressPool {pool.name}: selected by no advertisement"
            )
            if services:
                f.details.setdefault("unannounced_services", []).extend(services)
        else:
            f.hint(
                f"pool {pool.name} (autoAssign: false) is selected by no advertisement"
            )


def _judge_servicelb(cfg: Config, f: Finding) -> None:
    lacking = [a for a in cfg.k3s_servers if not servicelb_disabled(a)]
    if not cfg.svclb and not lacking:
        return
    f.add(
        "k3s_servicelb_active_with_metallb",
        "k3s's servicelb runs beside MetalLB: restart the k3s servers with "
        "--disable servicelb and delete leftover svclb-* DaemonSets",
        svclb=cfg.svclb,
        servers_without_disable=len(lacking),
    )
    f.evidence += [f"k3s svclb object {name}" for name in cfg.svclb]
    f.evidence += [f"k3s server without servicelb off: {redact(a)}" for a in lacking]


def _pending_reasons(
    cfg: Config, pools: list[Pool], users: dict[str, list[str]], f: Finding
) -> None:
    """Say what in the configuration leaves a Service without an address."""
    if "ip_pending" not in f.reasons:
        return
    auto = [p for p in pools if p.auto_assign]
    if {"legacy_configmap_ignored", "crds_unsupported_by_version"} & set(f.reasons):
        f.hint("pending: MetalLB has no pool it reads, so it cannot assign an address")
    elif cfg.svclb:
        f.hint("pending: k3s servicelb also claims these Services")
    elif not pools:
        f.hint("pending: no address pool exists, so MetalLB has none to assign from")
    elif not auto:
        f.hint(
            "pending: every pool has autoAssign: false; a Service gets an address "
            "only by naming a pool (annotation metallb.io/address-pool)"
        )
    elif all(_size(p) <= len(users.get(p.name, [])) for p in auto):
        f.hint("pending: every address of the auto-assigned pools is in use")
    else:
        f.hint(
            "pending: nothing in this configuration explains it; see the Service's "
            "events (kubectl describe svc) and the MetalLB controller log"
        )


def _size(pool: Pool) -> int:
    return sum(hi - lo + 1 for lo, hi in pool.intervals)


def _judge_expected(cfg: Config, expected: Any, f: Finding) -> None:
    """``pool_mismatch`` for each pool the profile wants (``expected_pools`` in the
    context: name -> ranges) that the input lacks or holds with other ranges."""
    if not isinstance(expected, dict):
        return
    have = {p.name: p.ranges for p in cfg.crd}
    for name, ranges in expected.items():
        got = have.get(name)
        if got == ranges:
            continue
        found = f"has {got}" if got is not None else "has no such pool"
        f.add(
            "pool_mismatch",
            f"pool {name}: the profile wants {ranges}, the cluster {found}; "
            "re-provision (`--stack=reuse`) or fix the profile",
        )


def _nothing_judged(cfg: Config, f: Finding) -> None:
    """INCONCLUSIVE where the input held MetalLB objects but nothing to judge."""
    if cfg.legacy or cfg.crd or cfg.services or cfg.svclb or cfg.k3s_servers:
        return
    what = "advertisements but no pool" if cfg.adverts else "no pool, advertisement"
    f.add(
        "context_missing",
        f"MetalLB objects with {what}, Service or k3s server to judge: capture "
        "`kubectl get ipaddresspools,l2advertisements,bgpadvertisements -A -o yaml` "
        "(and the LoadBalancer Services) whole",
    )


def judge(evidence: Evidence, ctx: Context) -> Finding:
    cfg = _read(evidence)
    if cfg is None:
        return unrecognised(evidence, expected=NAME)
    f = Finding(layer="lb", kind=NAME)
    version = parse_version(ctx.metallb_version)
    if ctx.metallb_version and version is None:
        f.hint(f"--metallb-version {ctx.metallb_version!r} is not x.y[.z]; ignored")
    assign_protocols(cfg, f)
    pools = _judge_version(cfg, version, f)
    users = _judge_services(cfg, pools, f)
    _judge_adverts(cfg, pools, users, f)
    _judge_servicelb(cfg, f)
    _pending_reasons(cfg, pools, users, f)
    _judge_expected(cfg, ctx.extra.get("expected_pools"), f)
    f.details["pools"] = [p.normalised() for p in (*cfg.crd, *cfg.legacy)]
    bad = [r for p in (*cfg.crd, *cfg.legacy) for r in p.ranges if interval(r) is None]
    if bad:
        f.hint(f"address ranges that are neither CIDR nor a-b: {', '.join(bad)}")
    f.details["services"] = len(cfg.services)
    f.evidence[:0] = [
        f"{p['source']} pool {p['pool']}: {p['ranges']}" for p in f.details["pools"]
    ]
    _nothing_judged(cfg, f)
    log.debug("[%s] judged %s", evidence.name, f.summary())
    return f


register(
    Kind(
        name=NAME,
        layer="lb",
        summary="MetalLB ConfigMap/configInline/CRs, LB Services, k3s servicelb hints",
        detect=detect,
        judge=judge,
    )
)
