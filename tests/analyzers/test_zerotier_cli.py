"""Self-tests of the ``zerotier-cli`` analyzer.

Fixtures in data/zerotier-cli/ are re-typed ``zerotier-cli`` output in the formats
ZeroTierOne's ``one.cpp`` prints (``200 info``, ``200 listnetworks`` with its header,
``listpeers``, the ``peers`` table with its TCP-relay note, the ``-j`` JSON, and the
token/401/service errors). ``access-denied-empty-name.txt`` follows a public setup
note in which a network with no name left two spaces after the id;
``reordered-header-spaced-name.txt`` is a made-up client with its own field order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import zerotier_cli as zc
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "zerotier-cli"
OTHER_KINDS = ("zerotier-member", "ip-link", "openstack-error", "microstack-log")
RANGE = "198.51.100.0/24"

FOREIGN = {
    "linkerd check": (
        "linkerd-existence\n-----------------\n√ 'linkerd-config' config map exists\n"
        "× control plane pods are ready\n    pod/linkerd-destination-1 is not ready\n"
    ),
    "locust csv": (
        "Timestamp,User Count,Type,Name,Requests/s,Failures/s\n"
        "1733300000,20,,Aggregated,19.8,0.0\n"
    ),
    "yaml manifest": (
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n"
        "  name: pool\nspec:\n  addresses:\n  - 198.51.100.240/28\n"
    ),
    "http status line": "HTTP/1.1 401 Unauthorized\nContent-Length: 0\n",
}


def judged(name: str, overlay_cidr: str | None = RANGE):
    evidence = Evidence.from_path(HERE / name)
    return zc.judge(evidence, Context(overlay_cidr=overlay_cidr))


def test_a_healthy_node_online_with_an_address_in_range_and_direct_peers_passes():
    f = judged("healthy-node.txt")

    assert f.verdict is Verdict.PASS
    assert f.reasons == []
    assert f.details["node"] == "abcdef0123"
    assert f.details["networks"]["0123456789abcdef"]["ips"] == ["198.51.100.153/24"]


def test_the_json_forms_of_info_and_listnetworks_are_judged_like_the_text():
    f = judged("json-info-and-networks.json")

    assert f.verdict is Verdict.PASS
    assert f.details["state"] == "ONLINE"
    assert f.details["networks"]["0123456789abcdef"]["dev"] == "ztexample0"


def test_an_address_outside_the_overlay_range_fails_off_the_overlay():
    # Not no_ip_assigned: the node has an address, on the wrong range.
    f = judged("healthy-node.txt", overlay_cidr="10.147.17.0/24")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["node_ip_not_on_overlay"]
    assert f.details["outside_overlay"] == {"0123456789abcdef": ["198.51.100.153/24"]}


def test_without_a_range_the_addresses_pass_with_a_hint_naming_the_option():
    f = judged("healthy-node.txt", overlay_cidr=None)

    assert f.verdict is Verdict.PASS
    assert any("--overlay-cidr" in h for h in f.hints)


def test_access_denied_fails_as_not_authorized_even_with_an_empty_network_name():
    f = judged("access-denied-empty-name.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["member_not_authorized"]
    net = f.details["networks"]["48d6023c46c1bfd8"]
    assert (net["name"], net["dev"], net["ips"]) == ("", "ztosimha46", [])
    assert any(
        "/api/v1/network/48d6023c46c1bfd8/member/4ebbd51be0" in h for h in f.hints
    )


def test_access_denied_cut_off_mid_row_still_fails():
    f = judged("access-denied-cut-off.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["member_not_authorized"]


def test_requesting_configuration_without_address_fails_as_no_network_config():
    f = judged("requesting-configuration.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["no_network_config"]


def test_a_node_that_joined_no_network_fails_as_no_network_config():
    f = judged("no-network-joined.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["no_network_config"]


def test_an_offline_node_with_a_port_error_fails_on_both_counts():
    f = judged("offline-port-error.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["peer_unreachable", "no_network_config"]
    assert any("/dev/net/tun" in h for h in f.hints)


def test_tunneled_info_and_relay_rows_warn_of_the_tcp_relay():
    f = judged("tunneled-tcp-relay.txt")

    assert f.verdict is Verdict.WARN
    assert f.reasons == ["degraded_tcp_relay"]
    assert f.details["tcp_relayed_peers"] == ["0123456789", "778cde7190"]


def test_a_tunneled_peer_in_json_warns_of_the_tcp_relay():
    f = judged("json-peers-tunneled.json")

    assert f.verdict is Verdict.WARN
    assert f.reasons == ["degraded_tcp_relay"]


def test_the_tcp_note_alone_is_enough_to_warn():
    text = (
        "NOTE: Currently tunneling through a TCP relay. Ensure that UDP is not blocked."
    )
    f = zc.judge(Evidence("200 info abcdef0123 1.12.2 ONLINE\n" + text), Context())

    assert f.reasons == ["degraded_tcp_relay"]


def test_a_peer_relayed_through_the_roots_is_a_hint_not_a_warning():
    f = judged("listpeers-old-relayed.txt")

    assert f.verdict is Verdict.PASS
    assert f.details["relayed_peers"] == ["0123456789"]


def test_rows_are_read_by_the_header_field_names_in_any_order():
    f = judged("reordered-header-spaced-name.txt")

    net = f.details["networks"]["0123456789abcdef"]
    assert net["name"] == "edge lab west"
    assert net["dev"] == "zt-0123456"
    assert net["ips"] == ["198.51.100.7/24", "fd00::7/88"]
    assert f.verdict is Verdict.PASS


@pytest.mark.parametrize(
    "name",
    [
        "not-privileged-token.txt",
        "not-privileged-old-client.txt",
        "not-privileged-401.txt",
    ],
)
def test_an_unprivileged_cli_is_a_harness_error(name: str):
    f = judged(name)

    assert f.verdict is Verdict.HARNESS_ERROR
    assert f.reasons == ["cli_not_privileged"]
    assert any("root" in h for h in f.hints)


def test_a_service_that_is_not_running_fails_as_unreachable():
    f = judged("service-not-running.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["api_unreachable"]


def test_output_with_nothing_to_judge_is_inconclusive():
    f = zc.judge(
        Evidence("$ zerotier-cli join 0123456789abcdef\n200 join OK\n"), Context()
    )

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]


def test_an_ok_row_cut_before_its_addresses_is_inconclusive():
    text = "200 listnetworks 0123456789abcdef edge-lab 32:ab:cd:ef:01:23 OK"

    f = zc.judge(Evidence(text), Context())

    assert f.verdict is Verdict.INCONCLUSIVE


def _other_inputs() -> list[tuple[str, str]]:
    files = [
        (f"{kind}/{p.name}", p.read_text())
        for kind in OTHER_KINDS
        for p in sorted((DATA / kind).glob("*"))
    ]
    return files + list(FOREIGN.items())


@pytest.mark.parametrize(("label", "text"), _other_inputs())
def test_detector_scores_zero_on_other_kinds(label: str, text: str):
    assert zc.detect(Evidence(text, name=label)) == 0.0


def _other_teams_fixtures() -> list[Path]:
    mine = {HERE.name, *OTHER_KINDS}
    return [
        p
        for d in sorted(DATA.iterdir())
        if d.is_dir() and d.name not in mine
        for p in sorted(d.rglob("*"))
        if p.is_file()
    ]


@pytest.mark.parametrize(
    "path", _other_teams_fixtures(), ids=lambda p: str(p.relative_to(DATA))
)
def test_detector_never_claims_another_kinds_fixture(path: Path):
    assert zc.detect(Evidence.from_path(path)) < 0.5


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.iterdir()))
def test_judge_never_raises_on_any_prefix_of_a_fixture(name: str):
    text = (HERE / name).read_text()
    for end in range(0, len(text), max(1, len(text) // 60)):
        assert zc.judge(Evidence(text[:end]), Context(overlay_cidr=RANGE)).verdict


@pytest.mark.parametrize(
    "junk", ["", "200 listnetworks", "<ztaddr> <link>\nzz", "[{}]", "200 info"]
)
def test_judge_never_raises_on_junk(junk: str):
    assert zc.judge(Evidence(junk), Context(overlay_cidr="not-a-cidr")).verdict
