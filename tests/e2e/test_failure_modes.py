"""Each real cause, present on the local stack, gives its case's verdict.

Steps, per case: build a fresh stack from the failure-mode profile (the cause is in
its inputs, not in the harness); check that the matching layer's check fails with the
case's reason code, that every check above it is BLOCKED naming that layer, and that
the run removed everything it made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import by_layer, leftovers, run_suites

LAYERS = ("cloud", "overlay", "cluster", "lb", "mesh", "apps", "load", "slo")

CASES = [
    # profile, failing layer, reason codes the failing check must name
    ("local-c08-servicelb", "lb", ["k3s_servicelb_active_with_metallb"]),
    ("local-c09-legacy-configmap", "lb", ["legacy_configmap_ignored"]),
    ("local-c10-no-advertisement", "lb", ["pool_not_advertised"]),
    ("local-c29-misplaced-annotation", "mesh", ["not_meshed", "annotation_misplaced"]),
]

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("profile", "layer", "codes"), CASES, ids=[c[0] for c in CASES]
)
def test_a_real_cause_fails_its_layer_with_the_case_code_and_blocks_the_layers_above(
    local_stack: Any, tmp_path: Path, profile: str, layer: str, codes: list[str]
) -> None:
    run = run_suites(
        tmp_path, "--stack=fresh", f"--stack-profile=stacks/{profile}.yaml"
    )
    assert run.exit_status == 1, run.tail()
    layers = by_layer(run.junit())
    failed = [c for c in layers.get(layer, []) if c["outcome"] == "failed"]
    assert failed, f"no {layer} check failed:\n{run.tail()}"
    named = "\n".join(c["message"] for c in failed)
    for code in codes:
        assert code in named, (
            f"{code} not named by the failing {layer} checks:\n{named}"
        )
    for above in LAYERS[LAYERS.index(layer) + 1 :]:
        cases = layers.get(above, [])
        assert cases, f"no {above} checks were collected"
        for case in cases:
            assert case["outcome"] == "skipped", case
            assert f"BLOCKED: {above} needs {layer}" in case["message"], case
    assert leftovers(run.run_id) == []
