"""Every application namespace's pods carry a healthy Linkerd proxy."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.mesh


def _namespaces(config: pytest.Config) -> list[str]:
    """The data-plane namespaces the profile names (mesh section, else the apps)."""
    try:
        from meshstack.pytest.plugin import SESSION

        layers = config.stash[SESSION].stack.profile.layers
    except (KeyError, AttributeError, ImportError):
        return []
    named = list((layers.get("mesh") or {}).get("data_plane_namespaces") or [])
    apps = (layers.get("apps") or {}).get("apps") or []
    return named or [a["namespace"] for a in apps if a.get("namespace")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "namespace" in metafunc.fixturenames:
        names = _namespaces(metafunc.config)
        metafunc.parametrize("namespace", names, ids=names)


def test_linkerd_check_proxy_passes_in_the_namespace(mesh: Any, namespace: str) -> None:
    text, finding = mesh.judge_proxy(namespace)
    judge(finding, attachments={f"linkerd check --proxy -n {namespace}": text})


def test_app_pods_carry_the_proxy(mesh: Any, namespace: str) -> None:
    attachments, finding = mesh.judge_meshed(namespace)
    judge(finding, attachments=attachments)
