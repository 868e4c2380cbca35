"""Reading MetalLB's configuration out of whatever text holds it.

Manifests (YAML or JSON, ``kubectl get -o yaml`` lists, documents embedded among
other output), MetalLB's CRDs and its legacy ConfigMap, k3s's node arguments and
``kubectl get svc`` tables are read into one :class:`Config`; the metallb-config
analyzer (:mod:`meshstack.analyzers.metallb_config`) judges it.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshstack import yamlio
from meshstack.analyzers.k3s_log import config_args

_CRD_KINDS = {"IPAddressPool", "AddressPool", "L2Advertisement", "BGPAdvertisement"}
ADV_KINDS = {"L2Advertisement": "layer2", "BGPAdvertisement": "bgp"}
_SVCLB_LABEL = "svccontroller.k3s.cattle.io/svcname"

Interval = tuple[int, int]


@dataclass
class Pool:
    name: str
    ranges: list[str]
    source: str  # configmap, configInline, crd, addresspool
    protocol: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    auto_assign: bool = True
    intervals: list[Interval] = field(default_factory=list)

    def contains(self, ip: str) -> bool:
        try:
            n = int(ipaddress.ip_address(ip))
        except (ValueError, RecursionError):
            return False
        return any(lo <= n <= hi for lo, hi in self.intervals)

    def normalised(self) -> dict[str, Any]:
        return {
            "pool": self.name,
            "ranges": self.ranges,
            "protocol": self.protocol,
            "source": self.source,
        }


# --- reading -------------------------------------------------------------------------


def _load_chunk(chunk: str) -> object:
    """One YAML document; a document cut short is read up to its last whole line."""
    lines = chunk.splitlines()
    for _ in range(6):
        try:
            return yamlio.load("\n".join(lines))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            bad = mark.line if mark is not None else len(lines) - 1
            lines = lines[: min(bad, len(lines) - 1)]
        except (yaml.YAMLError, RecursionError):
            return None
        if not lines:
            return None
    return None


# A line that can be part of a YAML document: indented, a list item, a comment,
# a flow collection's edge, or a ``key:`` at the left margin. Any other line at the
# left margin (a kubectl table row, a shell prompt) ends the document before it.
_YAML_LINE = re.compile(r"[ \t#\-{}\[\]]|[\w.\"'/-]+[ \t]*:(?:[ \t]|$)")


def _yaml_runs(chunk: str) -> Iterator[str]:
    """The runs of YAML-looking lines in a chunk, split at any other line."""
    run: list[str] = []
    for line in chunk.splitlines():
        if not line.strip() or _YAML_LINE.match(line):
            run.append(line)
            continue
        if any(r.strip() for r in run):
            yield "\n".join(run)
        run = []
    if any(r.strip() for r in run):
        yield "\n".join(run)


def load_documents(text: str) -> list[object]:
    """The YAML/JSON documents in a text, including ones embedded among other output.

    Documents may be separated by ``---`` or follow a kubectl table or a shell line
    directly (a capture pasted as one file); a mapping or list is kept, a bare
    scalar (a line of prose read as YAML) is not.
    """
    stripped = text.lstrip()
    if stripped[:1] in "{[":
        try:
            return [json.loads(stripped)]
        except (ValueError, RecursionError):
            pass
    chunks = re.split(r"^---[^\n]*$", text, flags=re.M)
    docs = (_load_chunk(run) for c in chunks for run in _yaml_runs(c))
    return [d for d in docs if isinstance(d, (dict, list))]


def objects(docs: list[object]) -> Iterator[dict[str, Any]]:
    """Every mapping in the documents, with Lists unfolded."""
    for doc in docs:
        if isinstance(doc, list):
            yield from objects(doc)
        elif isinstance(doc, dict):
            if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith(
                "List"
            ):
                yield from objects(doc["items"])
            else:
                yield doc


def mapping(obj: object, *keys: str) -> dict[str, Any]:
    """obj[k1][k2]..., or {} wherever a level is missing or not a mapping."""
    for key in keys:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, dict) else {}


def meta_of(obj: dict[str, Any]) -> dict[str, Any]:
    return mapping(obj, "metadata")


def spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return mapping(obj, "spec")


def interval(text: str) -> Interval | None:
    try:
        if "/" in text:
            net = ipaddress.ip_network(text.strip(), strict=False)
            return int(net.network_address), int(net.broadcast_address)
        lo, sep, hi = text.partition("-")
        a = ipaddress.ip_address(lo.strip())
        b = ipaddress.ip_address(hi.strip()) if sep else a
        return (int(a), int(b)) if a.version == b.version else None
    except (ValueError, RecursionError):
        return None


def _pool(name: str, addresses: object, source: str, **kw: Any) -> Pool:
    ranges = [str(a) for a in addresses] if isinstance(addresses, list) else []
    pool = Pool(name=name, ranges=ranges, source=source, **kw)
    pool.intervals = [i for i in map(interval, ranges) if i is not None]
    return pool


def _legacy_pools(config: object, source: str) -> list[Pool]:
    if isinstance(config, str):
        config = _load_chunk(config)
    if not isinstance(config, dict):
        return []
    pools = config.get("address-pools")
    return [
        _pool(
            str(p.get("name", "?")),
            p.get("addresses"),
            source,
            protocol=str(p["protocol"]) if p.get("protocol") else None,
            auto_assign=p.get("auto-assign", True) is not False,
        )
        for p in (pools if isinstance(pools, list) else [])
        if isinstance(p, dict)
    ]


def _config_inline(node: object, depth: int = 0) -> Iterator[object]:
    if depth > 8:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "configInline":
                yield value
            else:
                yield from _config_inline(value, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _config_inline(item, depth + 1)


@dataclass
class Config:
    legacy: list[Pool] = field(default_factory=list)
    crd: list[Pool] = field(default_factory=list)
    adverts: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    svclb: list[str] = field(default_factory=list)
    k3s_servers: list[list[str]] = field(default_factory=list)
    metallb_objects: int = 0


def _read_crd(obj: dict[str, Any], kind: str, cfg: Config) -> None:
    if kind in ADV_KINDS:
        cfg.adverts.append(obj)
        return
    meta, spec = meta_of(obj), spec_of(obj)
    legacy_crd = kind == "AddressPool"  # v1beta1, 0.13 only: carries its protocol
    pool = _pool(
        str(meta.get("name", "?")),
        spec.get("addresses"),
        "addresspool" if legacy_crd else "crd",
        protocol=str(spec["protocol"]) if legacy_crd and spec.get("protocol") else None,
        namespace=meta.get("namespace"),
        labels={str(k): str(v) for k, v in mapping(meta, "labels").items()},
        auto_assign=spec.get("autoAssign", spec.get("auto-assign", True)) is not False,
    )
    cfg.crd.append(pool)


def _read_object(obj: dict[str, Any], cfg: Config) -> None:
    kind, meta = str(obj.get("kind", "")), meta_of(obj)
    name, ns = str(meta.get("name", "")), str(meta.get("namespace", ""))
    labels = mapping(meta, "labels")
    if ns == "metallb-system" or "metallb.io" in str(obj.get("apiVersion", "")):
        cfg.metallb_objects += 1
    if kind in _CRD_KINDS:
        _read_crd(obj, kind, cfg)
    elif kind == "ConfigMap" and isinstance(obj.get("data"), dict):
        cfg.legacy += _legacy_pools(obj["data"].get("config"), "configmap")
    elif kind == "Service" and spec_of(obj).get("type") == "LoadBalancer":
        cfg.services.append(obj)
    elif kind == "Node":
        cfg.nodes.append(obj)
        _read_node_args(meta, cfg)
    if kind in ("DaemonSet", "Pod") and (
        name.startswith("svclb-") or _SVCLB_LABEL in labels
    ):
        cfg.svclb.append(f"{kind.lower()}/{name}")
    if not kind:
        for value in _config_inline(obj):
            cfg.legacy += _legacy_pools(value, "configInline")
        args = config_args(obj)
        if args and not flag_in(args, "server"):
            cfg.k3s_servers.append(args)
    elif kind == "HelmRelease":
        for value in _config_inline(obj):
            cfg.legacy += _legacy_pools(value, "configInline")


def flag_in(args: list[str], name: str) -> bool:
    return any(a.split("=", 1)[0] == f"--{name}" for a in args)


def _read_node_args(meta: dict[str, Any], cfg: Config) -> None:
    raw = mapping(meta, "annotations").get("k3s.io/node-args")
    try:
        args = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        args = None
    if isinstance(args, list) and args and args[0] == "server":
        cfg.k3s_servers.append([str(a) for a in args])


def read_config(text: str) -> Config:
    cfg = Config()
    for obj in objects(load_documents(text)):
        _read_object(obj, cfg)
    known = {svc_name(svc) for svc in cfg.services}
    for svc in _table_services(text):
        name = svc_name(svc)
        if name not in known and f"default/{name.split('/')[-1]}" not in known:
            cfg.services.append(svc)
            known.add(name)
    return cfg


def _table_services(text: str) -> list[dict[str, Any]]:
    """LoadBalancer Services of ``kubectl get svc`` tables, as Service objects."""
    if "LoadBalancer" not in text:
        return []
    from meshstack.analyzers import kube_output  # kube-output reads this kind too

    out = []
    for row in kube_output.parse(text).rows:
        if row.table != "services" or row.cells.get("TYPE") != "LoadBalancer":
            continue
        ips = row.cells.get("EXTERNAL-IP", "").split(",")
        ingress = [{"ip": ip.strip()} for ip in ips if ip.strip()[:1] not in "<"]
        out.append(
            {
                "kind": "Service",
                "metadata": {"name": row.name, "namespace": row.namespace or "default"},
                "spec": {"type": "LoadBalancer"},
                "status": {"loadBalancer": {"ingress": ingress}},
            }
        )
    return out


def svc_name(svc: dict[str, Any]) -> str:
    meta = meta_of(svc)
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
