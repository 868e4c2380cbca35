"""Pure analyzers: evidence in, :class:`~meshstack.verdicts.Finding` out.

Each analyzer module defines one kind of evidence and registers it with
:func:`register`. An analyzer never touches the network, the clock (it receives
``Context.now``) or any provider: the same code judges what a live suite gathered
and what a user captured elsewhere (``meshstack analyze``).

The registry is filled lazily, so importing this package is cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from meshstack.verdicts import Finding

# Every module that defines kinds. Order matters only for detection ties: more
# specific detectors come first.
_MODULES = (
    "linkerd_check",
    "linkerd_stat",
    "proxy_log",
    "injector_log",
    "metallb_config",
    "kube_apply_error",
    "kube_output",
    "k3s_log",
    "zerotier_member",
    "zerotier_cli",
    "ip_link",
    "openstack_error",
    "microstack_log",
    "prometheus_response",
    "locust_history",
    "locust_stats",
    "locust_log",
    "allure_results",
)


@dataclass
class Context:
    """What an analyzer may need beyond the evidence itself.

    Every field is optional: an analyzer judges what it can without a field and
    says in a hint what it could not judge, or returns INCONCLUSIVE
    ``context_missing`` where nothing can be judged without it.
    """

    now: datetime | None = None
    target_rps: float | None = None
    tolerance: float = 0.05
    min_sample: int = 100
    metallb_version: str | None = None
    overlay_cidr: str | None = None
    cni_namespace: str | None = None
    # Free-form extras a live suite may pass (expected nodes, pools, windows ...).
    extra: dict[str, object] = field(default_factory=dict)


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode(data: bytes) -> str:
    """Text from bytes as tools and editors write them: UTF-8, or by byte-order mark.

    PowerShell's ``>`` writes UTF-16 with a mark; Windows editors put a mark before
    UTF-8. Anything undecodable is replaced, never fatal.
    """
    for mark, codec in _BOMS:
        if data.startswith(mark):
            return data.decode(codec, errors="replace")
    return data.decode("utf-8", errors="replace")


@dataclass
class Evidence:
    """One artifact: its text, or for directory kinds the directory itself."""

    text: str
    name: str = "-"
    path: Path | None = None

    @classmethod
    def from_path(cls, path: Path, name: str | None = None) -> Evidence:
        if path.is_dir():
            return cls(text="", name=name or str(path), path=path)
        return cls(
            text=decode(path.read_bytes()),
            name=name or str(path),
            path=path,
        )


Detector = Callable[[Evidence], float]
Judge = Callable[[Evidence, Context], Finding]


@dataclass(frozen=True)
class Kind:
    """A kind of evidence: its name, layer, how to recognise it, how to judge it.

    ``detect`` returns a confidence in [0, 1]; 0 means "not this kind". ``judge``
    must return a finding even for input that is not of its kind (HARNESS-ERROR
    ``unrecognised_input``), and must never raise on arbitrary text.
    """

    name: str
    layer: str
    summary: str
    detect: Detector
    judge: Judge
    directory: bool = False
    # For a directory kind: the endings of the files a judgement reads, which a
    # run's bundle copies (empty: every file).
    keeps: tuple[str, ...] = ()


_KINDS: dict[str, Kind] = {}
_loaded = False

# Called with every judgement made through get() while set (the live run's bundle).
Recorder = Callable[["Kind", Evidence, Context, Finding], None]
_recorder: Recorder | None = None


def set_recorder(recorder: Recorder | None) -> None:
    """Record every judgement made through :func:`get` (None stops recording)."""
    global _recorder
    _recorder = recorder


def _recording(kind: Kind) -> Kind:
    def judge(evidence: Evidence, ctx: Context) -> Finding:
        finding = kind.judge(evidence, ctx)
        if _recorder is not None:
            _recorder(kind, evidence, ctx, finding)
        return finding

    return dataclasses.replace(kind, judge=judge)


def register(kind: Kind) -> Kind:
    if kind.name in _KINDS:
        raise ValueError(f"kind {kind.name!r} registered twice")
    _KINDS[kind.name] = kind
    return kind


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for mod in _MODULES:
        importlib.import_module(f"{__name__}.{mod}")
    _loaded = True


def kinds() -> dict[str, Kind]:
    _load()
    return dict(_KINDS)


def layer_of(kind: str | None) -> str:
    """The layer a kind of evidence belongs to ("unknown" for none or no such)."""
    _load()
    found = _KINDS.get(kind or "")
    return found.layer if found is not None else "unknown"


def get(name: str, record: bool = True) -> Kind:
    """The kind ``name``; its judgements are recorded (see :func:`set_recorder`)
    unless ``record`` is false: for a judgement that only decides whether to try
    again, which is no verdict of the run."""
    _load()
    kind = _KINDS[name]
    return kind if _recorder is None or not record else _recording(kind)


def detect(evidence: Evidence, threshold: float = 0.5) -> Kind | None:
    """The kind this evidence most likely is, or None."""
    _load()
    best: tuple[float, Kind] | None = None
    for kind in _KINDS.values():
        if kind.directory != (evidence.path is not None and evidence.path.is_dir()):
            continue
        try:
            score = kind.detect(evidence)
        except Exception:  # a detector must never decide by crashing
            score = 0.0
        if score >= threshold and (best is None or score > best[0]):
            best = (score, kind)
    return best[1] if best else None


def unrecognised(evidence: Evidence, expected: str | None = None) -> Finding:
    """HARNESS-ERROR for input of no known kind, or not of the kind declared."""
    f = Finding(layer=layer_of(expected), kind=expected or "")
    if expected:
        todo = (
            f"the input is not {expected} output; check that it is the whole output "
            "this kind reads (`meshstack analyze --list-kinds` says what each reads)"
        )
    else:
        todo = (
            "the input is not of any known kind; check the file, or name its kind "
            "with --kind (see --list-kinds)"
        )
    f.add("unrecognised_input", f"{evidence.name}: {todo}")
    return f


def analyze(evidence: Evidence, ctx: Context, kind: str | None = None) -> Finding:
    """Judge one piece of evidence, detecting its kind unless one is given."""
    k = get(kind) if kind else detect(evidence)
    if k is None:
        return unrecognised(evidence)
    if kind and k.detect(evidence) <= 0.0:
        return unrecognised(evidence, expected=kind)
    finding = k.judge(evidence, ctx)
    finding.kind = finding.kind or k.name
    return finding
