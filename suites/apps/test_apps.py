"""Each demo app's Deployments are Available and its routes answer through its LB."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures.apps import KNOWN_APPS, app_or_skip
from meshstack.pytest import judge

pytestmark = pytest.mark.apps


@pytest.mark.parametrize("name", KNOWN_APPS)
def test_every_deployment_of_the_app_is_available(apps: Any, name: str) -> None:
    """Steps: list the app's Deployments; each must be Available at its replicas."""
    app_or_skip(apps, name)
    finding = apps.check_deployments(name)
    judge(
        finding,
        attachments={
            "deployments": "\n".join(finding.evidence),
            "applied manifests (YAML)": apps.manifests_text(name),
        },
    )


@pytest.mark.parametrize("name", KNOWN_APPS)
def test_the_app_routes_answer_as_designed_through_the_lb_address(
    apps: Any, name: str
) -> None:
    """Steps: read the LoadBalancer address; GET each route; compare each status.

    emojivoto's vote for :poop: must answer 500: the app's deliberate failure.
    """
    app_or_skip(apps, name)
    finding = apps.check_routes(name)
    judge(
        finding,
        attachments={
            "routes": "\n".join(finding.evidence),
            "details": json.dumps(finding.details, indent=2, default=str),
        },
    )
