"""MetalLB's pools and advertisements are the profile's, in a form its version reads."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.lb


def test_pools_and_advertisements_match_the_profile(lb: Any) -> None:
    finding = lb.judge_config()
    gathered = str(finding.details.pop("gathered", ""))
    judge(finding, attachments={"MetalLB objects (YAML)": gathered})
