"""Pacing shared by the locustfiles: the per-user throughput, from the harness.

The harness passes the profile's total rate and user count in
``MESHSTACK_LOAD_RATE`` and ``MESHSTACK_LOAD_USERS``. Missing or bad values stop
Locust at start-up: a locustfile that silently falls back to no wait at all sends
the load unthrottled (a known way to get 1000x the intended rate).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from locust import events

log = logging.getLogger(__name__)


def per_user_throughput() -> float:
    """Requests per second per user, so that users x this = the profile's rate."""
    rate, users = (
        os.environ.get("MESHSTACK_LOAD_RATE"),
        os.environ.get("MESHSTACK_LOAD_USERS"),
    )
    try:
        value = float(rate) / int(users)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        raise RuntimeError(
            f"MESHSTACK_LOAD_RATE={rate!r} and MESHSTACK_LOAD_USERS={users!r} must be "
            "a positive rate and user count (the harness sets them from the load "
            "profile); refusing to run unpaced"
        ) from None
    if value <= 0:
        raise RuntimeError(f"per-user throughput {value} is not positive")

    # Locust sets its logging up after it imports the locustfile: announce the
    # pacing once it has, in every process that runs users.
    @events.init.add_listener
    def _announce(environment: Any, **_kwargs: Any) -> None:
        log.info(
            "wait_time: constant_throughput(%.4f) per user; %s users -> %s rps "
            "in total",
            value,
            users,
            rate,
        )

    return value
