"""MetalLB's controller and a speaker on every node are ready."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.lb


@pytest.mark.dependency(name="lb_components")
def test_the_controller_and_every_speaker_are_ready(lb: Any) -> None:
    finding = lb.judge_components()
    judge(finding, attachments={"pods": "\n".join(finding.evidence)})
