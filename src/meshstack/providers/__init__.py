"""Layer providers: the library's view of each layer of a stack.

A provider for layer ``L`` named ``N`` in a profile lives in the module
``meshstack.providers.L_N`` and exports its class as ``PROVIDER`` and, optionally,
the schema of its settings as ``SETTINGS_SCHEMA`` (see ``meshstack.profile.check``).
A provider of another package is named ``package.module:`` (trailing colon) and
follows the same contract.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def load_module(layer: str, name: str) -> ModuleType:
    """The provider module for a layer; ImportError names the missing module."""
    if name.endswith(":"):
        return importlib.import_module(name[:-1])
    if not name.replace("_", "").isalnum():
        raise ImportError(f"provider name {name!r} is not a plain identifier")
    return importlib.import_module(f"{__name__}.{layer}_{name}")


def load(layer: str, name: str) -> Any:
    """The provider class for a layer."""
    return load_module(layer, name).PROVIDER
