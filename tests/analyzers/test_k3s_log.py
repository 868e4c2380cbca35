"""Self-tests of the ``k3s-log`` analyzer.

Fixtures in data/k3s-log/: ``c13a-server-flags-advertise-only.txt`` and
``c13b-server-flags-complete.txt`` re-type case C13's flags (k3s-io/k3s#2087,
#8230); ``c13-*`` variants carry its overlay-flag condition in a systemd unit and a
config.yaml. The journals re-type k3s's own wordings from public threads:
k3s-io/k3s#802, vitobotta/hetzner-k3s#390 and rancher/rke2#1916 (node password
rejected, current wording), k3s-io/k3s#746 (the 2019 wording), #2470 (token is not
valid), #8381 (CA certs 401), #3727 (token CA hash), #9343 (CA certs refused), #2852
(connection reset), #10005 (a healthy start), with this project's addresses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import k3s_log as kl
from meshstack.verdicts import Finding, Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "k3s-log"
ZT = "198.51.100.0/24"


def judge(name: str, **ctx: object) -> Finding:
    return kl.judge(Evidence.from_path(HERE / name), Context(**ctx))  # type: ignore[arg-type]


# --- join failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "agent-node-password-rejected.log",
        "agent-node-password-rejected-2019.log",
        "agent-node-password-rejected-truncated.log",
    ],
)
def test_a_rejected_node_password_fails_in_every_wording(name: str) -> None:
    f = judge(name)

    assert (f.layer, f.verdict) == ("cluster", Verdict.FAIL)
    assert f.reasons == ["node_password_rejected"]
    assert any("--with-node-id" in h for h in f.hints)


def test_the_servers_rejection_of_another_node_names_it_despite_running() -> None:
    f = judge("server-node-password-validation.log")

    assert f.reasons == ["node_password_rejected"]
    assert f.details["nodes"] == ["node-2"]


@pytest.mark.parametrize(
    "name",
    ["agent-token-not-valid.log", "agent-cacerts-401.log", "agent-token-ca-hash.log"],
)
def test_a_refused_join_token_fails(name: str) -> None:
    f = judge(name)

    assert (f.layer, f.reasons) == ("cluster", ["token_rejected"])
    assert f.evidence


def test_a_server_refusing_connections_is_unreachable() -> None:
    f = judge("agent-api-refused.log")

    assert (f.layer, f.reasons) == ("cluster", ["api_unreachable"])
    assert "198.51.100.10:6443: connect: connection refused" in f.evidence[0]


def test_a_healthy_start_passes_despite_containerds_socket_warming_up() -> None:
    f = judge("agent-healthy.log")

    assert f.verdict is Verdict.PASS
    assert f.hints == []


def test_an_error_followed_by_the_node_coming_up_is_only_a_hint() -> None:
    f = judge("agent-recovered.log")

    assert f.verdict is Verdict.PASS
    assert any("api_unreachable earlier" in h for h in f.hints)


def test_an_error_after_the_node_came_up_still_fails() -> None:
    lines = (HERE / "agent-recovered.log").read_text().splitlines()
    f = kl.judge(Evidence("\n".join([lines[0], lines[3], lines[1]])), Context())

    assert f.reasons == ["api_unreachable"]


def test_a_log_with_nothing_to_judge_is_inconclusive() -> None:
    f = judge("agent-starting-only.log")

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])


# --- C13: overlay flags -------------------------------------------------------------


def test_c13a_advertising_the_overlay_without_node_ip_or_iface_warns() -> None:
    f = judge("c13a-server-flags-advertise-only.txt", overlay_cidr=ZT)

    assert (f.layer, f.verdict) == ("cluster", Verdict.WARN)
    assert f.reasons == ["overlay_flags_incomplete"]


def test_c13a_without_an_overlay_cidr_is_inconclusive_and_says_what_to_give() -> None:
    # Nothing on that line can be judged without the overlay's range: not a pass.
    f = judge("c13a-server-flags-advertise-only.txt")

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])
    assert any("--overlay-cidr" in h for h in f.hints)


@pytest.mark.parametrize(
    "text",
    ["--flannel-iface", "k3s server", "/usr/local/bin/k3s agent --token-file /t"],
)
def test_a_command_line_with_nothing_judgeable_is_never_a_pass(text: str) -> None:
    f = kl.judge(Evidence(text), Context())

    assert (f.verdict, f.reasons) == (Verdict.INCONCLUSIVE, ["context_missing"])


def test_c13b_node_ip_and_flannel_iface_together_pass() -> None:
    f = judge("c13b-server-flags-complete.txt", overlay_cidr=ZT)

    assert f.verdict is Verdict.PASS
    assert f.details["commands"] == 1


def test_c13_node_ip_without_flannel_iface_in_a_systemd_unit_warns() -> None:
    f = judge("c13-node-ip-without-iface-unit.service", overlay_cidr=ZT)

    assert (f.verdict, f.reasons) == (Verdict.WARN, ["overlay_flags_incomplete"])
    assert any("not --flannel-iface" in h for h in f.hints)


def test_c13_flannel_iface_without_node_ip_in_config_yaml_warns() -> None:
    f = judge("c13-iface-without-node-ip-config.yaml")

    assert (f.verdict, f.reasons) == (Verdict.WARN, ["overlay_flags_incomplete"])
    assert any("not --node-ip" in h for h in f.hints)


def test_a_node_ip_outside_the_overlay_fails() -> None:
    text = "k3s agent --node-ip 192.0.2.31 --flannel-iface ztabcdef12\n"
    f = kl.judge(Evidence(text), Context(overlay_cidr=ZT))

    assert f.reasons == ["node_ip_not_on_overlay"]
    assert f.details["node_ips_off_overlay"] == ["192.0.2.31"]


# --- servicelb ----------------------------------------------------------------------


def test_servicelb_left_on_is_judged_only_when_metallb_is_known() -> None:
    without = judge("server-install-without-disable-servicelb.txt")
    beside = judge(
        "server-install-without-disable-servicelb.txt", metallb_version="0.13.10"
    )

    assert without.verdict is Verdict.PASS
    assert any("--metallb-version" in h for h in without.hints)
    assert (beside.layer, beside.reasons) == (
        "lb",
        ["k3s_servicelb_active_with_metallb"],
    )


def test_servicelb_known_from_extra_context_fails_too() -> None:
    f = judge(
        "server-install-without-disable-servicelb.txt",
        extra={"metallb_installed": True},
    )

    assert f.reasons == ["k3s_servicelb_active_with_metallb"]


def test_servicelb_disabled_passes_beside_metallb() -> None:
    f = judge("server-install-disable-servicelb.txt", metallb_version="0.13.10")

    assert f.verdict is Verdict.PASS


# --- argument helpers ---------------------------------------------------------------


def test_invocations_unfold_install_exec_and_skip_log_lines() -> None:
    text = (HERE / "server-install-disable-servicelb.txt").read_text()
    text += (HERE / "agent-healthy.log").read_text()

    assert kl.invocations(text) == [
        [
            "server",
            "--disable=traefik",
            "--disable=servicelb",
            "--node-ip",
            "198.51.100.10",
            "--flannel-iface",
            "ztabcdef12",
        ]
    ]


def test_process_titles_without_arguments_are_not_read_as_commands() -> None:
    text = (
        "● k3s.service - Lightweight Kubernetes\n"
        "     CGroup: /system.slice/k3s.service\n"
        "             └─473 /usr/local/bin/k3s server\n"
        "root  473  9.1  /usr/local/bin/k3s server\n"
    )

    assert kl.invocations(text) == []


def test_evidence_never_quotes_a_join_token() -> None:
    text = (
        "k3s server --token K10abc::server:s3cret --node-ip 198.51.100.10 "
        "--datastore-endpoint=postgres://u:pw@db/k3s\n"
    )
    f = kl.judge(Evidence(text), Context(metallb_version="0.13.10"))

    assert f.reasons == [
        "overlay_flags_incomplete",
        "k3s_servicelb_active_with_metallb",
    ]
    assert all("s3cret" not in e and "pw@" not in e for e in f.evidence)
    assert "--token <redacted>" in f.evidence[0]


def test_flag_values_read_both_spellings_and_the_short_alias() -> None:
    args = ["agent", "-i", "198.51.100.20", "--node-ip=198.51.100.21", "--node-ip"]

    assert kl.flag_values(args, "node-ip") == ["198.51.100.20", "198.51.100.21", ""]


# --- detection and robustness -------------------------------------------------------

FOREIGN = {
    "linkerd check": "kubernetes-api\n--------------\n√ can initialize the client\n",
    "locust csv": "Type,Name,Request Count\nGET,/api/list,600\n",
    "zerotier member json": '{"id": "8056c2e21c", "config": {"authorized": true}}',
    "kubectl table": (
        "NAME     STATUS   ROLES    AGE   VERSION\n"
        "node-1   Ready    master   4d    v1.27.4\n"
    ),
    "helm values": "controller:\n  image:\n    tag: v0.12.1\nspeaker: {}\n",
}


@pytest.mark.parametrize("text", FOREIGN.values(), ids=list(FOREIGN))
def test_other_inputs_score_zero(text: str) -> None:
    assert kl.detect(Evidence(text)) == 0.0


def test_foreign_input_judged_as_this_kind_is_unrecognised() -> None:
    f = kl.judge(Evidence(FOREIGN["locust csv"]), Context())

    assert (f.verdict, f.reasons) == (Verdict.HARNESS_ERROR, ["unrecognised_input"])


@pytest.mark.parametrize("path", sorted(HERE.iterdir()), ids=lambda p: p.name)
def test_every_prefix_of_a_fixture_is_judged_without_raising(path: Path) -> None:
    text = path.read_text()
    for end in range(0, len(text), 31):
        ctx = Context(overlay_cidr=ZT, metallb_version="0.13.10")
        assert kl.judge(Evidence(text[:end]), ctx).verdict in Verdict


@pytest.mark.parametrize(
    "text",
    [
        "",
        "k3s server '--unterminated",
        "k3s agent --node-ip",
        "--flannel-iface\n",
        "node-ip: [1, 2]\nflannel-iface: {a: b}\n",
        "ExecStart=/usr/local/bin/k3s \\\n",
        "k3s[1]: Node password rejected" + "x" * 10_000,
    ],
)
def test_arbitrary_text_never_raises(text: str) -> None:
    ctx = Context(overlay_cidr="bogus", metallb_version="0.13")
    assert kl.judge(Evidence(text), ctx).verdict in Verdict


# --- servicelb on by default (defect 10 of the fresh-user review) --------------------


def test_the_stock_unit_without_flags_runs_servicelb_beside_metallb() -> None:
    # The unit k3s's install script writes (get.k3s.io, INSTALL_K3S_EXEC empty):
    # `ExecStart=/usr/local/bin/k3s \` then `    server \` and an empty line.
    f = judge("k3s-stock-unit.service", metallb_version="0.14.3")

    assert (f.verdict, f.reasons) == (
        Verdict.FAIL,
        ["k3s_servicelb_active_with_metallb"],
    )
    assert f.layer == "lb"
    assert "servicelb is on by default" in f.evidence[0]


def test_a_typed_bare_k3s_server_runs_servicelb_beside_metallb() -> None:
    f = kl.judge(Evidence("$ sudo k3s server\n"), Context(metallb_version="0.14.3"))

    assert f.reasons == ["k3s_servicelb_active_with_metallb"]


def test_a_process_listing_with_a_pid_column_is_still_a_title() -> None:
    text = "473 /usr/local/bin/k3s server\nroot 473 9.1 2.0 /usr/local/bin/k3s server\n"

    assert kl.invocations(text) == []


def test_flags_disabling_servicelb_beside_the_flagless_unit_cover_it() -> None:
    unit = (HERE / "k3s-stock-unit.service").read_text()
    ctx = Context(metallb_version="0.14")

    assert kl.judge(Evidence(unit), ctx).reasons == [
        "k3s_servicelb_active_with_metallb"
    ]
    assert kl.judge(Evidence(unit + "--disable servicelb\n"), ctx).reasons == []
