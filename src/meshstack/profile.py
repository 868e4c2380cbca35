"""Stack and load profiles: YAML, validated, with errors that say where and what.

A stack profile names, per layer, a provider and its settings. Each provider module
may export ``SETTINGS_SCHEMA`` (see :func:`check`); the loader validates the
section with it, so a typo in ``stacks/edge-lab.yaml`` is reported as
``stacks/edge-lab.yaml: layers.lb.pools[0].addresses: expected a list, found 'x'``
before anything is built.

Secrets never live in a profile: a secret setting is ``{env: NAME}`` or
``{file: PATH}`` and is resolved only when a provider asks for it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshstack.verdicts import LAYERS


class ProfileError(Exception):
    """The profile is not valid; the message names file, key path and the fix."""


class SecretError(Exception):
    """A secret the profile names is absent or unreadable."""


Spec = Mapping[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "seconds": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "path": (str,),
    "cidr": (str,),
    "secret": (dict,),
    "any": (object,),
}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: Any, spec: Spec, where: str, errors: list[str]) -> Any:
    """Validate ``value`` against ``spec``; append messages; return it with defaults.

    A spec is ``{"type": ..., "required": bool, "default": v, "items": spec,
    "keys": {name: spec}, "choices": [...], "min": n}``; ``keys`` on a dict also
    rejects unknown keys unless ``"open": True``.
    """
    kind = spec.get("type", "any")
    if kind not in _TYPES:
        raise ValueError(f"schema at {where} has unknown type {kind!r}")
    if isinstance(value, bool) and kind in ("int", "float", "seconds"):
        errors.append(f"{where}: expected {kind}, found {_describe(value)}")
        return value
    if not isinstance(value, _TYPES[kind]):
        errors.append(f"{where}: expected {kind}, found {_describe(value)}")
        return value
    return _check_value(value, kind, spec, where, errors)


def _check_value(
    value: Any, kind: str, spec: Spec, where: str, errors: list[str]
) -> Any:
    if "choices" in spec and value not in spec["choices"]:
        errors.append(
            f"{where}: expected one of {', '.join(map(str, spec['choices']))}, "
            f"found {_describe(value)}"
        )
    if kind in ("int", "float", "seconds") and value < spec.get("min", 0):
        errors.append(f"{where}: expected >= {spec.get('min', 0)}, found {value}")
    if kind == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            errors.append(
                f"{where}: expected a CIDR like 198.51.100.0/24, found {value!r}"
            )
    if kind == "secret" and set(value) not in ({"env"}, {"file"}):
        errors.append(
            f"{where}: expected {{env: NAME}} or {{file: PATH}}, found {_describe(value)}"
        )
    if kind == "list" and "items" in spec:
        return [
            check(v, spec["items"], f"{where}[{i}]", errors)
            for i, v in enumerate(value)
        ]
    if kind == "dict" and "keys" in spec:
        return _check_keys(value, spec, where, errors)
    return value


def _check_keys(
    value: dict[str, Any], spec: Spec, where: str, errors: list[str]
) -> dict[str, Any]:
    keys: Mapping[str, Spec] = spec["keys"]
    out = dict(value)
    for name, sub in keys.items():
        path = f"{where}.{name}" if where else name
        if name in value:
            out[name] = check(value[name], sub, path, errors)
        elif sub.get("required"):
            errors.append(f"{path}: required {sub.get('type', 'value')} is missing")
        elif "default" in sub:
            out[name] = sub["default"]
    if not spec.get("open"):
        for name in value:
            if name not in keys:
                known = ", ".join(sorted(keys))
                errors.append(f"{where}.{name}: unknown key (known keys: {known})")
    return out


def _read_yaml(path: Path, missing: str = "pass --stack-profile PATH") -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile; {missing}") from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"{path}{at}: not valid YAML: {problem}") from None


LAYER_SPEC: Spec = {
    "type": "dict",
    "open": True,
    "keys": {"provider": {"type": "str", "required": True}},
}

PROFILE_SPEC: Spec = {
    "type": "dict",
    "keys": {
        "name": {"type": "str", "required": True},
        "description": {"type": "str"},
        "extends": {"type": "path"},
        "local_stack": {
            "type": "dict",
            "keys": {"root": {"type": "path", "required": True}},
        },
        "layers": {
            "type": "dict",
            "required": True,
            "keys": {layer: LAYER_SPEC for layer in LAYERS},
        },
    },
}

LOAD_SPEC: Spec = {
    "type": "dict",
    "open": True,
    "keys": {
        "name": {"type": "str", "required": True},
        "locustfile": {"type": "path", "required": True},
        "app": {"type": "str", "required": True},
        "rate": {"type": "float", "required": True, "min": 0.001},
        "users": {"type": "int", "required": True, "min": 1},
        "duration": {"type": "seconds", "required": True, "min": 1},
        "ramp": {"type": "seconds", "default": 0},
        "min_sample": {"type": "int", "default": 100},
        "tolerance": {"type": "float", "default": 0.05},
        "slo": {"type": "dict", "required": True, "open": True},
    },
}


@dataclass
class Profile:
    path: Path
    name: str
    layers: dict[str, dict[str, Any]]
    local_root: Path | None = None
    load_profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: str) -> Path:
        """A path the profile names, relative to the profile file."""
        p = Path(os.path.expandvars(value))
        return p if p.is_absolute() else (self.path.parent / p).resolve()

    def provider_name(self, layer: str) -> str | None:
        section = self.layers.get(layer)
        return section["provider"] if section else None


def load_profile(path: Path, provider_schemas: bool = True) -> Profile:
    """Read and validate a stack profile and the load profiles it names."""
    path = Path(path)
    data = _read_with_base(path, seen=())
    errors: list[str] = []
    data = check(data, PROFILE_SPEC, "", errors)
    layers: dict[str, dict[str, Any]] = {}
    if isinstance(data.get("layers"), dict):
        for layer in LAYERS:
            section = data["layers"].get(layer)
            if isinstance(section, dict) and isinstance(section.get("provider"), str):
                layers[layer] = _check_layer(layer, section, errors, provider_schemas)
    _raise(path, errors)
    local = data.get("local_stack")
    profile = Profile(
        path=path.resolve(),
        name=data["name"],
        layers=layers,
        raw=data,
    )
    if local:
        profile.local_root = profile.resolve(local["root"])
    profile.load_profiles = _load_profiles(profile, layers.get("load"))
    return profile


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The profile, laid over the profile it ``extends`` (mappings merge, lists replace).

    Paths in the base keep meaning what they meant there: both files must sit in
    the same folder.
    """
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ProfileError(
            f"{path}: expected a mapping at the top, found {_describe(data)}"
        )
    base_name = data.get("extends")
    if base_name is None:
        return data
    base_path = (path.parent / str(base_name)).resolve()
    if base_path in seen or base_path == path.resolve():
        raise ProfileError(
            f"{path}: extends: {base_name} extends itself, directly or not"
        )
    if base_path.parent != path.resolve().parent:
        raise ProfileError(
            f"{path}: extends: expected a profile in the same folder, found {base_name}"
        )
    base = _read_with_base(base_path, (*seen, path.resolve()))
    merged = _merge(base, {k: v for k, v in data.items() if k != "extends"})
    return merged


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merge(base.get(key), value) if key in base else value
        return out
    return over


