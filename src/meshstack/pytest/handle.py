"""What the ``stack`` fixture hands to the layer fixtures: the run's stack, gated.

Every provider asked for through it is first checked against the recorded health
of the layers below (BLOCKED when one is unhealthy), so a layer fixture never
reaches a layer that cannot be judged.
"""

from __future__ import annotations

from typing import Any

import pytest

from meshstack.stack import Stack


class StackHandle:
    """What the ``stack`` fixture hands to the layer fixtures."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @property
    def profile(self) -> Any:
        return self.stack.profile

    def provider(self, layer: str) -> Any:
        """The layer's provider; skips BLOCKED when a lower layer is unhealthy."""
        self.stack.state.reload_health()
        block = self.stack.blocked(layer)
        if block is not None:
            pytest.skip(block.message(layer))
        if layer not in self.stack.profile.layers:
            pytest.skip(
                f"the profile {self.stack.profile.path} configures no {layer} layer; "
                f"add layers.{layer} to it or pass another --stack-profile"
            )
        return self.stack.provider(layer)

    def once(self, key: str, fn: Any) -> Any:
        return self.stack.once(key, fn)

    def record_health(self, layer: str, finding: Any) -> None:
        self.stack.record_health(layer, finding)
