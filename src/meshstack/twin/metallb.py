"""MetalLB twin: ``python -m meshstack.twin.metallb controller|speaker``.

The twin kubelet runs these for ``quay.io/metallb/controller`` and
``quay.io/metallb/speaker`` (``MESHSTACK_IMAGE_TAG`` carries the release).

controller
    Hands LoadBalancer Services addresses from the pools and writes
    ``status.loadBalancer.ingress``. From 0.13 the pools are ``IPAddressPool``
    resources only: a legacy ``config`` ConfigMap is ignored (so a cluster upgraded
    without converting it has no pools and its Services stay pending); before 0.13
    only the ConfigMap is read. It honours ``metallb.universe.tf/loadBalancerIPs``,
    ``spec.loadBalancerIP``, ``metallb.universe.tf/address-pool`` and
    ``autoAssign``. It serves the validating webhook (AdmissionReview v1) that
    rejects pools with overlapping ranges; like the real controller, whose
    cert-rotator must first issue and publish the serving certificate, the webhook
    starts listening a few seconds after the pod is Ready, so an apply right after
    install meets "connection refused" for real.
speaker
    One per node, in the node's network namespace. For each address whose pool an
    ``L2Advertisement`` selects (by ``ipAddressPools``, ``ipAddressPoolSelectors``,
    or neither = all pools; restricted by ``nodeSelectors`` and ``interfaces``), the
    nodes with a ready speaker are ordered by sha256(node + "#" + ip) as MetalLB's
    memberlist-less election does, and the first one announces: the twin adds the
    address to that node's overlay interface (the kernel then answers ARP for it on
    the overlay bridge) and forwards TCP on address:port to the Service's ready
    endpoints. With no advertisement selecting the pool nothing is announced.

Twin simplification: the VIP's traffic is forwarded by the speaker itself rather
than by kube-proxy's rules on the node.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

NS = "metallb-system"
GROUP, VERSION = "metallb.io", "v1beta1"
IPS_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
WEBHOOK_DELAY = 4.0
# How often the controller checks that the webhook config still carries its CA.
CA_RECHECK_SECONDS = 1.0
RESYNC_INTERVAL = 2.0


def release(tag: str) -> tuple[int, ...]:
    """(major, minor, patch) of an image tag like ``v0.14.5``; (0, 99) if unknown."""
    try:
        return tuple(int(p) for p in tag.lstrip("v").split("-")[0].split(".")[:3])
    except ValueError:
        return (0, 99)


def reads_crds(tag: str) -> bool:
    return release(tag) >= (0, 13)


# --- pools -----------------------------------------------------------------------


@dataclass
class Pool:
    name: str
    ranges: list[str]
    auto_assign: bool = True
    labels: dict[str, str] = field(default_factory=dict)

    def intervals(self) -> list[tuple[int, int]]:
        return [span(r) for r in self.ranges]

    def contains(self, ip: str) -> bool:
        n = int(ipaddress.ip_address(ip))
        return any(lo <= n <= hi for lo, hi in self.intervals())

    def addresses(self):
        for lo, hi in self.intervals():
            for n in range(lo, hi + 1):
                yield str(ipaddress.ip_address(n))


def span(text: str) -> tuple[int, int]:
    """The (first, last) address of ``a.b.c.d/len`` or ``a.b.c.d-e.f.g.h``."""
    if "/" in text:
        net = ipaddress.ip_network(text.strip(), strict=False)
        return int(net.network_address), int(net.broadcast_address)
    lo, _, hi = text.partition("-")
    a = ipaddress.ip_address(lo.strip())
    b = ipaddress.ip_address(hi.strip()) if hi else a
    if int(b) < int(a):
        raise ValueError(f"range {text!r} ends before it starts")
    return int(a), int(b)


def pool_from_crd(obj: dict[str, Any]) -> Pool:
    spec, meta = obj.get("spec") or {}, obj.get("metadata") or {}
    return Pool(
        name=meta.get("name", "?"),
        ranges=[str(a) for a in spec.get("addresses") or []],
        auto_assign=spec.get("autoAssign", True) is not False,
        labels=dict(meta.get("labels") or {}),
    )


def pools_from_configmap(data: dict[str, str] | None) -> list[Pool]:
    config = yaml.safe_load((data or {}).get("config", "")) or {}
    return [
        Pool(
            p.get("name", "?"),
            [str(a) for a in p.get("addresses") or []],
            p.get("auto-assign", True) is not False,
        )
        for p in config.get("address-pools") or []
        if isinstance(p, dict)
    ]


def overlaps(pool: Pool, others: list[Pool]) -> str | None:
    """The real webhook's complaint when ``pool`` overlaps another pool, else None."""
    for other in others:
        if other.name == pool.name:
            continue
        for mine in pool.ranges:
            for theirs in other.ranges:
                (a, b), (c, d) = span(mine), span(theirs)
                if a <= d and c <= b:
                    return (
                        f'CIDR "{mine}" in pool "{pool.name}" overlaps with already '
                        f'defined CIDR "{theirs}"'
                    )
    return None


