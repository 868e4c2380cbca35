"""What the Linkerd twin's ``install --crds``, ``install`` and ``viz install`` print.

The objects mirror the shape of Linkerd 2.14's manifests where the rest of the
stack reads them: namespace labels and annotations, the ``linkerd-config``
ConfigMap with the trust anchor, the issuer Secret, the controller Deployments
(one image, ``cr.l5d.io/linkerd/controller``, told its component by its first
argument), the proxy injector's MutatingWebhookConfiguration, and the viz namespace
labelled as an extension.

# TODO: the control-plane and viz pods carry no linkerd-proxy sidecar and no
# linkerd-init container (real installs inject both); "control plane proxies" and
# "viz extension proxies" checks therefore have nothing to look at.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from meshstack.twin.linkerd.certs import KeyPair, webhook_pair

NS = "linkerd"
VIZ_NS = "linkerd-viz"
REGISTRY = "cr.l5d.io/linkerd"
CP_LABEL = "linkerd.io/control-plane-component"
CRD_NAMES = (
    ("serviceprofiles", "linkerd.io", "ServiceProfile", "v1alpha2"),
    ("servers", "policy.linkerd.io", "Server", "v1beta1"),
    ("serverauthorizations", "policy.linkerd.io", "ServerAuthorization", "v1beta1"),
    ("authorizationpolicies", "policy.linkerd.io", "AuthorizationPolicy", "v1alpha1"),
    ("httproutes", "policy.linkerd.io", "HTTPRoute", "v1beta3"),
)
# component -> (container ports, admin port); the admin port serves /ready
COMPONENTS = {
    "identity": ({"grpc": 8080, "admin-http": 9990}, 9990),
    "destination": ({"grpc": 8086, "admin-http": 9996}, 9996),
    "proxy-injector": ({"proxy-injector": 8443, "admin-http": 9995}, 9995),
}
VIZ_COMPONENTS = {
    "metrics-api": ({"http": 8085, "admin-http": 9995}, 9995),
    "tap": ({"grpc": 8088, "apiserver": 8089, "admin-http": 9998}, 9998),
    "web": ({"http": 8084, "admin-http": 9994}, 9994),
}


def dump(objects: list[dict[str, Any]]) -> str:
    return "---\n" + "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)


def _meta(name: str, ns: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    meta.update(extra)
    return meta


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def crds(version: str) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions ``install --crds`` prints."""
    out = []
    for plural, group, kind, ver in CRD_NAMES:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        out.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": _meta(
                    f"{plural}.{group}",
                    labels={"linkerd.io/control-plane-ns": NS},
                    annotations={"linkerd.io/created-by": f"linkerd/cli {version}"},
                ),
                "spec": {
                    "group": group,
                    "names": {"plural": plural, "kind": kind, "singular": kind.lower()},
                    "scope": "Namespaced",
                    "versions": [
                        {
                            "name": ver,
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": schema},
                        }
                    ],
                },
            }
        )
    return out


def _namespace(name: str, labels: dict[str, str], notes: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(name, labels=labels, annotations=notes),
    }


def _rbac(name: str, ns: str, sa: str, rules: list[dict[str, Any]]) -> list[dict]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(name, labels={"linkerd.io/control-plane-ns": NS}),
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name, labels={"linkerd.io/control-plane-ns": NS}),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": name,
        },
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    }
    return [role, binding]


_READ_ALL = [
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}
]
_EVENTS = [{"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]}]


def _deployment(
    name: str, ns: str, component: str, image: str, spec: tuple[dict[str, int], int]
) -> dict[str, Any]:
    ports, admin = spec
    labels = {CP_LABEL: component, "linkerd.io/control-plane-ns": NS}
    if ns == VIZ_NS:
        labels = {"linkerd.io/extension": "viz", "component": component}
    container = {
        "name": component,
        "image": image,
        "args": [component, "-log-level=info"],
        "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": admin}},
        "livenessProbe": {"httpGet": {"path": "/ping", "port": admin}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns, labels=dict(labels)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"serviceAccountName": name, "containers": [container]},
            },
        },
    }


def _service(name: str, ns: str, selector: dict, port: int, target: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, ns),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "main", "port": port, "targetPort": target}],
        },
    }


