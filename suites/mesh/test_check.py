"""`linkerd check` finds the control plane (and viz) healthy."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.mesh


@pytest.mark.dependency(name="mesh_check")
def test_linkerd_check_passes(mesh: Any) -> None:
    text, finding = mesh.judge_check()
    judge(finding, attachments={"linkerd check -o json": text})