# --- allocation ------------------------------------------------------------------


def _notes(svc: dict[str, Any]) -> dict[str, str]:
    return dict((svc.get("metadata") or {}).get("annotations") or {})


def requested_ips(svc: dict[str, Any]) -> list[str]:
    notes = _notes(svc)
    for key in IPS_ANNOTATIONS:
        if notes.get(key):
            return [ip.strip() for ip in notes[key].split(",") if ip.strip()]
    ip = (svc.get("spec") or {}).get("loadBalancerIP")
    return [ip] if ip else []


def allocate(
    svc: dict[str, Any], pools: list[Pool], used: set[str]
) -> tuple[str | None, str]:
    """An address for the Service, or None and the controller's reason."""
    wanted = requested_ips(svc)
    if wanted:
        ip = wanted[0]
        if not any(p.contains(ip) for p in pools):
            return None, f'["{ip}"] is not allowed in config'
        if ip in used:
            return None, f'can\'t change sharing key for "{ip}", address also in use'
        return ip, ""
    named = next((_notes(svc)[k] for k in POOL_ANNOTATIONS if _notes(svc).get(k)), None)
    candidates = [p for p in pools if (p.name == named if named else p.auto_assign)]
    if named and not candidates:
        return None, f'unknown pool "{named}"'
    for pool in candidates:
        for ip in pool.addresses():
            if ip not in used:
                return ip, ""
    return None, "no available IPs"


# --- advertisement selection and election ----------------------------------------


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions)."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = (
            expr.get("key"),
            expr.get("operator"),
            expr.get("values") or [],
        )
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


def selects(adv: dict[str, Any], pool: Pool) -> bool:
    spec = adv.get("spec") or {}
    names, selectors = spec.get("ipAddressPools"), spec.get("ipAddressPoolSelectors")
    if not names and not selectors:
        return True
    return pool.name in (names or []) or any(
        matches(s, pool.labels) for s in selectors or []
    )


def node_allowed(adv: dict[str, Any], node_labels: dict[str, str]) -> bool:
    selectors = (adv.get("spec") or {}).get("nodeSelectors") or []
    return not selectors or any(matches(s, node_labels) for s in selectors)


def elect(ip: str, nodes: list[str]) -> str | None:
    """The announcing node: MetalLB's hash order of ``node#ip``, first wins."""
    ranked = sorted(nodes, key=lambda n: hashlib.sha256(f"{n}#{ip}".encode()).digest())
    return ranked[0] if ranked else None


def main(argv: list[str]) -> int:
    role = argv[0] if argv else ""
    if role == "controller":
        from meshstack.twin.metallb_controller import run_controller

        return run_controller()
    if role == "speaker":
        from meshstack.twin.metallb_speaker import run_speaker

        return run_speaker()
    print(json.dumps({"level": "error", "msg": f"unknown role {role!r}"}), flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