def _config(version: str, anchor: KeyPair, cni: bool) -> list[dict[str, Any]]:
    values = {
        "linkerdVersion": version,
        "controllerImage": f"{REGISTRY}/controller",
        "identityTrustDomain": "cluster.local",
        "identityTrustAnchorsPEM": anchor.cert_pem,
        "cniEnabled": cni,
        "proxy": {"image": {"name": f"{REGISTRY}/proxy", "version": version}},
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("linkerd-config", NS, labels={CP_LABEL: "controller"}),
            "data": {"values": yaml.safe_dump(values, sort_keys=False)},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("linkerd-identity-trust-roots", NS),
            "data": {"ca-bundle.crt": anchor.cert_pem},
        },
    ]


def _secret(name: str, ns: str, data: dict[str, str], type_: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": type_,
        "metadata": _meta(name, ns),
        "data": {k: _b64(v) for k, v in data.items()},
    }


def _injector_webhook(ca_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(
            "linkerd-proxy-injector-webhook-config", labels={CP_LABEL: "proxy-injector"}
        ),
        "webhooks": [
            {
                "name": "linkerd-proxy-injector.linkerd.io",
                "clientConfig": {
                    "service": {
                        "name": "linkerd-proxy-injector",
                        "namespace": NS,
                        "path": "/",
                        "port": 443,
                    },
                    "caBundle": _b64(ca_pem),
                },
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "config.linkerd.io/admission-webhooks",
                            "operator": "NotIn",
                            "values": ["disabled"],
                        },
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": ["kube-system", "cert-manager"],
                        },
                    ]
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods", "services"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "sideEffects": "None",
                "timeoutSeconds": 10,
            }
        ],
    }


def control_plane(
    version: str, anchor: KeyPair, issuer: KeyPair, cni: bool = False
) -> list[dict[str, Any]]:
    """Everything ``linkerd install`` prints (after the CRDs are in place)."""
    ns_labels = {
        "linkerd.io/is-control-plane": "true",
        "config.linkerd.io/admission-webhooks": "disabled",
        "linkerd.io/control-plane-ns": NS,
    }
    objs = [_namespace(NS, ns_labels, {"linkerd.io/inject": "disabled"})]
    for comp in ("identity", "destination", "proxy-injector", "heartbeat"):
        sa = f"linkerd-{comp}"
        objs.append(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(sa, NS)}
        )
        rules = _READ_ALL + (_EVENTS if comp in ("identity", "proxy-injector") else [])
        objs += _rbac(f"linkerd-{NS}-{comp}", NS, sa, rules)
    objs += _config(version, anchor, cni)
    objs.append(
        _secret(
            "linkerd-identity-issuer",
            NS,
            {"crt.pem": issuer.cert_pem, "key.pem": issuer.key_pem},
            "Opaque",
        )
    )
    ca, leaf = webhook_pair("linkerd-proxy-injector", NS)
    objs.append(
        _secret(
            "linkerd-proxy-injector-k8s-tls",
            NS,
            {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem},
            "kubernetes.io/tls",
        )
    )
    image = f"{REGISTRY}/controller:{version}"
    for comp, spec in COMPONENTS.items():
        objs.append(_deployment(f"linkerd-{comp}", NS, comp, image, spec))
    sel = {CP_LABEL: "identity"}
    objs.append(_service("linkerd-identity", NS, sel, 8080, 8080))
    objs.append(_service("linkerd-dst", NS, {CP_LABEL: "destination"}, 8086, 8086))
    objs.append(
        _service(
            "linkerd-proxy-injector",
            NS,
            {CP_LABEL: "proxy-injector"},
            443,
            "proxy-injector",
        )
    )
    objs.append(_injector_webhook(ca.cert_pem))
    return objs


def viz(version: str) -> list[dict[str, Any]]:
    """Everything ``linkerd viz install`` prints (Prometheus left out, see TODO)."""
    # TODO: viz's own Prometheus is not installed; the local stack's Prometheus
    # (Debian's) scrapes the proxies instead, so `viz stat` reads proxies directly.
    labels = {"linkerd.io/extension": "viz"}
    objs = [_namespace(VIZ_NS, labels, {"linkerd.io/inject": "enabled"})]
    for comp, spec in VIZ_COMPONENTS.items():
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(comp, VIZ_NS, labels=dict(labels)),
            }
        )
        objs += _rbac(f"linkerd-{VIZ_NS}-{comp}", VIZ_NS, comp, _READ_ALL)
        image = f"{REGISTRY}/{comp}:{version}"
        objs.append(_deployment(comp, VIZ_NS, comp, image, spec))
        port = next(iter(spec[0].values()))
        objs.append(_service(comp, VIZ_NS, {"component": comp}, port, port))
    for obj in objs[1:]:
        if obj["kind"].startswith("ClusterRole"):
            obj["metadata"]["labels"] = dict(labels)
    return objs
