"""Which advertisement announces which MetalLB pool, by Kubernetes selector rules.

An ``L2Advertisement`` or ``BGPAdvertisement`` selects pools by name
(``ipAddressPools``), by label (``ipAddressPoolSelectors``), or, with neither,
every pool; it never selects a pool of another namespace. Its ``nodeSelectors``
limit it to the nodes they match, and one that matches no Ready node among the
``Node`` objects given announces nothing. :func:`assign_protocols` gives each
IPAddressPool the protocols (``layer2``, ``bgp``) of the advertisements that
announce it, for the metallb-config analyzer
(:mod:`meshstack.analyzers.metallb_config`) to judge unadvertised pools.
"""

from __future__ import annotations

from typing import Any

from meshstack.analyzers._metallb_read import (
    ADV_KINDS,
    Config,
    Pool,
    mapping,
    meta_of,
    spec_of,
)
from meshstack.verdicts import Finding


def _expr_ok(expr: object, labels: dict[str, str]) -> bool:
    if not isinstance(expr, dict):
        return False
    key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def selector_matches(selector: object, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    if not isinstance(selector, dict):
        return False
    match = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match, dict) or not isinstance(exprs, list):
        return False
    if any(labels.get(str(k)) != str(v) for k, v in match.items()):
        return False
    return all(_expr_ok(e, labels) for e in exprs)


def _is_ready(node: dict[str, Any]) -> bool:
    conds = mapping(node, "status").get("conditions")
    return isinstance(conds, list) and any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conds
    )


def _ready_node_labels(nodes: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {str(k): str(v) for k, v in mapping(node, "metadata", "labels").items()}
        for node in nodes
        if _is_ready(node)
    ]


def _announces_somewhere(advert: dict[str, Any], cfg: Config, f: Finding) -> bool:
    selectors = spec_of(advert).get("nodeSelectors")
    if not selectors or not isinstance(selectors, list):
        return True
    if not cfg.nodes:
        f.hint(
            f"advertisement {meta_of(advert).get('name')} limits itself with "
            "nodeSelectors; include the Node objects to check it matches a Ready node"
        )
        return True
    ready = _ready_node_labels(cfg.nodes)
    return any(selector_matches(s, labels) for s in selectors for labels in ready)


def selects(advert: dict[str, Any], pool: Pool) -> bool:
    ns = meta_of(advert).get("namespace")
    if ns and pool.namespace and ns != pool.namespace:
        return False
    spec = spec_of(advert)
    names = spec.get("ipAddressPools") or []
    selectors = spec.get("ipAddressPoolSelectors") or []
    if not names and not selectors:
        return True
    if isinstance(names, list) and pool.name in [str(n) for n in names]:
        return True
    return isinstance(selectors, list) and any(
        selector_matches(s, pool.labels) for s in selectors
    )


def assign_protocols(cfg: Config, f: Finding) -> None:
    live = [a for a in cfg.adverts if _announces_somewhere(a, cfg, f)]
    for pool in cfg.crd:
        if pool.source != "crd":
            continue
        protos = sorted({ADV_KINDS[str(a["kind"])] for a in live if selects(a, pool)})
        pool.protocol = "+".join(protos) or None
