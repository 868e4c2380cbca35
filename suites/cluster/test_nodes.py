"""Every k3s node is registered, Ready in its role, on its overlay address."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.cluster


def _attachments(cluster: Any) -> dict[str, str]:
    return {
        "kubectl get nodes -o wide": cluster.nodes_table(),
        "cluster outputs (JSON)": json.dumps(cluster.state.outputs, indent=2),
    }


@pytest.mark.dependency(name="cluster_nodes_ready")
def test_every_installed_node_is_ready_in_its_role(cluster: Any) -> None:
    judge(cluster.judge("nodes"), attachments=_attachments(cluster))


@pytest.mark.dependency(depends=["cluster_nodes_ready"])
def test_node_and_api_addresses_lie_on_the_overlay(cluster: Any) -> None:
    finding = cluster.judge("addresses")
    judge(finding, attachments={"addresses": "\n".join(finding.evidence)})
