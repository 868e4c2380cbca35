"""Ctrl-C at any point of a fresh run still removes everything the run made.

Steps, per point: start `pytest suites --stack=fresh`, send SIGINT once the run's
progress shows it reached that point, wait for it to end, then look for anything
left that carries the run id (servers, images, networks, overlay networks) and for
a state file that still records resources.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import interrupt_when, leftovers

POINTS = [
    "[meshstack] overlay  provisioning",
    "[meshstack] cluster  provisioning",
    "[meshstack] mesh     provisioning",
]

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("marker", POINTS, ids=["overlay", "cluster", "mesh"])
def test_an_interrupted_fresh_run_leaves_nothing_behind(
    local_stack: Any, tmp_path: Path, marker: str
) -> None:
    run = interrupt_when(tmp_path, marker)
    assert run.exit_status == 2, run.tail()
    assert leftovers(run.run_id) == [], run.tail()
    state = tmp_path / "state.json"
    if state.exists():
        layers = json.loads(state.read_text())["layers"]
        assert all(not layer["resources"] for layer in layers.values()), layers