def _check_layer(
    layer: str, section: dict[str, Any], errors: list[str], schemas: bool
) -> dict[str, Any]:
    where = f"layers.{layer}"
    if not schemas:
        return section
    try:
        from meshstack import providers

        module = providers.load_module(layer, section["provider"])
    except ImportError:
        errors.append(
            f"{where}.provider: no provider {section['provider']!r} for layer {layer} "
            f"(expected module meshstack.providers.{layer}_{section['provider']}, "
            "or package.module: for one of another package)"
        )
        return section
    schema = getattr(module, "SETTINGS_SCHEMA", None)
    if not schema:
        return section
    spec = {"type": "dict", "keys": {"provider": {"type": "str"}, **schema}}
    return check(section, spec, where, errors)


def _load_profiles(
    profile: Profile, load: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    if not load:
        return {}
    names = load.get("profiles") or []
    directory = profile.resolve(load.get("directory", "../loadprofiles"))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        file = directory / f"{name}.yaml"
        data = _read_yaml(
            file,
            f"{profile.path}: layers.load.profiles names {name!r}; add {file.name} "
            f"to {directory} or fix the name",
        )
        errors: list[str] = []
        if not isinstance(data, dict):
            errors.append(f": expected a mapping, found {_describe(data)}")
        else:
            data = check(data, LOAD_SPEC, "", errors)
        _raise(file, errors)
        data["locustfile"] = str((file.parent / data["locustfile"]).resolve())
        out[name] = data
    return out


def _raise(path: Path, errors: list[str]) -> None:
    if errors:
        lines = "\n".join(f"  {path}: {e.lstrip('.')}" for e in errors)
        raise ProfileError(f"{path}: {len(errors)} problem(s) in the profile:\n{lines}")


def resolve_secret(spec: Any, what: str, base: Path) -> str:
    """The value of a secret named ``{env: NAME}`` or ``{file: PATH}``."""
    if isinstance(spec, dict) and "env" in spec:
        value = os.environ.get(spec["env"])
        if not value:
            raise SecretError(
                f"{what}: environment variable {spec['env']} is not set; "
                f"export it before the run"
            )
        return value
    if isinstance(spec, dict) and "file" in spec:
        file = Path(spec["file"])
        file = file if file.is_absolute() else base / file
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{what}: cannot read {file}: {exc.strerror}") from None
    raise SecretError(
        f"{what}: expected {{env: NAME}} or {{file: PATH}}, found {spec!r}"
    )
