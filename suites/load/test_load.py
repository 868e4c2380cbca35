"""Locust drove each load profile at its rate over its steady window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.load import parametrize_profiles
from meshstack.providers.load_locust import finding_from_json
from meshstack.pytest import judge

pytestmark = pytest.mark.load

# Attachments are capped: a history file grows by a row per name per second.
CAP = 200_000


def _artifact(record: dict[str, Any], name: str) -> str:
    path = Path(record["artifacts"]) / name
    try:
        return path.read_text(errors="replace")[-CAP:]
    except OSError:
        return f"({path} was not written)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_profiles(metafunc)


def test_the_achieved_rate_is_within_tolerance_over_the_steady_window(
    load: Any, profile: str
) -> None:
    """Steps: run Locust once (shared by workers); read its stats history; the
    requests in the steady window over its length must be the profile's rate
    within its tolerance, with at least its minimum sample (INVALID-RUN if not)."""
    record = load.record(profile)
    judge(
        finding_from_json(record["finding"]),
        attachments={
            "command": record["command"],
            "window": json.dumps(record.get("window"), indent=2),
            "counts in the window": json.dumps(record.get("counts"), indent=2),
            "locust_stats.csv": _artifact(record, "locust_stats.csv"),
            "locust_stats_history.csv": _artifact(record, "locust_stats_history.csv"),
            "locust_failures.csv": _artifact(record, "locust_failures.csv"),
            "locust.log": _artifact(record, "locust.log"),
        },
    )
