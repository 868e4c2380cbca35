"""Each node is an authorized member with an overlay address; all reach each other."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshstack.pytest import judge

pytestmark = pytest.mark.overlay


@pytest.mark.dependency(name="overlay_members")
def test_every_node_is_an_authorized_member_with_an_address_in_the_range(
    overlay: Any,
) -> None:
    docs = overlay.member_documents()
    judge(
        overlay.judge_members(docs),
        attachments={"controller members (JSON)": json.dumps(docs, indent=2)},
    )


def test_every_node_holds_its_network_configuration(overlay: Any) -> None:
    outputs = overlay.listnetworks()
    judge(
        overlay.judge_nodes(outputs),
        attachments={
            f"zerotier-cli listnetworks on {n}": t for n, t in outputs.items()
        },
    )


@pytest.mark.dependency(depends=["overlay_members"])
def test_nodes_reach_each_other_over_their_overlay_addresses(overlay: Any) -> None:
    finding = overlay.judge_reachability()
    judge(finding, attachments={"ping matrix": "\n".join(finding.evidence)})
