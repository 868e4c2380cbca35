"""The linkerd-check analyzer reaches the verdicts the real-world cases name.

Fixture sources (public machine output, re-typed; names anonymised):
- c01_*: MicrosoftDocs/azure-docs#49379 and linkerd/linkerd2#4161 (the × form);
  the ‼ form is the wording after linkerd/linkerd2 PR#4195.
- c02_*: linkerd/linkerd2 PR#3701 review comment (forbidden lines, cut off as
  quoted), #5290 (already exists), #1846 (2018 dotted format); the `✔ ✘ ⚠` glyphs
  are those of linkerd2's cli/cmd/testdata/check_output.golden.
- c04_*: Panfactum/stack#223; the second copy adds the per-section
  "Status check results are √" line that 2.10-era CLIs printed (PR#5647, #7037).
- c07_*: linkerd/linkerd2#7960, #5669, #7037 (JSON stream, then text in 2.11.0);
  the error entry follows cli/cmd/testdata/check_output_json.golden.
- short_cut_waiting_spinner: linkerd/linkerd2#10830 (`check -o short` cut off).
- dotted_2018_cut_retry: the 2018 CLI's `[retry] -- <error>` line format.
- trust_anchor_expired: linkerd/linkerd2#9256; issuer wording from
  pkg/issuercerts ("will expire on", "not valid anymore. Expired on").
- proxy_*, viz_*, control_plane_*, other_failure, healthy_*: check names and
  messages as printed by linkerd2's pkg/healthcheck and viz/pkg/healthcheck.
- c04_viz_missing_*, status_line_only, cut_after_*, c07_json_second_document_*,
  c07_json_viz_namespace_not_found, cli_dev_version_hint: a user's defect report
  (re-typed): the shapes above with a CI timestamp, `kubectl logs --prefix` or
  `> ` quoting on every line, cut off after a warning, or a JSON document left
  open; c01_pre_clock_skew_as_written is C01's artifact exactly as the case
  file prints it (placeholders and "[reconstructed]" markers included).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import _linkerd_check_read as lcr
from meshstack.analyzers import linkerd_check as lc
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data" / "linkerd-check"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def evidence(name: str) -> Evidence:
    return Evidence.from_path(DATA / name)


def judge(name: str, now: datetime | None = NOW, **ctx: object):
    return lc.judge(evidence(name), Context(now=now, **ctx))  # type: ignore[arg-type]


EXPECTED = [
    # Prefixes only some lines carry, and `gh run view --log` heads (seen by a user).
    ("mixed_prefix_hidden_failure.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("gh_run_view_log_prefix.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("c01_pre_clock_skew.txt", Verdict.FAIL, ["clock_skew"]),
    ("c01_pre_clock_skew_warning.txt", Verdict.WARN, ["clock_skew"]),
    ("c02_pre_rbac_forbidden_cut.txt", Verdict.FAIL, ["rbac_forbidden"]),
    ("c02_pre_already_exists.txt", Verdict.WARN, ["preexisting_resource"]),
    ("c02_pre_2018_dotted.txt", Verdict.FAIL, ["rbac_forbidden"]),
    ("c02_pre_2019_glyphs.txt", Verdict.FAIL, ["rbac_forbidden", "check_failed"]),
    ("c04_cni_config_missing.txt", Verdict.FAIL, ["cni_config_missing"]),
    ("c04_cni_missing_behind_ok_status.txt", Verdict.FAIL, ["cni_config_missing"]),
    ("c07_json_stream.json", Verdict.WARN, ["version_mismatch"]),
    ("c07_json_error.json", Verdict.FAIL, ["check_failed"]),
    ("c07_json_error_cut.json", Verdict.FAIL, ["check_failed"]),
    ("c07_json_then_text.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("short_cut_waiting_spinner.txt", Verdict.FAIL, ["control_plane_not_ready"]),
    ("dotted_2018_cut_retry.txt", Verdict.FAIL, ["control_plane_not_ready"]),
    ("control_plane_pods_not_ready.txt", Verdict.FAIL, ["control_plane_not_ready"]),
    ("trust_anchor_expired.txt", Verdict.FAIL, ["identity_issuer_expiring"]),
    (
        "issuer_expiring_warning_short.txt",
        Verdict.FAIL,
        ["identity_issuer_expiring"],
    ),
    ("proxy_not_meshed.txt", Verdict.FAIL, ["not_meshed"]),
    ("proxy_version_digest.txt", Verdict.WARN, ["version_unknown"]),
    ("viz_check_not_found.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("other_failure.txt", Verdict.FAIL, ["check_failed"]),
    ("healthy_cut_no_status.txt", Verdict.FAIL, ["check_failed"]),
    ("healthy_check.txt", Verdict.PASS, []),
    # `-o short` of a healthy run prints only the status line, which is not
    # trusted on its own (C04): nothing was judged.
    ("short_healthy.txt", Verdict.INCONCLUSIVE, ["no_data"]),
    ("pre_healthy.txt", Verdict.PASS, []),
    ("cni_healthy.txt", Verdict.PASS, []),
    ("c07_json_healthy.json", Verdict.PASS, []),
    ("c04_viz_missing_gha_timestamps.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("c04_viz_missing_kubectl_prefix.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("c04_viz_missing_quoted.txt", Verdict.FAIL, ["viz_extension_not_found"]),
    ("status_line_only.txt", Verdict.INCONCLUSIVE, ["no_data"]),
    ("cut_after_cli_warning.txt", Verdict.FAIL, ["check_failed"]),
    ("cut_after_issuer_warning_gha.txt", Verdict.FAIL, ["check_failed"]),
    (
        "c07_json_second_document_open.json",
        Verdict.FAIL,
        ["version_mismatch", "check_failed"],
    ),
    (
        "c07_json_second_document_cut_in_categories.json",
        Verdict.FAIL,
        ["version_mismatch", "check_failed"],
    ),
    (
        "c07_json_viz_namespace_not_found.json",
        Verdict.FAIL,
        ["version_mismatch", "viz_extension_not_found"],
    ),
    ("c01_pre_clock_skew_as_written.txt", Verdict.FAIL, ["clock_skew"]),
    ("cli_dev_version_hint.txt", Verdict.PASS, []),
]


@pytest.mark.parametrize(("name", "verdict", "reasons"), EXPECTED)
def test_each_fixture_gets_its_expected_verdict_and_codes(name, verdict, reasons):
    finding = judge(name)

    assert (finding.layer, finding.verdict, finding.reasons) == (
        "mesh",
        verdict,
        reasons,
    )
    assert finding.kind == "linkerd-check"


def test_every_fixture_is_listed_in_the_expectations():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(n for n, _, _ in EXPECTED)


# --- C01 -------------------------------------------------------------------------


def test_clock_skew_names_the_node_and_keeps_the_deciding_lines():
    finding = judge("c01_pre_clock_skew.txt")

    assert finding.details["nodes"] == ["node-1"]
    assert finding.evidence[0] == "× no clock skew detected"
    assert "clock skew detected for node(s): node-1" in finding.evidence[1]


def test_failed_clock_skew_carries_the_false_positive_note_and_ntp_remedy():
    hints = " ".join(judge("c01_pre_clock_skew.txt").hints)

    assert "possible false positive" in hints and "1.17" in hints
    assert "date -u" in hints and "NTP" in hints


def test_an_outdated_cli_is_a_hint_and_not_a_warning_of_its_own():
    finding = judge("c01_pre_clock_skew.txt")

    assert any(h.startswith("cli is up-to-date") for h in finding.hints)
    assert "‼ cli is up-to-date" not in finding.evidence


def test_clock_skew_printed_as_a_warning_lists_every_node():
    finding = judge("c01_pre_clock_skew_warning.txt")

    assert finding.details["nodes"] == ["node-1", "node-3"]
    assert not any("possible false positive" in h for h in finding.hints)


# --- C02 -------------------------------------------------------------------------


def test_forbidden_lines_become_verb_resource_scope_triples():
    finding = judge("c02_pre_rbac_forbidden_cut.txt")

    triples = [
        (f["verb"], f["resource"], f["scope"]) for f in finding.details["forbidden"]
    ]
    assert triples == [
        ("get", "namespaces", "namespace linkerd"),
        ("create", "namespaces", "cluster"),
        ("create", "clusterroles", "cluster"),
    ]
    assert finding.details["forbidden"][2]["group"] == "rbac.authorization.k8s.io"
    assert any("cluster-admin" in h and "k3s.yaml" in h for h in finding.hints)


def test_a_cut_off_rbac_failure_still_fails_and_says_it_was_cut():
    finding = judge("c02_pre_rbac_forbidden_cut.txt")

    assert finding.details["truncated"] is True
    assert finding.verdict is Verdict.FAIL


def test_already_exists_under_a_cross_is_a_warning_not_rbac():
    finding = judge("c02_pre_already_exists.txt")

    assert finding.details["existing"] == [
        'cannot create Namespace/linkerd: namespaces "linkerd" already exists'
    ]
    assert "forbidden" not in finding.details


def test_the_2018_missing_permission_line_is_reported_as_create_namespace():
    finding = judge("c02_pre_2018_dotted.txt")

    assert finding.details["forbidden"][0]["verb"] == "create"
    assert finding.details["forbidden"][0]["resource"] == "Namespace"
    assert "[FAIL] -- Missing permissions" in finding.evidence[0]


def test_the_2019_glyph_set_is_read_like_the_current_one():
    finding = judge("c02_pre_2019_glyphs.txt")

    assert finding.details["forbidden"][0]["scope"] == "cluster"
    assert finding.details["failed_checks"][0]["severity"] == "warning"


# --- C04 -------------------------------------------------------------------------


def test_missing_cni_config_hints_at_the_cni_namespace_flag():
    finding = judge("c04_cni_config_missing.txt")

    assert any("--cni-namespace" in h for h in finding.hints)
    assert finding.evidence[1].strip() == 'configmaps "linkerd-cni-config" not found'


def test_the_cni_hint_names_the_namespace_the_context_gives():
    finding = judge("c04_cni_config_missing.txt", cni_namespace="linkerd")

    assert any("in linkerd:" in h for h in finding.hints)


def test_an_ok_status_line_does_not_hide_a_later_failure():
    text = evidence("c04_cni_missing_behind_ok_status.txt").text
    assert text.rstrip().endswith("Status check results are √")

    assert judge("c04_cni_missing_behind_ok_status.txt").verdict is Verdict.FAIL


# --- C07 -------------------------------------------------------------------------


def test_a_json_stream_is_read_document_by_document():
    report = lc.read(evidence("c07_json_stream.json").text)

    assert report.json_documents == 2
    assert report.checks[1].lines[-1] == '"result": "warning"'
    assert [c.category for c in report.checks] == [
        "control-plane-version",
        "control-plane-version",
        "linkerd-viz",
    ]


def test_json_version_warning_reports_both_versions():
    finding = judge("c07_json_stream.json")

    assert finding.details["success"] is True
    assert finding.details["versions"][0]["seen"] == ["stable-2.10.0", "stable-2.10.1"]


def test_json_error_carries_category_description_and_error():
    finding = judge("c07_json_error.json")

    assert finding.details["success"] is False
    assert finding.details["failed_checks"] == [
        {
            "category": "linkerd-config",
            "description": "control plane ClusterRoles exist",
            "error": "missing ClusterRoles: linkerd-linkerd-identity",
            "severity": "failed",
        }
    ]


def test_a_json_document_cut_off_after_an_error_still_fails():
    finding = judge("c07_json_error_cut.json")

    assert finding.details["truncated"] is True
    assert finding.details["success"] is False
    assert finding.details["failed_checks"][0]["category"] == "linkerd-config"


def test_text_after_the_json_documents_goes_to_the_text_reader():
    report = lc.read(evidence("c07_json_then_text.txt").text)

    assert report.json_documents == 1
    assert report.checks[-1].status == lc.FAILED
    assert report.checks[-1].category == "linkerd-viz"


def test_overall_json_success_is_the_and_of_every_document():
    first = '{"success": true, "categories": []}\n'
    second = '{"success": false, "categories": []}\n'

    finding = lc.judge(Evidence(first + second), Context(now=NOW))

    assert finding.details["success"] is False
    assert finding.reasons == ["check_failed"]


# --- waiting and readiness -----------------------------------------------------


def test_output_cut_off_while_waiting_names_what_it_waited_for():
    finding = judge("short_cut_waiting_spinner.txt")

    assert "sp-validator is not ready" in finding.details["waiting_on"]


def test_a_retry_followed_by_a_result_is_not_a_wait():
    text = evidence("dotted_2018_cut_retry.txt").text
    text += (
        "linkerd-api: control plane pods are ready..........................[ok]\n"
        "\nStatus check results are [ok]\n"
    )

    assert lc.judge(Evidence(text), Context()).verdict is Verdict.PASS


def test_waiting_for_check_to_complete_at_the_end_is_control_plane_not_ready():
    text = "linkerd-existence\n-----------------\n/ waiting for check to complete\n"

    finding = lc.judge(Evidence(text), Context())

    assert finding.reasons == ["control_plane_not_ready"]


# --- identity certificates -----------------------------------------------------


@pytest.mark.parametrize(
    ("now", "verdict", "reasons"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), Verdict.FAIL, ["identity_issuer_expiring"]),
        (datetime(2024, 1, 6, tzinfo=UTC), Verdict.FAIL, ["identity_issuer_expiring"]),
        (datetime(2023, 11, 1, tzinfo=UTC), Verdict.WARN, ["check_failed"]),
    ],
)
def test_issuer_expiry_is_judged_against_seven_days_from_now(now, verdict, reasons):
    finding = judge("issuer_expiring_warning_short.txt", now=now)

    assert (finding.verdict, finding.reasons) == (verdict, reasons)


def test_issuer_expiry_without_a_judging_time_says_so_in_a_hint():
    finding = judge("issuer_expiring_warning_short.txt", now=None)

    assert finding.verdict is Verdict.WARN
    assert any("Context.now" in h for h in finding.hints)


def test_an_expired_anchor_fails_whatever_the_judging_time():
    finding = judge("trust_anchor_expired.txt", now=None)

    assert finding.reasons == ["identity_issuer_expiring"]
    assert finding.details["certificates"][0]["date"] == "2022-08-11T12:29:15Z"


def test_an_expired_issuer_printed_as_a_warning_still_fails():
    text = (
        "linkerd-identity\n----------------\n"
        "‼ issuer cert is within its validity period\n"
        "    issuer certificate is not valid anymore. Expired on 2023-12-30T00:00:00Z\n"
        "\nStatus check results are √\n"
    )

    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert (finding.verdict, finding.reasons) == (
        Verdict.FAIL,
        ["identity_issuer_expiring"],
    )


def test_an_expiring_webhook_cert_is_not_an_issuer_problem():
    text = (
        "linkerd-webhooks-and-apisvc-tls\n-------------------------------\n"
        "× tap API server has valid cert\n"
        "    certificate will expire on 2024-01-02T20:22:32Z\n"
        "\nStatus check results are ×\n"
    )

    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert finding.reasons == ["check_failed"]


def test_versions_that_match_are_not_a_mismatch():
    text = (
        "control-plane-version\n---------------------\n"
        "‼ control plane and cli versions match\n"
        "    control plane running edge-24.1.2 but cli running edge-24.1.2\n"
        "\nStatus check results are √\n"
    )

    finding = lc.judge(Evidence(text), Context())

    assert finding.reasons == ["check_failed"]
    assert finding.verdict is Verdict.WARN


def test_a_proxy_version_that_is_a_registry_path_is_unknown():
    text = (
        "linkerd-control-plane-proxy\n---------------------------\n"
        "‼ control plane proxies and cli versions match\n"
        "    linkerd-identity-5f6 running ghcr.io/me/proxy:dev but cli running 2.14.1\n"
        "\nStatus check results are √\n"
    )

    assert lc.judge(Evidence(text), Context()).reasons == ["version_unknown"]


def test_coloured_terminal_output_is_read_like_plain_text():
    text = evidence("c01_pre_clock_skew.txt").text.replace(
        "×", "\x1b[31m\x1b[1m×\x1b[0m"
    )

    assert lc.judge(Evidence(text), Context()).reasons == ["clock_skew"]


# --- detection and robustness --------------------------------------------------


OTHER_KINDS = {
    "yaml manifest": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n---\n"
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
    "locust csv": "Type,Name,Request Count,Failure Count,Median Response Time\n"
    "GET,/,1200,3,12\n,Aggregated,1200,3,12\n",
    "prometheus json": '{"status":"success","data":{"resultType":"vector",'
    '"result":[]}}',
    "stat table": "NAME MESHED SUCCESS RPS LATENCY_P50\nweb 1/1 100.00% 2.0rps 1ms\n",
    "proxy log": "[     0.001598s]  INFO ThreadId(01) linkerd2_proxy: Admin interface "
    "on 0.0.0.0:4191\n",
    "injector log": 'time="2020-08-10T08:33:18Z" level=info msg="received pod/web-"\n',
    "prose": "The quick brown fox.\n- a list item\n- another\n",
    "empty": "",
}


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_other_kinds_typical_inputs_score_zero(text):
    assert lc.detect(Evidence(text)) == 0.0


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_judging_input_of_another_kind_is_unrecognised(text):
    finding = lc.judge(Evidence(text, name="x"), Context())

    assert finding.verdict is Verdict.HARNESS_ERROR
    assert finding.reasons == ["unrecognised_input"]


def test_judge_never_raises_on_cut_or_garbled_text():
    rng = random.Random(7)
    texts = [p.read_text(encoding="utf-8") for p in sorted(DATA.iterdir())]
    for text in texts:
        for cut in range(0, len(text), max(1, len(text) // 25)):
            piece = text[:cut]
            lc.judge(Evidence(piece), Context(now=NOW))
            garbled = "".join(
                c if rng.random() > 0.05 else rng.choice('{}[]"×√‼\r\n\\ -')
                for c in piece
            )
            assert lc.judge(Evidence(garbled), Context()).layer in ("mesh", "unknown")


def test_every_fixture_is_picked_by_the_registry_when_all_analyzers_exist():
    from meshstack import analyzers

    try:
        analyzers.kinds()
    except ImportError as exc:
        pytest.skip(f"not every analyzer module exists yet: {exc}")
    for name, _, _ in EXPECTED:
        kind = analyzers.detect(Evidence(evidence(name).text, name="renamed"))
        assert kind is not None and kind.name == "linkerd-check", name


def test_a_failed_replica_set_check_is_control_plane_not_ready():
    text = (
        "linkerd-existence\n-----------------\n"
        "× control plane replica sets are ready\n"
        '    FailedCreate: pods "linkerd-identity-5f6" is forbidden: error looking '
        "up service account linkerd/linkerd-identity\n"
        "\nStatus check results are ×\n"
    )

    assert lc.judge(Evidence(text), Context()).reasons == ["control_plane_not_ready"]


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("a" + "." * 50_000 + "[ok] trailing", Verdict.HARNESS_ERROR),
        ("linkerd-x\n---------\n× a\n    " + "identity " * 20_000 + "\n", Verdict.FAIL),
        ("× " + "clock skew detected for node(s): " + "a, " * 30_000, Verdict.FAIL),
        ("{" * 5_000 + "\n" + "[" * 5_000, Verdict.HARNESS_ERROR),
    ],
    ids=["long dotted line", "long message", "long node list", "open brackets"],
)
def test_pathological_input_is_judged_without_error(text, verdict):
    """Long repeated units (the inputs a backtracking pattern would choke on) are
    judged to the verdict their content calls for; benchmarks/pathological.py
    measures how long they take."""
    lc.detect(Evidence(text))

    assert lc.judge(Evidence(text), Context()).verdict is verdict


FAILING = [n for n, v, _ in EXPECTED if v is Verdict.FAIL]


@pytest.mark.parametrize("name", FAILING)
def test_a_copy_cut_right_after_its_deciding_lines_still_fails_the_same_way(name):
    whole = judge(name)
    text = evidence(name).text
    end = max(text.index(line) + len(line) for line in whole.evidence)

    cut = lc.judge(Evidence(text[:end] + "\n"), Context(now=NOW))

    assert cut.verdict is Verdict.FAIL
    assert set(whole.reasons) - {"check_failed"} <= set(cut.reasons)


def test_an_unreachable_identity_service_is_identity_unreachable():
    text = (
        "linkerd-identity-data-plane\n---------------------------\n"
        "× data plane proxies certificate match CA\n"
        "    Failed to obtain identity: controller linkerd-identity-headless:8080 "
        "service in fail-fast\n"
        "\nStatus check results are ×\n"
    )

    assert lc.judge(Evidence(text), Context()).reasons == ["identity_unreachable"]


# --- defect report: line prefixes, cut-off copies, versions, expiry --------------

HIDDEN = (
    "linkerd-version\n---------------\n{ok} can determine the latest version\n\n"
    "Status check results are {ok}\n\nlinkerd-viz\n-----------\n"
    '{bad} linkerd-viz Namespace exists\n    namespaces "linkerd-viz" not found\n'
    "\nStatus check results are {ok}\n"
)
PREFIXES = {
    "github actions": "2026-12-04T10:00:00.0000000Z ",
    "kubectl --timestamps": "2026-12-04T10:00:00.123456789+00:00 ",
    "kubectl --prefix": "[pod/linkerd-check-abc/check] ",
    "quoted": "> ",
    "syslog": "Dec  4 10:00:00 ci-runner-1 ci-job[4242]: ",
    "journald iso": "2026-12-04T10:00:00+0000 ci-runner-1 ci-job[4242]: ",
}
GLYPHS = {"current": ("√", "×"), "2019": ("✔", "✘")}


@pytest.mark.parametrize("glyphs", GLYPHS.values(), ids=GLYPHS.keys())
@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
def test_a_failure_behind_a_line_prefix_fails_like_the_bare_output(prefix, glyphs):
    bare = HIDDEN.format(ok=glyphs[0], bad=glyphs[1])
    prefixed = "".join(prefix + line for line in bare.splitlines(keepends=True))

    finding = lc.judge(Evidence(prefixed), Context())

    assert lc.detect(Evidence(prefixed)) >= 0.5
    assert (finding.verdict, finding.reasons) == (
        Verdict.FAIL,
        ["viz_extension_not_found"],
    )


def test_a_prefix_on_only_some_lines_is_taken_off_those_lines():
    text = "linkerd-viz\n-----------\n> √ a quoted line\n√ viz is fine\n"

    assert lcr.strip_prefix(text) == (
        "linkerd-viz\n-----------\n√ a quoted line\n√ viz is fine\n"
    )


def test_a_status_line_alone_is_inconclusive_not_a_pass():
    finding = judge("status_line_only.txt")

    assert finding.verdict is Verdict.INCONCLUSIVE
    assert any("no check" in h for h in finding.hints)


@pytest.mark.parametrize(
    "name", ["cut_after_cli_warning.txt", "cut_after_issuer_warning_gha.txt"]
)
def test_a_copy_cut_off_after_a_warning_fails_and_says_it_was_cut(name):
    finding = judge(name)

    assert finding.verdict is Verdict.FAIL
    assert finding.verdict_override is None
    assert finding.details["truncated"] is True


@pytest.mark.parametrize(
    "name",
    [
        "c07_json_second_document_open.json",
        "c07_json_second_document_cut_in_categories.json",
    ],
)
def test_a_json_document_left_open_after_a_whole_one_is_reported_as_truncated(name):
    finding = judge(name)

    assert finding.details["truncated"] is True
    assert finding.verdict is Verdict.FAIL


def test_json_viz_namespace_not_found_is_read_like_the_text_form():
    finding = judge("c07_json_viz_namespace_not_found.json")

    assert "viz_extension_not_found" in finding.reasons
    assert "check_failed" not in finding.reasons


@pytest.mark.parametrize(
    "name", ["c01_pre_clock_skew_as_written.txt", "cli_dev_version_hint.txt"]
)
def test_a_cli_freshness_warning_is_a_hint_whatever_version_it_names(name):
    finding = judge(name)

    assert "version_unknown" not in finding.reasons
    assert any(h.startswith("cli is up-to-date:") for h in finding.hints)
    assert not any("a proxy reports" in h for h in finding.hints)


def test_a_control_plane_with_a_dev_version_is_not_a_proxy_version_unknown():
    text = (
        "control-plane-version\n---------------------\n"
        "‼ control plane and cli versions match\n"
        "    control plane running dev-0123abcd-user but cli running stable-2.14.10\n"
        "\nStatus check results are √\n"
    )

    finding = lc.judge(Evidence(text), Context())

    assert "version_unknown" not in finding.reasons
    assert any("not release versions" in h for h in finding.hints)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (datetime(2024, 1, 2, tzinfo=UTC), "expires within 7 days"),
        (datetime(2024, 1, 9, tzinfo=UTC), "expired"),
    ],
)
def test_an_issuer_past_its_date_is_labelled_expired(now, state):
    finding = judge("issuer_expiring_warning_short.txt", now=now)

    assert finding.reasons == ["identity_issuer_expiring"]
    assert finding.details["certificates"][0]["state"] == state


def test_a_control_plane_freshness_check_naming_a_dev_build_is_a_hint():
    text = (
        "control-plane-version\n---------------------\n"
        "‼ control plane is up-to-date\n"
        "    is running version dev-0123abcd-user but the latest stable version is "
        "stable-2.14.10\n"
        "\nStatus check results are √\n"
    )

    finding = lc.judge(Evidence(text), Context())

    assert (finding.verdict, finding.reasons) == (Verdict.PASS, [])
    assert any(h.startswith("control plane is up-to-date:") for h in finding.hints)


@pytest.mark.parametrize("prefix", PREFIXES.values(), ids=PREFIXES.keys())
@pytest.mark.parametrize(
    "name", ["c02_pre_2018_dotted.txt", "c07_json_stream.json", "c07_json_error.json"]
)
def test_the_dotted_and_json_forms_behind_a_line_prefix_judge_like_bare(name, prefix):
    text = evidence(name).text
    prefixed = "".join(prefix + line for line in text.splitlines(keepends=True))
    bare = judge(name)

    finding = lc.judge(Evidence(prefixed), Context(now=NOW))

    assert (finding.verdict, finding.reasons) == (bare.verdict, bare.reasons)


def test_a_failure_behind_a_prefix_only_some_lines_carry_still_fails() -> None:
    """An unprefixed healthy section, then a prefixed failing one (stdout and a CI
    system's timestamped stream interleaved), and `gh run view --log`'s
    job<TAB>step<TAB>time heads: the × must be read, never a PASS."""
    from meshstack.analyzers import Context, Evidence
    from meshstack.analyzers.linkerd_check import judge

    data = Path(__file__).parent / "data" / "linkerd-check"
    for name in ("mixed_prefix_hidden_failure.txt", "gh_run_view_log_prefix.txt"):
        f = judge(Evidence((data / name).read_text()), Context())
        assert f.reasons == ["viz_extension_not_found"], (name, f.to_json())


# --- empty results, and quoting only what the input holds ------------------------

STATUS_ONLY = {
    "glyph": "Status check results are √\n",
    "2019 glyph": "Status check results are ✔\n",
    "2018 dotted": "Status check results are [ok]\n",
    "json": '{"success": true, "categories": []}\n',
    "json pretty": '{\n  "success":true,\n  "categories": []\n}\n',
    "json stream": '{"success": true, "categories": []}\n'
    '{"success": true, "categories": [{"categoryName": "linkerd-viz", "checks": []}]}',
}


def quoted(hint: str) -> list[str]:
    """The spans a hint puts in single quotes."""
    return hint.split("'")[1::2]


@pytest.mark.parametrize("text", STATUS_ONLY.values(), ids=STATUS_ONLY.keys())
def test_a_status_alone_is_quoted_as_the_input_prints_it(text: str) -> None:
    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert (finding.verdict, finding.reasons) == (Verdict.INCONCLUSIVE, ["no_data"])
    [hint] = finding.hints
    assert quoted(hint) and all(q in text for q in quoted(hint)), hint
    assert finding.evidence and all(e in text for e in finding.evidence)


@pytest.mark.parametrize(
    "text",
    ['{"categories": []}', '{"categories": [{"categoryName": "x", "checks": []}]}'],
    ids=["no category", "a category of no check"],
)
def test_json_with_no_check_and_no_status_is_nothing_to_judge(text: str) -> None:
    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert (finding.verdict, finding.reasons) == (Verdict.INCONCLUSIVE, ["no_data"])
    assert "no check result" in finding.hints[0]
    assert "success" not in finding.details
    assert finding.evidence == []


def test_a_failed_status_with_no_failed_check_quotes_that_status() -> None:
    text = '{\n  "success": false,\n  "categories": []\n}\n'

    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert finding.reasons == ["check_failed"]
    assert finding.evidence == ['"success": false']


def test_a_json_stream_cut_before_its_first_check_fails_and_says_it_was_cut() -> None:
    text = '{"success": true, "categories": []}\n{"success": true, "categories": ['

    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert (finding.verdict, finding.reasons) == (Verdict.FAIL, ["check_failed"])
    assert finding.details["truncated"] is True


# Go's encoding/json prints a map's type with braces (map[string]interface {}); an
# error text carrying one is an object inside an object to a naive pattern.
BRACED_ERROR = (
    '{"success": false, "categories": [{"categoryName": "kubernetes-api", '
    '"checks": [{"description": "can initialize the client", "hint": "", '
    '"error": "bad config: map[string]interface {}{\\"a\\": 1}", "result": "error"}, '
    '{"description": "can query the Kubernetes API", "result": "success"}]}]}'
)


def test_a_json_check_whose_error_holds_braces_cites_its_own_text() -> None:
    finding = lc.judge(Evidence(BRACED_ERROR), Context(now=NOW))

    assert finding.reasons == ["check_failed"]
    assert finding.evidence
    assert all(line in BRACED_ERROR for line in finding.evidence), finding.evidence
    assert "can initialize the client" in finding.evidence[0]


def test_a_cut_json_document_still_reads_a_check_whose_error_holds_braces() -> None:
    cut = BRACED_ERROR[: BRACED_ERROR.index('{"description": "can query')]

    report = lcr.read(cut)

    assert [c.description for c in report.checks] == ["can initialize the client"]
    assert report.cut_json
    assert report.checks[0].lines[0] in cut


EDGE_INPUTS = [
    *STATUS_ONLY.values(),
    BRACED_ERROR,
    '{"success": false, "categories": []}',
    '{"categories": []}\n{"success": true, "categories": [',
    "linkerd-version\n---------------\n‼ can determine the latest version\n"
    "Status check results are √\n",
]


@pytest.mark.parametrize(
    "text",
    [*(p.read_text(encoding="utf-8") for p in sorted(DATA.iterdir())), *EDGE_INPUTS],
    ids=[*(p.name for p in sorted(DATA.iterdir())), *map(str, range(len(EDGE_INPUTS)))],
)
def test_every_evidence_line_is_a_line_of_the_input(text: str) -> None:
    finding = lc.judge(Evidence(text), Context(now=NOW))

    screen = "\n".join(lcr.screen_lines(lcr.strip_prefix(text)))
    assert all(line.strip() in screen for line in finding.evidence), finding.evidence


def test_a_freshness_check_with_no_message_is_not_given_one() -> None:
    text = EDGE_INPUTS[-1]

    finding = lc.judge(Evidence(text), Context(now=NOW))

    assert finding.hints[0].startswith(
        "can determine the latest version, with no message ("
    )


def test_what_to_do_about_a_failure_is_hinted_before_offline_version_notes() -> None:
    # Shaped as `linkerd check` prints it on an edge site with no route to
    # versioncheck.linkerd.io and no viz extension (format as in the fixtures).
    text = "\n".join(
        [
            "linkerd-version",
            "---------------",
            "‼ can determine the latest version",
            '    Get "https://versioncheck.linkerd.io/version.json": dial tcp: '
            "lookup versioncheck.linkerd.io: no such host",
            "‼ cli is up-to-date",
            "    unsupported version channel: stable-2.14.10",
            "",
            "linkerd-viz",
            "-----------",
            "× linkerd-viz Namespace exists",
            '    namespaces "linkerd-viz" not found',
            "",
            "Status check results are ×",
            "",
        ]
    )
    f = lc.judge(Evidence(text), Context())

    assert f.verdict is Verdict.FAIL, f.to_json()
    assert "viz_extension_not_found" in f.reasons
    notes = [h for h in f.hints if "not a warning" in h]
    assert len(notes) == 2, f.hints
    assert len(f.hints) > 2 and f.hints[-2:] == notes, f.hints
