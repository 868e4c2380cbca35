"""The injector-log analyzer finds skipped injections and misplaced annotations (C29).

Fixture sources (public machine output, re-typed; names anonymised):
- c29_label_not_annotation: the case's artifact, from linkerd/linkerd2#4856
  (label command, injector log) and #8340 (InjectionSkipped event wording).
- c29_deploy_metadata_annotation: linkerd/linkerd2#4125 (annotation on the
  Deployment's own metadata) with the injector log of #3253.
- c29_events_only: the `kubectl describe deploy` tail of linkerd/linkerd2#8340.
- injector_2019_no_reason: linkerd/linkerd2#3253 (skips logged without a reason).
- already_injected: linkerd/linkerd2#3910 ("pod has a sidecar injected already").
- describe_namespace_label: `kubectl describe namespace` layout with #4856's log.
- injector_logfmt_injected, injector_json_injected, received_only: the injector's
  messages ("received", "patch generated for", "injection patch generated for")
  as controller/proxy-injector/webhook.go prints them, in logfmt and JSON.
- c29_deployment_manifest_only, c29_describe_deploy_only,
  c29_deployment_and_unmeshed_pod: a user's defect report (re-typed): #4125's
  Deployment as a manifest or `kubectl describe deploy`, with no injector log;
  the last adds a Pod of that Deployment without a linkerd-proxy container.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import injector_log as il
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data" / "injector-log"
BOTH = ["not_meshed", "annotation_misplaced"]


def judge(name: str, **extra: object):
    return il.judge(Evidence.from_path(DATA / name), Context(extra=dict(extra)))


EXPECTED = [
    ("c29_label_not_annotation.txt", Verdict.FAIL, BOTH),
    ("c29_deploy_metadata_annotation.txt", Verdict.FAIL, BOTH),
    ("describe_namespace_label.txt", Verdict.FAIL, BOTH),
    ("c29_events_only.txt", Verdict.FAIL, ["not_meshed"]),
    ("injector_2019_no_reason.log", Verdict.FAIL, ["not_meshed"]),
    ("already_injected.log", Verdict.PASS, []),
    ("injector_logfmt_injected.log", Verdict.PASS, []),
    ("injector_json_injected.log", Verdict.PASS, []),
    ("received_only.log", Verdict.INCONCLUSIVE, ["no_data"]),
    ("c29_deployment_manifest_only.yaml", Verdict.FAIL, ["annotation_misplaced"]),
    ("c29_describe_deploy_only.txt", Verdict.FAIL, ["annotation_misplaced"]),
    ("c29_deployment_and_unmeshed_pod.yaml", Verdict.FAIL, BOTH),
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


def test_c29_names_the_labelled_namespace_and_the_skipped_pod():
    finding = judge("c29_label_not_annotation.txt")

    assert finding.details["misplaced"] == [
        "namespace/app was given linkerd.io/inject as a label (`kubectl label`)"
    ]
    assert finding.details["skipped"][0]["resource"] == "pod/web-d475bdfb5-"
    assert any("kubectl annotate ns" in h for h in finding.hints)
    assert any("InjectionSkipped" in e for e in finding.evidence)


def test_an_annotation_on_the_deployment_metadata_is_reported_as_misplaced():
    finding = judge("c29_deploy_metadata_annotation.txt")

    assert finding.details["misplaced"] == [
        "deployment/web has linkerd.io/inject on its own metadata, "
        "not on its pod template"
    ]


def test_an_annotation_on_the_pod_template_is_not_misplaced():
    text = (DATA / "c29_deploy_metadata_annotation.txt").read_text()
    fixed = text.replace(
        "    metadata:\n      labels:",
        "    metadata:\n      annotations:\n        linkerd.io/inject: enabled\n"
        "      labels:",
    )
    assert fixed != text

    assert il.misplacements(fixed, Context()) == []


def test_an_annotate_command_after_the_label_clears_the_namespace():
    text = (DATA / "c29_label_not_annotation.txt").read_text()
    text += "\n$ kubectl annotate namespace app linkerd.io/inject=enabled\n"

    assert il.judge(Evidence(text), Context()).reasons == ["not_meshed"]


def test_objects_from_the_context_are_judged_like_documents():
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "app", "labels": {"linkerd.io/inject": "enabled"}},
    }
    finding = judge("c29_events_only.txt", objects=[namespace])

    assert finding.reasons == BOTH
    assert finding.details["misplaced"] == [
        "namespace/app carries linkerd.io/inject as a label"
    ]


def test_a_json_document_in_the_artifact_is_read():
    doc = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "kind": "Namespace",
                "metadata": {"name": "app", "labels": {"linkerd.io/inject": "enabled"}},
            }
        ],
    }
    text = (DATA / "c29_events_only.txt").read_text() + json.dumps(doc, indent=4)

    assert il.judge(Evidence(text), Context()).reasons == BOTH


def test_skips_of_pods_not_expected_to_be_meshed_are_hints():
    finding = judge("c29_deploy_metadata_annotation.txt", expect_meshed=["emoji"])

    assert finding.reasons == ["annotation_misplaced"]
    assert any("skipped pod/web-6cd4bff898-" in h for h in finding.hints)


def test_a_skip_of_an_expected_workload_for_another_reason_fails():
    line = 'time="t" level=info msg="skipped pod/web-1-: hostNetwork is enabled"\n'

    assert il.judge(Evidence(line), Context()).verdict is Verdict.INCONCLUSIVE
    finding = il.judge(Evidence(line), Context(extra={"expect_meshed": ["web"]}))
    assert finding.reasons == ["not_meshed"]


def test_a_pod_already_injected_is_a_hint_not_a_skip():
    finding = judge("already_injected.log")

    assert finding.details["injected"] == ["pod/contour-54fcc8d966-"]
    assert any("sidecar injected already" in h for h in finding.hints)


OTHER_KINDS = {
    "yaml manifest": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"
    "  annotations:\n    linkerd.io/inject: enabled\n",
    "locust csv": "Type,Name,Request Count\nGET,/,1200\n",
    "proxy log": "[ 0.1s]  INFO ThreadId(01) linkerd2_proxy: Local identity is "
    "linkerd-proxy-injector.linkerd.serviceaccount.identity.linkerd.cluster.local\n",
    "k3s log": 'time="2024-01-01T00:00:00Z" level=info msg="Starting k3s v1.28.5"\n',
    "check output": "linkerd-config\n--------------\n√ control plane Namespace\n",
    "label command only": "kubectl label namespace app linkerd.io/inject=enabled\n",
    "empty": "",
}


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_other_kinds_typical_inputs_score_zero(text):
    assert il.detect(Evidence(text)) == 0.0


@pytest.mark.parametrize("text", OTHER_KINDS.values(), ids=OTHER_KINDS.keys())
def test_judging_input_of_another_kind_is_unrecognised(text):
    assert il.judge(Evidence(text), Context()).reasons == ["unrecognised_input"]


def test_judge_never_raises_on_cut_or_garbled_text():
    rng = random.Random(5)
    for path in sorted(DATA.iterdir()):
        text = path.read_text(encoding="utf-8")
        for cut in range(0, len(text), max(1, len(text) // 20)):
            piece = "".join(
                c if rng.random() > 0.05 else rng.choice('{}[]:"\n -')
                for c in text[:cut]
            )
            ctx = Context(extra={"objects": [piece, {"kind": 3}], "expect_meshed": [1]})
            assert il.judge(Evidence(piece), ctx).layer in ("mesh", "unknown")


def test_every_fixture_is_picked_by_the_registry_when_all_analyzers_exist():
    from meshstack import analyzers

    try:
        analyzers.kinds()
    except ImportError as exc:
        pytest.skip(f"not every analyzer module exists yet: {exc}")
    for name, _, _ in EXPECTED:
        text = (DATA / name).read_text(encoding="utf-8")
        kind = analyzers.detect(Evidence(text, name="renamed"))
        assert kind is not None and kind.name == "injector-log", name


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('time="t" level=info msg="' + '\\"' * 50_000, Verdict.HARNESS_ERROR),
        ("kubectl label ns " + "a " * 30_000, Verdict.HARNESS_ERROR),
        (
            "Name: x\nLabels: a\n" + "      linkerd.io/inject=enabled\n" * 5_000,
            Verdict.FAIL,
        ),
        (
            "Name: x\nLabels: linkerd.io/inject=enabled\n" * 3_000
            + 'level=info msg="skipped pod/x-: y"\n',
            Verdict.FAIL,
        ),
    ],
    ids=["escaped quotes", "long command", "long label list", "many describes"],
)
def test_pathological_input_is_judged_without_error(text, verdict):
    """Long repeated units (the inputs a backtracking pattern would choke on) are
    judged to the verdict their content calls for; benchmarks/pathological.py
    measures how long they take."""
    il.detect(Evidence(text))

    assert il.judge(Evidence(text), Context()).verdict is verdict


WITH_SKIPS = [
    n
    for n, v, _ in EXPECTED
    if v is Verdict.FAIL and "skipped" in (DATA / n).read_text(encoding="utf-8")
]


@pytest.mark.parametrize("name", WITH_SKIPS)
def test_a_copy_cut_right_after_its_first_skip_still_fails(name):
    text = (DATA / name).read_text(encoding="utf-8")
    skip = next(ln for ln in text.splitlines() if "skipped" in ln)
    cut = text[: text.index(skip) + len(skip)]

    assert "not_meshed" in il.judge(Evidence(cut), Context()).reasons


# --- defect report: a manifest alone -------------------------------------------


@pytest.mark.parametrize(
    "name", ["c29_deployment_manifest_only.yaml", "c29_describe_deploy_only.txt"]
)
def test_a_manifest_alone_showing_the_misplaced_annotation_is_detected(name):
    evidence = Evidence.from_path(DATA / name)

    assert il.detect(evidence) >= 0.5
    finding = il.judge(evidence, Context())
    assert finding.details["misplaced"] == [
        f"{'deployment/' if name.endswith('.yaml') else ''}web has linkerd.io/inject "
        "on its own metadata, not on its pod template"
    ]
    assert any("not shown" in h for h in finding.hints)


def test_a_deployment_as_json_alone_is_judged_like_its_yaml():
    import yaml

    doc = yaml.safe_load((DATA / "c29_deployment_manifest_only.yaml").read_text())
    evidence = Evidence(json.dumps(doc, indent=4))

    assert il.detect(evidence) >= 0.5
    assert il.judge(evidence, Context()).reasons == ["annotation_misplaced"]


def test_a_correctly_annotated_manifest_alone_is_not_injector_evidence():
    text = (DATA / "c29_deployment_manifest_only.yaml").read_text()
    fixed = text.replace(
        "    metadata:\n      labels:",
        "    metadata:\n      annotations: {linkerd.io/inject: enabled}\n      labels:",
    )
    assert fixed != text

    assert il.detect(Evidence(fixed)) == 0.0


def test_a_pod_of_the_misplaced_workload_without_the_proxy_is_not_meshed():
    finding = judge("c29_deployment_and_unmeshed_pod.yaml")

    assert finding.details["unmeshed_pods"] == ["app/web-abc"]


def test_a_pod_that_carries_the_proxy_is_not_reported():
    text = (DATA / "c29_deployment_and_unmeshed_pod.yaml").read_text()
    meshed = text.replace(
        "  containers: [{name: web, image: nginx}]\n",
        "  containers: [{name: web, image: nginx}, {name: linkerd-proxy}]\n",
    )
    meshed = meshed.replace(
        "      containers: [{name: web, image: nginx}, {name: linkerd-proxy}]",
        "      containers: [{name: web, image: nginx}]",
    )
    assert meshed.count("linkerd-proxy") == 1

    assert il.judge(Evidence(meshed), Context()).reasons == ["annotation_misplaced"]


def test_a_namespace_manifest_with_the_setting_as_a_label_alone_is_misplaced():
    text = (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"
        "  labels:\n    linkerd.io/inject: enabled\n"
    )

    assert il.detect(Evidence(text)) >= 0.5
    finding = il.judge(Evidence(text), Context())
    assert finding.reasons == ["annotation_misplaced"]
    assert finding.details["misplaced"] == [
        "namespace/app carries linkerd.io/inject as a label"
    ]


def test_a_pod_of_a_workload_that_opted_out_is_not_reported():
    text = (DATA / "c29_deployment_and_unmeshed_pod.yaml").read_text()
    opted_out = text.replace(
        "metadata: {name: web-abc, namespace: app}",
        "metadata:\n  name: web-abc\n  namespace: app\n"
        "  annotations: {linkerd.io/inject: disabled}",
    )
    assert opted_out != text

    assert il.judge(Evidence(opted_out), Context()).reasons == ["annotation_misplaced"]


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
    bare = il.judge(Evidence(text), Context())

    finding = il.judge(Evidence(prefixed), Context())

    assert il.detect(Evidence(prefixed)) >= 0.5
    assert (finding.verdict, finding.reasons) == (bare.verdict, bare.reasons)
    assert bare.verdict is not Verdict.HARNESS_ERROR


def test_a_pod_belongs_to_the_longest_workload_name_that_prefixes_it():
    text = (DATA / "c29_deployment_and_unmeshed_pod.yaml").read_text()
    other = (
        "---\napiVersion: apps/v1\nkind: Deployment\n"
        "metadata: {name: web-admin, namespace: app}\n"
        "spec:\n  template:\n    spec:\n      containers: [{name: admin}]\n"
        "---\napiVersion: v1\nkind: Pod\n"
        "metadata: {name: web-admin-xyz, namespace: app}\n"
        "spec:\n  containers: [{name: admin}]\n"
    )

    finding = il.judge(Evidence(text + other), Context())

    assert finding.details["unmeshed_pods"] == ["app/web-abc"]
