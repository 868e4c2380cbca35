"""Version, data-plane, CNI and viz check categories of the Linkerd twin's ``check``."""

from __future__ import annotations

from typing import Any

from meshstack.twin.linkerd.catalog import pods_ready
from meshstack.twin.linkerd.checks import (
    PROXY,
    Checker,
    CheckError,
    Spec,
    _channel_match,
)
from meshstack.twin.linkerd.manifests import VIZ_COMPONENTS, VIZ_NS

PROXY_VERSION = "linkerd.io/proxy-version"


def _cp_version(c: Checker) -> str:
    version = c.values().get("linkerdVersion")
    if not version:
        raise CheckError("linkerd-config has no linkerdVersion")
    return str(version)


def _cp_version_known(c: Checker) -> None:
    _cp_version(c)


def _cp_cli_match(c: Checker) -> None:
    cp = _cp_version(c)
    if cp != c.cli_version:
        raise CheckError(f"control plane running {cp} but cli running {c.cli_version}")


def version_checks() -> tuple[str, list[Spec]]:
    return (
        "control-plane-version",
        [
            Spec(
                "can retrieve the control plane version",
                "l5d-version-control",
                _cp_version_known,
                fatal=True,
            ),
            Spec(
                "control plane is up-to-date",
                "l5d-version-control",
                lambda c: _channel_match(c, _cp_version(c)),
                True,
            ),
            Spec(
                "control plane and cli versions match",
                "l5d-version-control",
                _cp_cli_match,
                True,
            ),
        ],
    )


# --- linkerd-data-plane ----------------------------------------------------------


def meshed_pods(c: Checker) -> list[Any]:
    core = c.k.core
    ns = c.data_namespace
    pods = (
        core.list_namespaced_pod(ns) if ns else core.list_pod_for_all_namespaces()
    ).items
    return [p for p in pods if any(x.name == PROXY for x in p.spec.containers or [])]


def _dp_ns(c: Checker) -> None:
    if not c.data_namespace:
        return
    try:
        c.k.core.read_namespace(c.data_namespace)
    except Exception:
        raise CheckError(f'The "{c.data_namespace}" namespace does not exist') from None


def _dp_ready(c: Checker) -> None:
    pods = meshed_pods(c)
    if not pods:
        where = f' in the "{c.data_namespace}" namespace' if c.data_namespace else ""
        raise CheckError(f'No "{PROXY}" containers found{where}')
    for pod in pods:
        name = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if pod.status.phase != "Running":
            raise CheckError(f'The "{name}" pod is not running')
        for st in pod.status.container_statuses or []:
            if st.name == PROXY and not st.ready:
                raise CheckError(f'The "{PROXY}" container in "{name}" is not ready')


def _proxy_version(pod: Any) -> str:
    return str((pod.metadata.annotations or {}).get(PROXY_VERSION, "unknown"))


def _dp_up_to_date(c: Checker) -> None:
    for pod in meshed_pods(c):
        _channel_match(c, _proxy_version(pod))


def _dp_cli_match(c: Checker) -> None:
    for pod in meshed_pods(c):
        version = _proxy_version(pod)
        if version != c.cli_version:
            name = f"{pod.metadata.namespace}/{pod.metadata.name}"
            raise CheckError(
                f"{name} running {version} but cli running {c.cli_version}"
            )


def data_plane_checks() -> tuple[str, list[Spec]]:
    return (
        "linkerd-data-plane",
        [
            Spec(
                "data plane namespace exists",
                "l5d-data-plane-exists",
                _dp_ns,
                fatal=True,
            ),
            Spec(
                "data plane proxies are ready",
                "l5d-data-plane-ready",
                _dp_ready,
                fatal=True,
                retry=True,
            ),
            Spec(
                "data plane is up-to-date",
                "l5d-data-plane-version",
                _dp_up_to_date,
                True,
            ),
            Spec(
                "data plane and cli versions match",
                "l5d-data-plane-cli-version",
                _dp_cli_match,
                True,
            ),
        ],
    )


# --- linkerd-cni-plugin ----------------------------------------------------------


def cni_enabled(c: Checker) -> bool:
    try:
        return bool(c.values().get("cniEnabled"))
    except Exception:  # no control plane: the CNI category does not apply
        return False


def cni_checks() -> tuple[str, list[Spec]]:
    def config_map(c: Checker) -> None:
        c.k.core.read_namespaced_config_map("linkerd-cni-config", c.cni_namespace)

    return (
        "linkerd-cni-plugin",
        [
            Spec(
                "cni plugin ConfigMap exists",
                "cni-plugin-cm-exists",
                config_map,
                fatal=True,
            ),
        ],
    )


# --- linkerd-viz -----------------------------------------------------------------


def _viz_ns(c: Checker) -> None:
    try:
        c.k.core.read_namespace(VIZ_NS)
    except Exception:
        raise CheckError("could not find the linkerd-viz extension") from None


def _viz_roles(kind: str):
    def run(c: Checker) -> None:
        lister = (
            c.k.rbac.list_cluster_role
            if kind == "ClusterRoles"
            else c.k.rbac.list_cluster_role_binding
        )
        have = {r.metadata.name for r in lister().items}
        want = [f"linkerd-{VIZ_NS}-{comp}" for comp in VIZ_COMPONENTS]
        gone = [n for n in want if n not in have]
        if gone:
            raise CheckError(f"missing {kind}: {', '.join(gone)}")

    return run


def _viz_running(c: Checker) -> None:
    pods_ready(c, VIZ_NS, "linkerd.io/extension=viz", list(VIZ_COMPONENTS))


def _viz_injected(c: Checker) -> None:
    for pod in c.k.core.list_namespaced_pod(VIZ_NS).items:
        if not any(x.name == PROXY for x in pod.spec.containers or []):
            raise CheckError(
                f"Could not find proxy container for {pod.metadata.name} pod"
            )


def viz_checks() -> tuple[str, list[Spec]]:
    # TODO: the tap APIService and the viz Prometheus checks are not modelled
    # (the twin serves no aggregated API and runs no viz Prometheus).
    return (
        "linkerd-viz",
        [
            Spec(
                "linkerd-viz Namespace exists", "l5d-viz-ns-exists", _viz_ns, fatal=True
            ),
            Spec(
                "linkerd-viz ClusterRoles exist",
                "l5d-viz-cr-exists",
                _viz_roles("ClusterRoles"),
            ),
            Spec(
                "linkerd-viz ClusterRoleBindings exist",
                "l5d-viz-crb-exists",
                _viz_roles("ClusterRoleBindings"),
            ),
            Spec(
                "viz extension pods are running",
                "l5d-viz-pods-running",
                _viz_running,
                retry=True,
            ),
            Spec(
                "linkerd-viz pods are injected", "l5d-viz-pods-injection", _viz_injected
            ),
        ],
    )
