"""Each k3s node is told both its overlay address and its overlay interface."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.cluster


def test_node_ip_and_flannel_iface_are_given_together(cluster: Any) -> None:
    finding = cluster.judge("flags")
    judge(finding, attachments={"k3s node arguments": "\n".join(finding.evidence)})
