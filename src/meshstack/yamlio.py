"""YAML in and out through libyaml when PyYAML was built with it.

The pure-Python loader and dumper are several times slower; a run reads and writes
MetalLB objects, manifests and attachments by the thousand lines, so the harness
uses these helpers on those paths. Both loaders are safe loaders: no tags that
build Python objects, and their errors are the same ``yaml.YAMLError`` kinds, with
line marks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=_Loader)  # noqa: S506 - a safe loader


def dump(data: Any, **kwargs: Any) -> str:
    return str(yaml.dump(data, Dumper=_Dumper, **kwargs))
