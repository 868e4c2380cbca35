"""The Linkerd twin's view of the cluster: the official client, built from one file.

The twin never falls back to ``~/.kube/config``: a kubeconfig must be named with
``--kubeconfig`` or ``KUBECONFIG`` (the first file of a list), as the harness
always does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from meshstack.providers.kube_apply import KubeClient

__all__ = ["ApiException", "Kube", "NoKubeconfig", "connect"]


class NoKubeconfig(Exception):
    """No kubeconfig was named; the twin will not guess one."""


@dataclass
class Kube(KubeClient):
    """The harness's client for one kubeconfig, with the further API groups the
    checks read; typed loosely (``Any``) because the checks read optional model
    fields the way the real CLI does."""

    path: str = ""

    @property
    def ext(self) -> Any:
        return client.ApiextensionsV1Api(self.api)

    @property
    def rbac(self) -> Any:
        return client.RbacAuthorizationV1Api(self.api)

    @property
    def admission(self) -> Any:
        return client.AdmissionregistrationV1Api(self.api)

    @property
    def authz(self) -> Any:
        return client.AuthorizationV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def user(self) -> str:
        """The kubeconfig's user name, as forbidden messages would show it."""
        try:
            _, active = config.list_kube_config_contexts(config_file=self.path)
            return str(active["context"].get("user", "unknown"))
        except Exception:  # only decorates a message
            return "unknown"


def kubeconfig_path(flag: str | None) -> str:
    path = flag or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if not path:
        raise NoKubeconfig(
            "no kubeconfig given: pass --kubeconfig=<file> or set KUBECONFIG "
            "(this CLI never reads ~/.kube/config)"
        )
    return path


def connect(flag: str | None) -> Kube:
    path = kubeconfig_path(flag)
    api = config.new_client_from_config(config_file=path)
    return Kube(api=api, path=path)


def plain(obj: Any) -> Any:
    """A client model as the plain JSON the API server sent."""
    return client.ApiClient().sanitize_for_serialization(obj)
