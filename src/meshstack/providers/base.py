"""What every layer provider is: provision, probe, gather, tear down.

A provider is the library's view of one layer of one stack. It never imports pytest
and never reads pytest options: it gets its settings (the profile's section for its
layer), the run's :class:`StackContext` and nothing else.

Providers write every resource they create into the state file *before* they wait
for it to become usable, so that a crash, a failed wait or Ctrl-C still leaves a
record from which ``teardown`` (or ``meshstack down``) removes exactly that.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from meshstack.verdicts import Finding

log = logging.getLogger(__name__)


class ProviderError(Exception):
    """The layer could not be provisioned or reached; carries a finding."""

    def __init__(self, finding: Finding, message: str) -> None:
        super().__init__(message)
        self.finding = finding


@dataclass
class LayerState:
    """What one layer made and what it offers the layers above it.

    ``resources`` lists what this run created, in creation order, each a dict with
    at least ``type`` and ``id``; ``outputs`` holds what layers above need
    (addresses, kubeconfig path, node names).
    """

    layer: str
    provisioned_by: str | None = None  # run id that created it, None if attached
    resources: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "provisioned_by": self.provisioned_by,
            "resources": self.resources,
            "outputs": self.outputs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerState:
        return cls(
            layer=data["layer"],
            provisioned_by=data.get("provisioned_by"),
            resources=list(data.get("resources", [])),
            outputs=dict(data.get("outputs", {})),
        )


@dataclass
class StackContext:
    """The run as a provider sees it.

    ``save`` persists the state file (call it after every ``record``), ``progress``
    shows a step in the terminal, ``secret`` resolves a secret the profile names
    (``{"env": NAME}`` or ``{"file": PATH}``) or raises ``ProviderError`` with
    HARNESS-ERROR ``credentials_missing``. ``path`` resolves a path the profile
    names, relative to the profile file.
    """

    run_id: str
    profile_path: Path
    workdir: Path
    layers: dict[str, LayerState]
    save: Callable[[], None]
    progress: Callable[[str, str], None]
    secret: Callable[[Any, str], str]
    path: Callable[[str], Path]
    bundle_dir: Path | None = None

    def state(self, layer: str) -> LayerState:
        if layer not in self.layers:
            self.layers[layer] = LayerState(layer=layer)
        return self.layers[layer]

    def outputs(self, layer: str) -> dict[str, Any]:
        """What a lower layer offers; empty if it was never provisioned."""
        return self.state(layer).outputs

    def record(self, layer: str, type_: str, id_: str, **attrs: Any) -> None:
        """Write down a resource this run created, then persist the state."""
        entry = {"type": type_, "id": id_, "run_id": self.run_id, **attrs}
        self.state(layer).resources.append(entry)
        self.save()

    def forget(self, layer: str, type_: str, id_: str) -> None:
        st = self.state(layer)
        st.resources = [
            r for r in st.resources if not (r["type"] == type_ and r["id"] == id_)
        ]
        self.save()

    def save_artifact(self, name: str, text: str) -> Path | None:
        """Keep a gathered artifact in the run's bundle (one file per artifact)."""
        if self.bundle_dir is None:
            return None
        self.bundle_dir.mkdir(parents=True, exist_ok=True)
        target = self.bundle_dir / name
        target.write_text(text, encoding="utf-8")
        return target


class Provider(abc.ABC):
    """One layer of one stack."""

    layer: ClassVar[str]

    def __init__(self, settings: dict[str, Any], ctx: StackContext) -> None:
        self.settings = settings
        self.ctx = ctx

    @property
    def state(self) -> LayerState:
        return self.ctx.state(self.layer)

    @abc.abstractmethod
    def provision(self) -> None:
        """Create what the layer needs; safe to call on a half-made layer."""

    @abc.abstractmethod
    def probe(self) -> Finding:
        """Judge the layer's health cheaply: PASS or WARN means usable."""

    @abc.abstractmethod
    def teardown(self) -> None:
        """Remove what the state says this harness created, newest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""
