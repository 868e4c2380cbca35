"""Layer providers: the library's view of each layer of a stack.

A provider for layer ``L`` named ``N`` in a profile lives in the module
``meshstack.providers.L_N`` and exports its class as ``PROVIDER``.
"""

from __future__ import annotations

import importlib
from typing import Any


def load(layer: str, name: str) -> Any:
    """The provider class for a layer; ImportError names the missing module."""
    module = importlib.import_module(f"{__name__}.{layer}_{name}")
    return module.PROVIDER
