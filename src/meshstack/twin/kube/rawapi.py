"""Calls through the official client that hand back the server's JSON as is.

The twin's kubelet and kube-proxy read objects as plain dicts (the shape the
API server sent, every field kept), not as the client's typed models.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def raw(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``method(*args, **kwargs)`` with ``_preload_content=False``, decoded."""
    resp = method(*args, _preload_content=False, **kwargs)
    return json.loads(resp.data)
