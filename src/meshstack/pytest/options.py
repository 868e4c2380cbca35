"""meshstack's pytest options: each a flag, an environment variable and an ini key.

The flag wins over the environment, the environment over the ini file. Values are
checked when read, and contradictions are refused with a usage error (exit 4) that
names the option, the value and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshstack.stack import MODES

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Option:
    flag: str
    dest: str
    env: str
    ini: str
    default: str
    help: str
    boolean: bool = False


OPTIONS = (
    Option(
        "--stack",
        "meshstack_stack",
        "MESHSTACK_STACK",
        "meshstack_stack",
        "existing",
        "fresh: build the whole stack and remove it after; reuse: build only the "
        "layers whose probe fails; existing: build nothing, attach (default)",
    ),
    Option(
        "--stack-profile",
        "meshstack_stack_profile",
        "MESHSTACK_STACK_PROFILE",
        "meshstack_stack_profile",
        "stacks/local.yaml",
        "stack profile (YAML); relative paths are taken from the rootdir",
    ),
    Option(
        "--stack-state",
        "meshstack_stack_state",
        "MESHSTACK_STACK_STATE",
        "meshstack_stack_state",
        ".meshstack/state.json",
        "state file recording what the harness built",
    ),
    Option(
        "--keep-stack",
        "meshstack_keep_stack",
        "MESHSTACK_KEEP_STACK",
        "meshstack_keep_stack",
        "false",
        "keep what --stack=fresh|reuse built, for later --stack=existing runs",
        boolean=True,
    ),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("meshstack", "meshstack conformance harness")
    for opt in OPTIONS:
        if opt.boolean:
            group.addoption(
                opt.flag,
                dest=opt.dest,
                action="store_true",
                default=None,
                help=opt.help,
            )
        else:
            group.addoption(
                opt.flag, dest=opt.dest, default=None, help=f"{opt.help} [{opt.env}]"
            )
        parser.addini(opt.ini, help=f"{opt.help} (default {opt.default})", default=None)


@dataclass(frozen=True)
class Settings:
    mode: str
    profile: Path
    state: Path
    keep: bool


def _value(config: pytest.Config, opt: Option) -> tuple[str, str]:
    """The option's value and where it came from, by precedence."""
    flag = config.getoption(opt.dest)
    if flag is not None:
        return (str(flag).lower() if opt.boolean else str(flag)), opt.flag
    if opt.env in os.environ:
        return os.environ[opt.env], opt.env
    ini = config.getini(opt.ini)
    if ini not in (None, "", []):
        return str(ini), f"ini {opt.ini}"
    return opt.default, "default"


def _bool(value: str, source: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise pytest.UsageError(f"{source}={value!r}: expected true or false")


def resolve(config: pytest.Config) -> Settings:
    values = {opt.dest: _value(config, opt) for opt in OPTIONS}
    mode, mode_src = values["meshstack_stack"]
    if mode not in MODES:
        raise pytest.UsageError(
            f"{mode_src}={mode!r}: expected one of {', '.join(MODES)} "
            "(fresh builds a stack, existing attaches to one)"
        )
    keep_raw, keep_src = values["meshstack_keep_stack"]
    keep = _bool(keep_raw, keep_src)
    if keep and mode == "existing":
        raise pytest.UsageError(
            f"{keep_src} with --stack=existing ({mode_src}): "
            "an existing stack is never removed, so there is nothing to keep; "
            "drop --keep-stack or pass --stack=fresh|reuse"
        )
    root = Path(config.rootpath)
    profile = Path(values["meshstack_stack_profile"][0])
    state = Path(values["meshstack_stack_state"][0])
    return Settings(
        mode=mode,
        profile=profile if profile.is_absolute() else root / profile,
        state=state if state.is_absolute() else root / state,
        keep=keep,
    )
