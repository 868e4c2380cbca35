"""k3s's own components in kube-system run and report Ready."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.cluster


def test_the_system_pods_are_ready(cluster: Any) -> None:
    judge(
        cluster.judge("system_pods"),
        attachments={"kubectl -n kube-system get pods -o wide": cluster.pods_table()},
    )
