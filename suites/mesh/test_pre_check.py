"""`linkerd check --pre`, captured before install, found the cluster ready."""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.mesh


def test_the_pre_install_check_passed(mesh: Any) -> None:
    finding = mesh.judge_pre_check()
    text = str(mesh.state.outputs.get("pre_check") or "(not captured)")
    judge(finding, attachments={"linkerd check --pre": text})
