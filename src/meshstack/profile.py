"""Stack and load profiles: YAML, validated, with errors that say where and what.

A stack profile names, per layer, a provider and its settings. Each provider module
may export ``SETTINGS_SCHEMA`` (see :func:`check`); the loader validates the
section with it, so a typo in ``stacks/edge-lab.yaml`` is reported as
``stacks/edge-lab.yaml: layers.lb.pools[0].addresses: expected a list, found 'x'``
before anything is built.

The load profiles the load layer names (``loadprofiles/*.yaml``) are validated by
:func:`meshstack.loadprofile.check_load_profile`, the one validator the load
provider also reads them with: every key the harness reads and no other, finite
numbers, and a steady window that fits the run. Every problem of the stack profile
and of every load profile is reported in one :class:`ProfileError`, a line per
problem naming file and key.

Secrets never live in a profile: a secret setting is ``{env: NAME}`` or
``{file: PATH}`` and is resolved only when a provider asks for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# check is re-exported: providers' self-tests validate settings with it from here.
from meshstack.loadprofile import check_load_profile
from meshstack.schema import Spec
from meshstack.schema import check as check
from meshstack.schema import describe as _describe
from meshstack.verdicts import LAYERS


class ProfileError(Exception):
    """The profile is not valid; the message names file, key path and the fix."""


class SecretError(Exception):
    """A secret the profile names is absent or unreadable."""


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

# Where a stack profile's load profiles live unless layers.load.directory says.
DIRECTORY = "../loadprofiles"


def read_load_file(file: Path, missing: str) -> tuple[dict[str, Any], list[str]]:
    """A load profile file, validated; its problems as whole lines naming the file.

    ``missing`` says what to do when the file does not exist. The locustfile is
    made absolute (it is named relative to the load profile) and must exist.
    """
    try:
        data = _read_yaml(file, missing)
    except ProfileError as exc:
        return {}, [str(exc)]
    data, errors = check_load_profile(data)
    locustfile = data.get("locustfile") if isinstance(data, dict) else None
    if isinstance(locustfile, str):
        path = (file.parent / os.path.expandvars(locustfile)).resolve()
        data["locustfile"] = str(path)
        if not path.is_file():
            errors.append(
                f"locustfile: expected a file relative to {file.parent}, found "
                f"{locustfile!r}, which does not exist; fix the path"
            )
    return data, [_line(file, e) for e in errors]


def raise_for(where: Path, lines: list[str], what: str = "the profile") -> None:
    """One ``ProfileError`` listing every line (each naming its file), if any."""
    if lines:
        body = "\n".join(f"  {line}" for line in lines)
        raise ProfileError(f"{where}: {len(lines)} problem(s) in {what}:\n{body}")


def _line(path: Path, error: str) -> str:
    return f"{path}: {error.lstrip('.: ')}"


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
        return _resolve(self.path.parent, value)

    def provider_name(self, layer: str) -> str | None:
        section = self.layers.get(layer)
        return section["provider"] if section else None


def load_profile(path: Path, provider_schemas: bool = True) -> Profile:
    """Read and validate a stack profile and the load profiles it names.

    Every problem of the profile and of its load profiles is reported at once, in
    one ``ProfileError`` with a line per problem naming its file and key.
    """
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
    lines = [_line(path, e) for e in errors]
    loads = _load_profiles(path.resolve(), layers.get("load"), lines)
    lines += _unknown_apps(path.resolve(), layers, loads)
    raise_for(path, lines, "the profile and its load profiles")
    profile = Profile(path=path.resolve(), name=data["name"], layers=layers, raw=data)
    local = data.get("local_stack")
    if local:
        profile.local_root = profile.resolve(local["root"])
    profile.load_profiles = loads
    return profile


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expandvars(value))
    return p if p.is_absolute() else (base / p).resolve()


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The profile laid over the one it ``extends`` (mappings merge, lists replace).

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
    before = len(errors)
    out = check(section, spec, where, errors)
    # What no schema can say (a range whose ends are swapped, a name that must
    # name another entry): the provider's own ``validate_settings``, once the
    # section's shape holds.
    validate = getattr(module, "validate_settings", None)
    if validate is not None and len(errors) == before:
        errors += [f"{where}.{problem}" for problem in validate(out)]
    return out


def _load_profiles(
    stack: Path, load: dict[str, Any] | None, lines: list[str]
) -> dict[str, dict[str, Any]]:
    """Each load profile the load layer names, validated; its problems go to lines."""
    names = (load or {}).get("profiles")
    directory = _resolve(stack.parent, str((load or {}).get("directory", DIRECTORY)))
    out: dict[str, dict[str, Any]] = {}
    # A names list that is not a list of str is the layer schema's to report.
    for name in names if isinstance(names, list) else []:
        if not isinstance(name, str):
            continue
        file = directory / f"{name}.yaml"
        missing = (
            f"{stack}: layers.load.profiles names {name!r}; add {file.name} "
            f"to {directory} or fix the name"
        )
        data, problems = read_load_file(file, missing)
        lines.extend(problems)
        out[name] = data
    return out


def _unknown_apps(
    stack: Path, layers: dict[str, dict[str, Any]], loads: dict[str, dict[str, Any]]
) -> list[str]:
    """A load profile's ``app`` must be one the apps layer deploys (whose address
    Locust is pointed at); checked where the apps layer lists its apps."""
    listed = (layers.get("apps") or {}).get("apps")
    if not isinstance(listed, list):
        return []
    names = sorted(
        str(a["name"]) for a in listed if isinstance(a, dict) and "name" in a
    )
    load = layers.get("load") or {}
    directory = _resolve(stack.parent, str(load.get("directory", DIRECTORY)))
    return [
        f"{directory / f'{name}.yaml'}: app: expected one of the apps layer's apps "
        f"({', '.join(names)}), found {data.get('app')!r}"
        for name, data in loads.items()
        # an app that is absent or not a name (or a file that could not be read)
        # is already reported by the load profile's own check
        if isinstance(data, dict)
        and isinstance(data.get("app"), str)
        and data["app"] not in names
    ]


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
