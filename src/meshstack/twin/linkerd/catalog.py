"""The check categories `linkerd check` runs, by mode (--pre, default, --proxy).

Descriptions and hint anchors are Linkerd 2.14's; each function reads the cluster
through the official client and raises :class:`CheckError` with the CLI's wording.
"""

from __future__ import annotations

import base64

from meshstack.twin.linkerd import checks as ck
from meshstack.twin.linkerd.checks import Checker, CheckError, Spec
from meshstack.twin.linkerd.kube import ApiException
from meshstack.twin.linkerd.manifests import COMPONENTS, CP_LABEL, CRD_NAMES

_CP_CLUSTER_ROLES = [f"linkerd-linkerd-{c}" for c in (*COMPONENTS, "heartbeat")]
_NAMESPACED = (
    ("ServiceAccounts", "", "serviceaccounts"),
    ("Services", "", "services"),
    ("Deployments", "apps", "deployments"),
    ("CronJobs", "batch", "cronjobs"),
    ("ConfigMaps", "", "configmaps"),
    ("Secrets", "", "secrets"),
)


def _allowed(
    c: Checker, verb: str, group: str, resource: str, ns: str = "", name: str = ""
) -> tuple[bool, str]:
    from kubernetes import client

    attrs = client.V1ResourceAttributes(
        verb=verb,
        group=group,
        resource=resource,
        namespace=ns or None,
        name=name or None,
    )
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)
    )
    status = c.k.authz.create_self_subject_access_review(review).status
    return bool(status.allowed), str(status.reason or "")


