"""A LoadBalancer Service gets a pool address in time, and that address answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.lb


# No pytest-dependency marker on the components check: it lives in another module,
# which pytest-dependency cannot order; the layer's recorded health gates this.
def test_a_load_balancer_service_gets_a_pool_address_that_answers(lb: Any) -> None:
    finding = lb.judge_allocation()
    events = "\n".join(finding.details.get("events") or []) or "(no events)"
    judge(
        finding,
        attachments={
            "service events": events,
            "details": json.dumps(finding.details, indent=2, default=str),
        },
    )
