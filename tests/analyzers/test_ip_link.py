"""Self-tests of the ``ip-link`` analyzer.

Fixtures in data/ip-link/: ``c17-ifconfig-zt-2800-over-1448.txt`` is case C17's
artifact (zerotier/ZeroTierOne#2228 and related) and ``c12-ifconfig-arping.txt``
case C12's (metallb/metallb#652), both re-typed. The others extend them in the
formats iproute2 (``ip link``, ``ip -d link``, ``ip addr``, ``ip -j link``),
net-tools (``ifconfig`` old and new), iputils and busybox ``ping`` print, with the
sizes C17 reports (1354 passes, 1355 does not over a 1448-byte underlay).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import ip_link as il
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "ip-link"
OTHER_KINDS = ("zerotier-member", "zerotier-cli", "openstack-error", "microstack-log")

FOREIGN = {
    "linkerd check": (
        "linkerd-identity\n----------------\n√ certificate config is valid\n"
        "‼ issuer cert is valid for at least 60 days\n"
    ),
    "locust csv": "Type,Name,Request Count\nGET,/,600\n,Aggregated,600\n",
    "yaml manifest": (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web-svc\nspec:\n"
        "  type: LoadBalancer\n  ports:\n  - port: 80\n"
    ),
    "kubectl get nodes": (
        "NAME     STATUS   ROLES                  AGE   VERSION\n"
        "node-1   Ready    control-plane,master   5d    v1.28.5+k3s1\n"
    ),
}


def judged(name: str):
    return il.judge(Evidence.from_path(HERE / name), Context())


def test_zerotier_path_size_follows_the_header_and_datagram_arithmetic():
    # C17: 1448-byte underlay, ping -s 1354 passes and 1355 is lost.
    assert il.unsplit_packet(1448) - 28 == 1354
    # On a 1500 underlay ZeroTier's own 1432-byte datagrams bound the size.
    assert il.unsplit_packet(1500) == 1432 - 38


def test_case_c17_interface_mtus_alone_predict_the_blackhole_but_do_not_prove_it():
    f = judged("c17-ifconfig-zt-2800-over-1448.txt")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert f.details["predicted_max_payload"] == 1354
    assert f.details["underlay"] == {"ens3": 1448}
    assert any("ping -M do -s" in h for h in f.hints)


def test_case_c17_measured_by_ping_fails_as_a_blackhole_with_the_max_payload():
    f = judged("c17-with-ping-binary-search.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["pmtu_blackhole"]
    assert f.details["max_payload"] == 1354
    assert f.details["first_lost_payload"] == 1355
    assert f.details["target"] == "198.51.100.2"
    assert any("Central" in h for h in f.hints)


def test_a_ping_capture_cut_off_after_the_first_lost_size_still_fails():
    f = judged("c17-ping-cut-off.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["pmtu_blackhole"]
    assert f.details["max_payload"] == 1354


def test_a_local_refusal_above_the_interface_mtu_is_not_counted_as_loss():
    f = judged("c17-with-ping-binary-search.txt")

    assert f.details["pings"]["198.51.100.2"][2773] == "refused"
    assert "reported_mtu" not in f.details


def test_flannel_on_the_oversized_interface_fails_against_the_measured_path():
    f = judged("ip-link-flannel-on-zt-2800.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["pmtu_blackhole", "overlay_mtu_mismatch"]
    assert f.details["path_mtu"] == 1382
    assert f.details["flannel"] == {
        "flannel.1": 2750,
        "cni0": 2750,
        "FLANNEL_MTU": 2750,
    }


def test_flannel_not_rederived_after_the_mtu_was_lowered_fails_as_mismatch():
    f = judged("flannel-not-rederived.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["overlay_mtu_mismatch"]
    assert f.details["path_mtu"] == 1280


def test_older_ifconfig_and_busybox_ping_are_read_the_same_way():
    f = judged("old-ifconfig-busybox-ping.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["pmtu_blackhole"]
    assert f.details["underlay"] == {"eth0": 1400}
    assert (f.details["max_payload"], f.details["first_lost_payload"]) == (1300, 1320)


def test_a_lowered_mtu_that_fits_with_flannel_below_it_passes():
    f = judged("healthy-ip-addr-mtu-1280.txt")

    assert f.verdict is Verdict.PASS
    assert f.reasons == []
    # The down 9000-byte NIC is not the underlay.
    assert f.details["underlay"] == {"ens3": 1448}


def test_mtu_2800_over_a_1500_underlay_passes_with_a_note_on_splitting():
    f = judged("ip-json-link.json")

    assert f.verdict is Verdict.PASS
    assert f.details["zerotier"] == {"ztexample0": 2800}
    assert any("splits frames above 1394" in h for h in f.hints)


def test_a_path_that_reports_its_mtu_is_not_a_blackhole():
    f = judged("frag-needed-reported.txt")

    assert f.verdict is Verdict.PASS
    assert f.details["reported_mtu"] == 1380


def test_no_reply_at_any_size_fails_as_peer_unreachable():
    f = judged("peer-unreachable.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["peer_unreachable"]
    assert f.details["target"] == "198.51.100.9"


def test_only_large_sizes_lost_with_nothing_smaller_tried_is_not_unreachable():
    text = (
        "PING 198.51.100.9 (198.51.100.9) 1400(1428) bytes of data.\n\n"
        "--- 198.51.100.9 ping statistics ---\n"
        "3 packets transmitted, 0 received, 100% packet loss, time 2000ms\n"
    )

    f = il.judge(Evidence(text), Context())

    assert f.verdict is Verdict.INCONCLUSIVE


def test_one_line_ip_link_output_is_read_like_the_multi_line_form():
    text = (
        "2: ens3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1448 qdisc fq_codel state UP"
        " mode DEFAULT group default qlen 1000\\    link/ether 52:54:00:12:34:56\n"
        "3: zt5u4y6ejv: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 2800 qdisc fq_codel"
        " state UNKNOWN mode DEFAULT\\    link/ether 32:ab:cd:ef:01:23\n"
    )

    f = il.judge(Evidence(text), Context())

    assert f.details["zerotier"] == {"zt5u4y6ejv": 2800}
    assert f.details["predicted_max_payload"] == 1354


def test_a_macos_feth_interface_counts_as_zerotier():
    text = (
        "en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n"
        "\tinet 192.0.2.5 netmask 0xffffff00 broadcast 192.0.2.255\n"
        "feth3056: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 2800\n"
        "\tinet 10.202.81.20 netmask 0xffffff00 broadcast 10.202.81.255\n"
    )

    f = il.judge(Evidence(text), Context())

    assert f.verdict is Verdict.PASS
    assert f.details["zerotier"] == {"feth3056": 2800}
    assert f.details["underlay"] == {"en0": 1500}


def test_case_c12_interface_alone_is_inconclusive_and_leaves_arp_to_the_lb_check():
    f = judged("c12-ifconfig-arping.txt")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert any("l2_arp_unreliable_on_overlay" in h for h in f.hints)


def test_case_c12_with_its_underlay_and_a_ping_passes_and_still_defers_arp():
    f = judged("c12-with-underlay-and-peer-ping.txt")

    assert f.verdict is Verdict.PASS
    assert f.details["pings"]["198.51.100.2"] == {1366: "passed"}
    assert any("l2_arp_unreliable_on_overlay" in h for h in f.hints)


def test_a_capture_without_any_zerotier_interface_is_inconclusive():
    text = "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq state UP\n"

    f = il.judge(Evidence(text), Context())

    assert f.verdict is Verdict.INCONCLUSIVE
    assert any("zt*" in h for h in f.hints)


def test_losses_at_random_sizes_are_not_called_a_blackhole():
    text = (HERE / "c17-with-ping-binary-search.txt").read_text()
    lost_1000 = text.replace(
        "3 packets transmitted, 3 received, 0% packet loss, time 2003ms",
        "3 packets transmitted, 0 received, 100% packet loss, time 2003ms",
    ).replace("1008 bytes from", "(no reply)")

    f = il.judge(Evidence(lost_1000), Context())

    assert "pmtu_blackhole" not in f.reasons


def _other_inputs() -> list[tuple[str, str]]:
    files = [
        (f"{kind}/{p.name}", p.read_text())
        for kind in OTHER_KINDS
        for p in sorted((DATA / kind).glob("*"))
    ]
    return files + list(FOREIGN.items())


@pytest.mark.parametrize(("label", "text"), _other_inputs())
def test_detector_scores_zero_on_other_kinds(label: str, text: str):
    assert il.detect(Evidence(text, name=label)) == 0.0


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
    assert il.detect(Evidence.from_path(path)) < 0.5


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.iterdir()))
def test_judge_never_raises_on_any_prefix_of_a_fixture(name: str):
    text = (HERE / name).read_text()
    for end in range(0, len(text), max(1, len(text) // 60)):
        assert il.judge(Evidence(text[:end]), Context()).verdict


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "1: : <> mtu x",
        "PING x (y) 1(2) bytes\nFrom z Frag needed",
        '[{"ifname":1}]',
    ],
)
def test_judge_never_raises_on_junk(junk: str):
    assert il.judge(Evidence(junk), Context()).verdict


def test_a_ping_run_cut_off_before_its_statistics_is_recorded_as_cut_off_not_lost():
    # The fresh-user review's probe: 1354 passes, the 1355 run is cut off right
    # after ping's header line (iputils output as in case C17).
    text = (
        "$ ping -M do -s 1354 -c 1 198.51.100.2\n"
        "PING 198.51.100.2 (198.51.100.2) 1354(1382) bytes of data.\n"
        "1362 bytes from 198.51.100.2: icmp_seq=1 ttl=64 time=41.2 ms\n"
        "\n"
        "--- 198.51.100.2 ping statistics ---\n"
        "1 packets transmitted, 1 received, 0% packet loss, time 0ms\n"
        "$ ping -M do -s 1355 -c 1 198.51.100.2\n"
        "PING 198.51.100.2 (198.51.100.2) 1355(1383) bytes of data.\n"
    )
    f = il.judge(Evidence(text), Context())

    assert f.details["pings"]["198.51.100.2"] == {1354: "passed", 1355: "cut off"}
    assert "pmtu_blackhole" not in f.reasons
    assert any("1355 bytes was cut off" in h for h in f.hints)