def _gk(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


# --- pre-kubernetes-setup --------------------------------------------------------


def _ns_absent(c: Checker) -> None:
    try:
        c.k.core.read_namespace(c.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    raise CheckError(f'The "{c.namespace}" namespace already exists')


def _cluster_scoped(c: Checker) -> list[tuple[str, str, str, str]]:
    objs = [("Namespace", c.namespace, "", "namespaces")]
    objs += [
        ("ClusterRole", n, "rbac.authorization.k8s.io", "clusterroles")
        for n in _CP_CLUSTER_ROLES
    ]
    objs += [
        ("ClusterRoleBinding", n, "rbac.authorization.k8s.io", "clusterrolebindings")
        for n in _CP_CLUSTER_ROLES
    ]
    objs.append(
        (
            "MutatingWebhookConfiguration",
            "linkerd-proxy-injector-webhook-config",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
        )
    )
    return objs


def _can_create_cluster_scoped(c: Checker) -> None:
    user, errors = c.k.user(), []
    for kind, name, group, resource in _cluster_scoped(c):
        ok, _ = _allowed(c, "create", group, resource)
        if not ok:
            errors.append(
                f"cannot create {kind}/{name}: {_gk(group, resource)} is forbidden: "
                f'User "{user}" cannot create resource "{resource}" in API group '
                f'"{group}" at the cluster scope'
            )
        elif kind == "Namespace" and _exists_ns(c, name):
            errors.append(
                f'cannot create {kind}/{name}: namespaces "{name}" already exists'
            )
    if errors:
        raise CheckError("\n    ".join(errors))


def _exists_ns(c: Checker, name: str) -> bool:
    try:
        c.k.core.read_namespace(name)
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def _can_create(group: str, resource: str):
    def run(c: Checker) -> None:
        ok, why = _allowed(c, "create", group, resource, c.namespace)
        if not ok:
            suffix = f": {why}" if why else ""
            raise CheckError(f"not authorized to access {_gk(group, resource)}{suffix}")

    return run


def _can_read(resource: str, ns: str = "", name: str = ""):
    def run(c: Checker) -> None:
        ok, why = _allowed(c, "get", "", resource, ns or c.namespace, name)
        if not ok:
            raise CheckError(
                f"not authorized to access {resource}" + (f": {why}" if why else "")
            )

    return run


def _clock_skew(c: Checker) -> None:
    skewed = []
    now = c.now()
    for node in c.k.core.list_node().items:
        for cond in node.status.conditions or []:
            beat = cond.last_heartbeat_time
            if (
                cond.type == "Ready"
                and beat is not None
                and abs(now - beat) > ck.SKEW_TOLERANCE
            ):
                skewed.append(node.metadata.name)
    if skewed:
        raise CheckError(f"clock skew detected for node(s): {', '.join(skewed)}")


def pre_setup() -> tuple[str, list[Spec]]:
    specs = [
        Spec("control plane namespace does not already exist", "pre-ns", _ns_absent),
        Spec(
            "can create non-namespaced resources",
            "pre-k8s-cluster-k8s",
            _can_create_cluster_scoped,
        ),
    ]
    specs += [
        Spec(f"can create {label}", "pre-k8s", _can_create(g, r))
        for label, g, r in _NAMESPACED
    ]
    specs += [
        Spec("can read Secrets", "pre-k8s", _can_read("secrets")),
        Spec(
            "can read extension-apiserver-authentication configmap",
            "pre-k8s",
            _can_read(
                "configmaps", "kube-system", "extension-apiserver-authentication"
            ),
        ),
        Spec("no clock skew detected", "pre-k8s-clock-skew", _clock_skew, warning=True),
    ]
    return ("pre-kubernetes-setup", specs)


# --- linkerd-config / linkerd-existence ------------------------------------------


def _ns_exists(c: Checker) -> None:
    if not _exists_ns(c, c.namespace):
        raise CheckError(f'The "{c.namespace}" namespace does not exist')


def _missing(kind: str, want: list[str], have: set[str]) -> None:
    gone = [n for n in want if n not in have]
    if gone:
        raise CheckError(f"missing {kind}: {', '.join(gone)}")


def _cluster_roles(c: Checker) -> None:
    have = {r.metadata.name for r in c.k.rbac.list_cluster_role().items}
    _missing("ClusterRoles", _CP_CLUSTER_ROLES, have)


def _cluster_role_bindings(c: Checker) -> None:
    have = {r.metadata.name for r in c.k.rbac.list_cluster_role_binding().items}
    _missing("ClusterRoleBindings", _CP_CLUSTER_ROLES, have)


def _service_accounts(c: Checker) -> None:
    items = c.k.core.list_namespaced_service_account(c.namespace).items
    want = [f"linkerd-{n}" for n in (*COMPONENTS, "heartbeat")]
    _missing("ServiceAccounts", want, {s.metadata.name for s in items})


def _crds(c: Checker) -> None:
    have = {d.metadata.name for d in c.k.ext.list_custom_resource_definition().items}
    _missing(
        "CustomResourceDefinitions", [f"{p}.{g}" for p, g, _, _ in CRD_NAMES], have
    )


def _webhooks(c: Checker) -> None:
    items = c.k.admission.list_mutating_webhook_configuration().items
    have = {w.metadata.name for w in items}
    _missing(
        "MutatingWebhookConfigurations", ["linkerd-proxy-injector-webhook-config"], have
    )


def config_checks() -> tuple[str, list[Spec]]:
    return (
        "linkerd-config",
        [
            Spec(
                "control plane Namespace exists",
                "l5d-existence-ns",
                _ns_exists,
                fatal=True,
            ),
            Spec(
                "control plane ClusterRoles exist", "l5d-existence-cr", _cluster_roles
            ),
            Spec(
                "control plane ClusterRoleBindings exist",
                "l5d-existence-crb",
                _cluster_role_bindings,
            ),
            Spec(
                "control plane ServiceAccounts exist",
                "l5d-existence-sa",
                _service_accounts,
            ),
            Spec(
                "control plane CustomResourceDefinitions exist",
                "l5d-existence-crd",
                _crds,
            ),
            Spec(
                "control plane MutatingWebhookConfigurations exist",
                "l5d-existence-mwc",
                _webhooks,
            ),
        ],
    )


def _config_map(c: Checker) -> None:
    c.values()


def _unschedulable(c: Checker) -> None:
    for pod in c.k.core.list_namespaced_pod(c.namespace).items:
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                raise CheckError(f"{pod.metadata.name}: {cond.message}")


def pods_ready(c: Checker, ns: str, label: str, names: list[str]) -> None:
    pods = c.k.core.list_namespaced_pod(ns, label_selector=label).items
    for name in names:
        mine = [p for p in pods if p.metadata.name.startswith(f"{name}-")]
        running = [p for p in mine if p.status.phase == "Running"]
        if not running:
            raise CheckError(f'No running pods for "{name}"')
        for pod in running:
            for st in pod.status.container_statuses or []:
                if not st.ready:
                    raise CheckError(
                        f"pod/{pod.metadata.name} container {st.name} is not ready"
                    )


def _cp_ready(c: Checker) -> None:
    pods_ready(c, c.namespace, CP_LABEL, [f"linkerd-{n}" for n in COMPONENTS])


def existence_checks() -> tuple[str, list[Spec]]:
    return (
        "linkerd-existence",
        [
            Spec(
                "'linkerd-config' config map exists",
                "l5d-existence-linkerd-config",
                _config_map,
                fatal=True,
            ),
            Spec(
                "heartbeat ServiceAccount exist",
                "l5d-existence-heartbeat-sa",
                lambda c: c.k.core.read_namespaced_service_account(
                    "linkerd-heartbeat", c.namespace
                ),
            ),
            Spec(
                "no unschedulable pods",
                "l5d-existence-unschedulable-pods",
                _unschedulable,
                retry=True,
            ),
            Spec(
                "control plane pods are ready",
                "l5d-api-control-ready",
                _cp_ready,
                fatal=True,
                retry=True,
            ),
        ],
    )


# --- linkerd-identity and webhook certificates -----------------------------------


def identity_checks() -> tuple[str, list[Spec]]:
    def issuer_valid(c: Checker) -> None:
        ck._pem_validity(c, ck.issuer_pem(c), "issuer certificate")

    def issuer_soon(c: Checker) -> None:
        ck._pem_expiring(c, ck.issuer_pem(c), "issuer certificate")

    def config_valid(c: Checker) -> None:
        ck.certs.validity(ck.anchors_pem(c))
        ck.certs.validity(ck.issuer_pem(c))

    return (
        "linkerd-identity",
        [
            Spec(
                "certificate config is valid",
                "l5d-identity-cert-config-valid",
                config_valid,
                fatal=True,
            ),
            Spec(
                "trust anchors are within their validity period",
                "l5d-identity-trustAnchors-are-time-valid",
                ck._anchors_valid,
            ),
            Spec(
                "trust anchors are valid for at least 60 days",
                "l5d-identity-trustAnchors-not-expiring-soon",
                ck._anchors_expiring,
                True,
            ),
            Spec(
                "issuer cert is within its validity period",
                "l5d-identity-issuer-cert-is-time-valid",
                issuer_valid,
            ),
            Spec(
                "issuer cert is valid for at least 60 days",
                "l5d-identity-issuer-cert-not-expiring-soon",
                issuer_soon,
                True,
            ),
            Spec(
                "issuer cert is issued by the trust anchor",
                "l5d-identity-issuer-cert-issued-by-trust-anchor",
                ck._issued_by_anchor,
            ),
        ],
    )


def _injector_pem(c: Checker) -> str:
    secret = c.k.core.read_namespaced_secret(
        "linkerd-proxy-injector-k8s-tls", c.namespace
    )
    return base64.b64decode((secret.data or {}).get("tls.crt", "")).decode()


def webhook_checks() -> tuple[str, list[Spec]]:
    return (
        "linkerd-webhooks-and-apisvc-tls",
        [
            Spec(
                "proxy-injector webhook has valid cert",
                "l5d-proxy-injector-webhook-cert-valid",
                lambda c: ck._pem_validity(c, _injector_pem(c), "certificate"),
            ),
            Spec(
                "proxy-injector cert is valid for at least 60 days",
                "l5d-proxy-injector-webhook-cert-not-expiring-soon",
                lambda c: ck._pem_expiring(c, _injector_pem(c), "certificate"),
                True,
            ),
        ],
    )
