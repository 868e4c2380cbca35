"""The proxy-log analyzer finds identity failures in every proxy log format.

Fixture sources (public machine output, re-typed; names anonymised):
- identity_fail_fast_current: start-up lines from linkerd/linkerd2#9812 and the
  error of #10830 ("Failed to obtain identity ... service in fail-fast"), at the
  ERROR level linkerd2-proxy's identity client logs it with.
- identity_certify_2019: linkerd/linkerd2#3620 and #4485 (`ERR! [...]` format).
- identity_expired_cert_2019: linkerd/linkerd2#3676 (expired trust root).
- identity_json_format: the JSON log format of linkerd/linkerd2#8965.
- healthy_current, startup_identity_transient, warnings_only: #9812's lines, and
  the proxy's "Certified identity" line; other_error is built in the current
  line format around a non-identity error.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import proxy_log as pl
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data" / "proxy-log"


def judge(name: str):
    return pl.judge(Evidence.from_path(DATA / name), Context())


EXPECTED = [
    ("identity_fail_fast_current.log", Verdict.FAIL, ["identity_unreachable"]),
    ("identity_certify_2019.log", Verdict.FAIL, ["identity_unreachable"]),
    ("identity_expired_cert_2019.log", Verdict.FAIL, ["identity_unreachable"]),
    ("identity_json_format.log", Verdict.FAIL, ["identity_unreachable"]),
    ("other_error.log", Verdict.FAIL, ["check_failed"]),
    ("startup_identity_transient.log", Verdict.PASS, []),
    ("warnings_only.log", Verdict.PASS, []),
    ("healthy_current.log", Verdict.PASS, []),
]


@pytest.mark.parametrize(("name", "verdict", "reasons"), EXPECTED)
def test_each_fixture_gets_its_expected_verdict_and_codes(name, verdict, reasons):
    finding = judge(name)

    assert (finding.layer, finding.verdict, finding.reasons) == (
        "mesh",
        verdict,
        reasons,
    )


def test_every_fixture_is_listed_in_the_expectations():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(n for n, _, _ in EXPECTED)


def test_identity_failures_are_cited_as_evidence():
    finding = judge("identity_fail_fast_current.log")

    assert finding.details["identity_failures"] == 4
    assert any("Failed to obtain identity" in e for e in finding.evidence)
    assert all("INFO" not in e for e in finding.evidence)


def test_an_expired_certificate_hints_at_clocks_and_the_issuer():
    finding = judge("identity_expired_cert_2019.log")

    assert any("date -u" in h for h in finding.hints)


def test_identity_errors_followed_by_certification_are_a_hint_only():
    finding = judge("startup_identity_transient.log")

    assert finding.details["identity_failures"] == 2
    assert any("transient" in h for h in finding.hints)


def test_the_same_errors_without_certification_fail():
    text = (DATA / "startup_identity_transient.log").read_text()
    text = "\n".join(ln for ln in text.splitlines() if "Certified" not in ln)

    finding = pl.judge(Evidence(text), Context())

    assert finding.reasons == ["identity_unreachable"]


def test_repeated_errors_are_counted_as_one_shape():
    finding = judge("other_error.log")

    assert [e["count"] for e in finding.details["errors"]] == [2]
    assert len(finding.evidence) == 2


def test_warnings_name_their_most_frequent_message():
    finding = judge("warnings_only.log")

    assert finding.details["warnings"] == 2
    assert any("Failed to connect" in h and "(2x)" in h for h in finding.hints)


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[     0.1s]  INFO ThreadId(01) linkerd2_proxy: Admin interface", "INFO"),
        ("ERR! [ 1.5s] linkerd2_proxy::app::identity Failed", "ERROR"),
        ('{"level":"WARN","fields":{"message":"m"},"target":"linkerd_app"}', "WARN"),
        ("2024-01-01T00:00:00Z [ 2.0s] ERROR ThreadId(02) linkerd_app: x", "ERROR"),
    ],
)
def test_each_line_format_is_parsed_with_its_level(line, level):
    parsed = pl.parse_line(line)

    assert parsed is not None and parsed.level == level


OTHER_KINDS = {
    "yaml manifest": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n",
    "locust csv": "Type,Name,Request Count\nGET,/,1200\n",
    "injector log": 'time="2020-08-10T08:33:18Z" level=info msg="received pod/web-"\n',
    "check output": "linkerd-version\n---------------\n√ cli is up-to-date\n",
    "stat table": "NAME MESHED SUCCESS RPS\nweb 1/1 100.00% 2.0rps\n",
    "k3s log": 'time="2024-01-01T00:00:00Z" level=info msg="Starting k3s v1.28.5"\n',
    "other rust app": "[  0.1s]  INFO ThreadId(01) myapp: started\n",
    "json lines": '{"level":"info","msg":"hello","time":"2024-01-01"}\n',
    "empty": "",
}


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_other_kinds_typical_inputs_score_zero(text):
    assert pl.detect(Evidence(text)) == 0.0


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_judging_input_of_another_kind_is_unrecognised(text):
    assert pl.judge(Evidence(text), Context()).reasons == ["unrecognised_input"]


def test_judge_never_raises_on_cut_or_garbled_text():
    rng = random.Random(3)
    for path in sorted(DATA.iterdir()):
        text = path.read_text(encoding="utf-8")
        for cut in range(0, len(text), max(1, len(text) // 20)):
            piece = "".join(
                c if rng.random() > 0.05 else rng.choice('[]{}"\n ERROR')
                for c in text[:cut]
            )
            assert pl.judge(Evidence(piece), Context()).layer in ("mesh", "unknown")


def test_every_fixture_is_picked_by_the_registry_when_all_analyzers_exist():
    from meshstack import analyzers

    try:
        analyzers.kinds()
    except ImportError as exc:
        pytest.skip(f"not every analyzer module exists yet: {exc}")
    for name, _, _ in EXPECTED:
        text = (DATA / name).read_text(encoding="utf-8")
        kind = analyzers.detect(Evidence(text, name="renamed"))
        assert kind is not None and kind.name == "proxy-log", name


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        (
            "[ 1.0s] ERROR ThreadId(01) linkerd_app: " + "identity:" * 20_000,
            Verdict.FAIL,
        ),
        (
            '{"level":"WARN","fields":{"message":"' + "identity{" * 20_000 + '"}}',
            Verdict.HARNESS_ERROR,
        ),
        (("[ 1.0s]  WARN ThreadId(01) linkerd_app: x\n") * 5_000, Verdict.PASS),
    ],
    ids=["repeated span", "long json message", "many lines"],
)
def test_pathological_input_is_judged_without_error(text, verdict):
    """Long repeated units (the inputs a backtracking pattern would choke on) are
    judged to the verdict their content calls for; benchmarks/pathological.py
    measures how long they take."""
    pl.detect(Evidence(text))

    assert pl.judge(Evidence(text), Context()).verdict is verdict


# --- a line prefix on every line (CI timestamps, kubectl --prefix, quoting) ------

LINE_PREFIXES = {
    "github actions": "2026-12-04T10:00:00.0000000Z ",
    "kubectl --prefix": "[pod/web-abc/linkerd-proxy] ",
    "quoted": "> ",
    "syslog": "Dec  4 10:00:00 ci-runner-1 ci-job[4242]: ",
}


@pytest.mark.parametrize("prefix", LINE_PREFIXES.values(), ids=LINE_PREFIXES.keys())
@pytest.mark.parametrize("name", [e[0] for e in EXPECTED])
def test_a_prefix_on_every_line_judges_like_the_bare_capture(name, prefix):
    text = (DATA / name).read_text(encoding="utf-8")
    prefixed = "".join(prefix + line for line in text.splitlines(keepends=True))
    bare = pl.judge(Evidence(text), Context())

    finding = pl.judge(Evidence(prefixed), Context())

    assert pl.detect(Evidence(prefixed)) >= 0.5
    assert (finding.verdict, finding.reasons) == (bare.verdict, bare.reasons)
    assert bare.verdict is not Verdict.HARNESS_ERROR
