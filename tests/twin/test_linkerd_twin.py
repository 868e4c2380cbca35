"""The Linkerd CLI twin judges a real (twin) API server and prints Linkerd's formats.

Every run goes through the official client against the twin API server on
loopback. Where no kubelet runs, the test plays it (marks pods Running and ready),
and says so. The output is read back with the ``linkerd-check`` analyzer and its
structure compared with the real artifacts of cases C01, C02, C04 and C07
(../shared/cases; the real lines are re-typed below with their source).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from meshstack import analyzers
from meshstack.analyzers import Context, Evidence
from meshstack.analyzers.linkerd_check import read
from meshstack.providers.kube_apply import KubeClient
from meshstack.twin.kube.apiserver import ApiServer, ApiServerConfig
from meshstack.twin.linkerd import certs, cli

SRC = Path(__file__).resolve().parents[2] / "src"
RFC3339 = "%Y-%m-%dT%H:%M:%SZ"

# C01, re-typed from MicrosoftDocs/azure-docs#49379 (real CLI output).
C01_LINES = [
    "pre-kubernetes-setup",
    "--------------------",
    "√ control plane namespace does not already exist",
    "× no clock skew detected",
    "    clock skew detected for node(s): node-1",
    "    see https://linkerd.io/checks/#pre-k8s-clock-skew for hints",
]
# C07, re-typed from linkerd/linkerd2#7960 (real `-o json` shape).
C07_KEYS = {"success", "categories"}
C07_CHECK_KEYS = {"description", "result"}
C07_FAILED_KEYS = {"description", "hint", "error", "result"}


class Cluster:
    """A twin API server with one node, and the CLI twin pointed at it."""

    def __init__(self, root: Path) -> None:
        self.server = ApiServer(ApiServerConfig(root / "api", port=0, persist=False))
        self.server.start()
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text(self.server.kubeconfig())
        self.kube = KubeClient.from_file(str(self.kubeconfig))
        self.core = client.CoreV1Api(self.kube.api)
        self.add_node("node-1", dt.datetime.now(dt.UTC))

    def add_node(self, name: str, heartbeat: dt.datetime) -> None:
        beat = heartbeat.strftime(RFC3339)
        self.core.create_node({"metadata": {"name": name}})
        cond = {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": beat,
            "lastTransitionTime": beat,
            "reason": "KubeletReady",
            "message": "ok",
        }
        self.core.patch_node_status(name, {"status": {"conditions": [cond]}})

    def linkerd(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        rc = cli.main([*args, f"--kubeconfig={self.kubeconfig}"], out, err)
        return rc, out.getvalue(), err.getvalue()

    def install(self, *steps: tuple[str, ...]) -> None:
        for step in steps:
            rc, out, err = self.linkerd(*step)
            assert rc == 0, f"linkerd {' '.join(step)} exited {rc}: {err}"
            for doc in yaml.safe_load_all(out):
                if doc:
                    self.kube.apply(doc)

    def play_kubelet(self, namespace: str, timeout: float = 10.0) -> None:
        """Mark every pod of the namespace Running and ready, as a kubelet would."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(namespace).items
            if pods:
                break
            time.sleep(0.1)
        now = dt.datetime.now(dt.UTC).strftime(RFC3339)
        for pod in pods:
            statuses = [
                {
                    "name": c.name,
                    "ready": True,
                    "restartCount": 0,
                    "image": c.image,
                    "imageID": "",
                    "state": {"running": {"startedAt": now}},
                }
                for c in pod.spec.containers
            ]
            status = {
                "phase": "Running",
                "containerStatuses": statuses,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            self.core.patch_namespaced_pod_status(
                pod.metadata.name, namespace, {"status": status}
            )

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A fresh twin cluster per test (install state differs between tests)."""
    c = Cluster(tmp_path)
    yield c
    c.stop()


def judge(text: str) -> object:
    ctx = Context(now=dt.datetime.now(dt.UTC))
    return analyzers.get("linkerd-check").judge(Evidence(text, "twin"), ctx)


def _shape(text: str) -> list[str]:
    """Line kinds: category, underline, glyph line, detail, hint."""
    kinds = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if set(line) == {"-"}:
            kinds.append("underline")
        elif line[:1] in "√×‼":
            kinds.append(f"glyph {line[0]}")
        elif line.startswith("    see ") and line.endswith(" for hints"):
            kinds.append("hint")
        elif line.startswith("    "):
            kinds.append("detail")
        else:
            kinds.append("category")
    return kinds


def test_check_pre_on_a_fresh_cluster_passes_with_offline_version_warnings(cluster):
    rc, out, _ = cluster.linkerd("check", "--pre", "--wait=5s")

    assert rc == 0
    assert "Status check results are √" in out
    assert "‼ can determine the latest version" in out
    finding = judge(out)
    assert finding.verdict.healthy, finding.summary()
    assert finding.reasons == []


def test_a_skewed_node_clock_prints_the_c01_shape_and_is_judged_clock_skew(cluster):
    cluster.add_node("node-2", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))

    rc, out, _ = cluster.linkerd("check", "--pre", "--wait=5s")

    block = out[out.index("pre-kubernetes-setup") :].split("\n\n")[0]
    skew = [
        ln for ln in block.splitlines() if "clock skew" in ln or "pre-k8s-clock" in ln
    ]
    # the newer CLI prints this check as a warning (‼), C01's older one as ×
    assert _shape("\n".join(skew)) == ["glyph ‼", "detail", "hint"]
    assert _shape("\n".join(C01_LINES[3:])) == ["glyph ×", "detail", "hint"]
    assert "clock skew detected for node(s): node-2" in out
    assert rc == 0  # a warning does not fail the run
    finding = judge(out)
    assert finding.reasons == ["clock_skew"]
    assert finding.details["nodes"] == ["node-2"]
    assert str(finding.verdict) == "WARN"


def test_a_pre_existing_linkerd_namespace_is_the_c02_conflict_variant(cluster):
    cluster.core.create_namespace({"metadata": {"name": "linkerd"}})

    rc, out, _ = cluster.linkerd("check", "--pre", "--wait=5s")

    assert rc == 1
    assert "× can create non-namespaced resources" in out
    assert 'cannot create Namespace/linkerd: namespaces "linkerd" already exists' in out
    assert 'The "linkerd" namespace already exists' in out
    finding = judge(out)
    assert "preexisting_resource" in finding.reasons
    assert "rbac_forbidden" not in finding.reasons


def test_table_output_reads_back_with_the_same_line_shape_as_the_real_cli(cluster):
    cluster.add_node("node-2", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    _, out, _ = cluster.linkerd("check", "--pre", "--wait=5s")

    report = read(out)
    cats = [c.category for c in report.checks]
    assert cats[:2] == ["kubernetes-api", "kubernetes-api"]
    assert "pre-kubernetes-setup" in cats and "linkerd-version" in cats
    assert report.statuses == [True]
    assert _shape(out)[:4] == ["category", "category", "category", "underline"]
    assert out.splitlines()[:2] == ["Linkerd core checks", "==================="]


def _installed(cluster: Cluster, viz: bool = True) -> None:
    steps = [("install", "--crds"), ("install",)] + (
        [("viz", "install")] if viz else []
    )
    cluster.install(*steps)
    cluster.play_kubelet("linkerd")


def test_install_refuses_before_its_crds_like_the_real_cli(cluster):
    rc, out, err = cluster.linkerd("install")

    assert rc == 1 and out == ""
    assert "Linkerd CRDs must be installed first" in err


def test_check_on_an_installed_control_plane_passes(cluster):
    _installed(cluster, viz=False)

    rc, out, _ = cluster.linkerd("check", "--wait=10s")

    assert rc == 0, out
    assert "× " not in out
    assert "√ control plane pods are ready" in out
    assert "√ issuer cert is within its validity period" in out
    assert judge(out).verdict.healthy


def test_control_plane_pods_not_running_fail_the_check_with_exit_1(cluster):
    cluster.install(("install", "--crds"), ("install",))

    rc, out, _ = cluster.linkerd("check", "--wait=2s")

    assert rc == 1
    assert 'No running pods for "linkerd-' in out
    finding = judge(out)
    assert "control_plane_not_ready" in finding.reasons
    assert str(finding.verdict) == "FAIL"


def test_json_output_is_one_document_per_group_back_to_back_as_in_c07(cluster):
    _installed(cluster, viz=True)
    cluster.play_kubelet("linkerd-viz")

    rc, out, _ = cluster.linkerd("check", "-o", "json", "--wait=5s")

    docs, pos, dec = [], 0, json.JSONDecoder()
    while pos < len(out.rstrip()):
        doc, pos = dec.raw_decode(out, pos)
        docs.append(doc)
        while pos < len(out) and out[pos].isspace():
            pos += 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)  # exactly the real CLI's defect the harness must survive
    assert len(docs) == 2
    assert [d["categories"][0]["categoryName"] for d in docs] == [
        "kubernetes-api",
        "linkerd-viz",
    ]
    for doc in docs:
        assert set(doc) == C07_KEYS
        for cat in doc["categories"]:
            for check in cat["checks"]:
                keys = (
                    C07_CHECK_KEYS if check["result"] == "success" else C07_FAILED_KEYS
                )
                assert set(check) == keys, check
    assert read(out).json_documents == 2
    assert rc == 1  # viz pods carry no proxy in the twin: "pods are injected" fails


def test_a_cli_newer_than_the_control_plane_warns_version_mismatch(
    cluster, monkeypatch
):
    _installed(cluster, viz=False)
    monkeypatch.setenv("MESHSTACK_LINKERD_VERSION", "stable-2.14.11")

    rc, out, _ = cluster.linkerd("check", "-o", "json", "--wait=5s")

    doc = json.loads(out)  # no extension: a single document
    checks = {c["description"]: c for cat in doc["categories"] for c in cat["checks"]}
    mismatch = checks["control plane and cli versions match"]
    assert mismatch["result"] == "warning"
    assert mismatch["error"] == (
        "control plane running stable-2.14.10 but cli running stable-2.14.11"
    )
    assert rc == 0
    finding = judge(out)
    assert finding.reasons == ["version_mismatch"]
    assert str(finding.verdict) == "WARN"


def test_cni_config_in_another_namespace_fails_the_c04_way(cluster):
    cluster.install(("install", "--crds"), ("install", "--linkerd-cni-enabled"))
    cluster.play_kubelet("linkerd")
    cluster.core.create_namespaced_config_map(
        "linkerd", {"metadata": {"name": "linkerd-cni-config"}, "data": {}}
    )

    rc, out, _ = cluster.linkerd("check", "--wait=5s")
    rc2, out2, _ = cluster.linkerd("check", "--wait=5s", "--cni-namespace=linkerd")

    # C04, re-typed from Panfactum/stack#223 (real CLI output)
    assert (
        "linkerd-cni-plugin\n------------------\n× cni plugin ConfigMap exists\n" in out
    )
    assert '    configmaps "linkerd-cni-config" not found\n' in out
    assert rc == 1 and rc2 == 0
    assert "cni_config_missing" in judge(out).reasons
    assert "√ cni plugin ConfigMap exists" in out2


def test_an_issuer_expiring_in_three_days_is_judged_expiring(cluster, tmp_path):
    anchor, issuer = certs.identity_pair(lifetime=dt.timedelta(days=3))
    files = {}
    for name, text in (
        ("anchor", anchor.cert_pem),
        ("crt", issuer.cert_pem),
        ("key", issuer.key_pem),
    ):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(text)
    cluster.install(
        ("install", "--crds"),
        (
            "install",
            f"--identity-trust-anchors-file={files['anchor']}",
            f"--identity-issuer-certificate-file={files['crt']}",
            f"--identity-issuer-key-file={files['key']}",
        ),
    )
    cluster.play_kubelet("linkerd")

    rc, out, _ = cluster.linkerd("check", "--wait=5s")

    assert "‼ issuer cert is valid for at least 60 days" in out
    assert "issuer certificate will expire on " in out
    assert rc == 0
    finding = judge(out)
    assert "identity_issuer_expiring" in finding.reasons
    assert str(finding.verdict) == "FAIL"  # within 7 days, whatever the tool printed


def test_check_proxy_finds_no_proxies_in_an_unmeshed_namespace(cluster):
    _installed(cluster, viz=False)
    cluster.core.create_namespace({"metadata": {"name": "app"}})

    rc, out, _ = cluster.linkerd("check", "--proxy", "-n", "app", "--wait=2s")

    assert rc == 1
    assert 'No "linkerd-proxy" containers found in the "app" namespace' in out
    assert "not_meshed" in judge(out).reasons


def test_the_cli_never_falls_back_to_a_default_kubeconfig(monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    out, err = io.StringIO(), io.StringIO()

    rc = cli.main(["check", "--pre"], out, err)

    assert rc == 1
    assert "× can initialize the client" in out.getvalue()
    assert "never reads ~/.kube/config" in out.getvalue()


def test_the_module_runs_as_a_process_with_real_exit_codes(cluster):
    env = {**os.environ, "PYTHONPATH": str(SRC), "KUBECONFIG": str(cluster.kubeconfig)}
    cmd = [sys.executable, "-m", "meshstack.twin.linkerd"]
    ok = subprocess.run(
        [*cmd, "version", "--client", "--short"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    bad = subprocess.run(
        [*cmd, "check", "-o", "yaml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert (ok.returncode, ok.stdout) == (0, "stable-2.14.10\n")
    assert bad.returncode == 1
    assert "Invalid output type 'yaml'" in bad.stderr


def test_short_output_prints_only_what_is_not_ok_under_a_header(cluster):
    cluster.add_node("node-2", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30))

    rc, out, _ = cluster.linkerd("check", "--pre", "-o", "short", "--wait=5s")

    assert rc == 0
    assert out.startswith("Linkerd core checks\n===================\n\n")
    assert "√" not in out.replace("Status check results are √", "")
    assert "‼ no clock skew detected" in out
    assert out.rstrip().endswith("Status check results are √")
    assert judge(out).reasons == ["clock_skew"]


def test_version_reports_the_server_version_from_the_installed_config(cluster):
    before = cluster.linkerd("version")[1]
    _installed(cluster, viz=False)

    after = cluster.linkerd("version", "--short")[1]

    assert before == "Client version: stable-2.14.10\nServer version: unavailable\n"
    assert after == "stable-2.14.10\nstable-2.14.10\n"


def test_inject_puts_the_annotation_on_the_pod_template(cluster, tmp_path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web"}]},
                    }
                },
            }
        )
    )

    rc, out, err = cluster.linkerd("inject", str(manifest))

    doc = yaml.safe_load(out)
    notes = doc["spec"]["template"]["metadata"]["annotations"]
    assert rc == 0 and notes == {"linkerd.io/inject": "enabled"}
    assert "annotations" not in doc["metadata"]
    assert 'deployment "web" injected' in err
