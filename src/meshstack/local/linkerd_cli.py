"""The local stack's ``linkerd`` command: a wrapper around the Linkerd CLI twin.

``meshstack local up`` calls :func:`write_cli_wrapper`; the local profile's
``layers.mesh.cli`` points at the file it writes, so the mesh provider runs it
exactly as it would run a real ``linkerd`` binary.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

DEFAULT_VERSION = "stable-2.14.10"


def write_cli_wrapper(root: Path, python: str, version: str = DEFAULT_VERSION) -> Path:
    """Write ``<root>/bin/linkerd`` (mode 0755) and return its path."""
    path = Path(root) / "bin" / "linkerd"
    path.parent.mkdir(parents=True, exist_ok=True)
    src = Path(__file__).resolve().parents[2]
    text = (
        "#!/bin/sh\n"
        "# Written by `meshstack local up`: the Linkerd CLI twin.\n"
        f"MESHSTACK_LINKERD_VERSION={shlex.quote(version)}\n"
        "export MESHSTACK_LINKERD_VERSION\n"
        f"PYTHONPATH={shlex.quote(str(src))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONPATH\n"
        f'exec {shlex.quote(python)} -m meshstack.twin.linkerd "$@"\n'
    )
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


# -- the local-stack component interface (start/stop/status) -----------------------


def start(env: Any) -> dict[str, Any]:
    """Write the wrapper; there is no daemon to start."""
    return {"cli": str(write_cli_wrapper(env.root, env.python))}


def stop(env: Any) -> None:
    (Path(env.root) / "bin" / "linkerd").unlink(missing_ok=True)


def status(env: Any) -> dict[str, Any]:
    path = Path(env.root) / "bin" / "linkerd"
    if path.is_file() and path.stat().st_mode & 0o111:
        return {"up": True, "detail": str(path)}
    return {"up": False, "detail": f"{path} missing"}
