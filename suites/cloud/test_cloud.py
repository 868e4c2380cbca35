"""The profile's servers run ACTIVE on its network from an active image, tagged with
the run id, and answer SSH with the profile's key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.cloud


def _outputs(cloud: Any) -> dict[str, str]:
    return {"cloud outputs (JSON)": json.dumps(cloud.state.outputs, indent=2)}


def test_the_node_image_is_active(cloud: Any) -> None:
    judge(cloud.judge("image"), attachments=_outputs(cloud))


def test_the_keypair_exists(cloud: Any) -> None:
    judge(cloud.judge("keypair"), attachments=_outputs(cloud))


@pytest.mark.dependency(name="cloud_servers_active")
def test_every_server_is_active_on_the_network_and_tagged_with_the_run_id(
    cloud: Any,
) -> None:
    judge(cloud.judge("servers"), attachments=_outputs(cloud))


@pytest.mark.dependency(depends=["cloud_servers_active"])
def test_every_server_answers_ssh_with_the_profile_key(cloud: Any) -> None:
    finding = cloud.judge("ssh")
    judge(finding, attachments={"ssh": "\n".join(finding.evidence)})
