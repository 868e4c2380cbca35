"""k3s's own service load balancer (servicelb) does not run beside MetalLB."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.lb


def test_k3s_servicelb_is_not_active_beside_metallb(lb: Any) -> None:
    finding = lb.judge_servicelb()
    judge(finding, attachments={"evidence": "\n".join(finding.evidence)})
