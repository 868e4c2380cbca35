"""A small harness checkout for the report's self-tests, and how to run on it.

Its layers use the plugin self-tests' provider (``tests/plugin/selftest_provider``),
which builds nothing; its suites judge hand-made findings, one per verdict, so a
run yields every verdict the vocabulary has:

| layer   | checks                                   | probe                        |
| ------- | ---------------------------------------- | ---------------------------- |
| cloud   | PASS, WARN (degraded_tcp_relay)          | PASS                         |
| cluster | FAIL (node_not_ready), INCONCLUSIVE      | PASS                         |
| lb      | INVALID-RUN (min_sample), HARNESS-ERROR  | PASS                         |
| mesh    | its probe's verdict                      | FAIL control_plane_not_ready |
| apps    | its probe's verdict: BLOCKED by mesh     | never probed                 |
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
PROVIDER = "tests.plugin.selftest_provider:"
RUN_TIMEOUT = 300.0
LAYER_VERSION = "9.8.7"

# layer -> {test name: reason code it judges ("" for PASS, None: judge the probe)}
VERDICT_SUITES: dict[str, dict[str, str | None]] = {
    "cloud": {
        "test_servers_answer": "",
        "test_overlay_path_is_direct": "degraded_tcp_relay",
    },
    "cluster": {
        "test_nodes_are_ready": "node_not_ready",
        "test_node_metrics_exist": "no_data",
    },
    "lb": {
        "test_address_load_reached_its_rate": "min_sample",
        "test_credentials_are_readable": "credentials_missing",
    },
    "mesh": {"test_control_plane_is_ready": None},
    "apps": {"test_emojivoto_answers": None},
}
PROBE_REASONS = {"mesh": ["control_plane_not_ready"]}

# test name -> the verdict it ends in
EXPECTED_VERDICTS = {
    "test_servers_answer": "PASS",
    "test_overlay_path_is_direct": "WARN",
    "test_nodes_are_ready": "FAIL",
    "test_node_metrics_exist": "INCONCLUSIVE",
    "test_address_load_reached_its_rate": "INVALID-RUN",
    "test_credentials_are_readable": "HARNESS-ERROR",
    "test_control_plane_is_ready": "FAIL",
    "test_emojivoto_answers": "BLOCKED",
}


def write_harness(
    root: Path,
    suites: dict[str, dict[str, str | None]],
    probe_reasons: dict[str, list[str]] | None = None,
) -> Path:
    """Write a profile and one suite module per layer under ``root``."""
    probe_reasons = probe_reasons or {}
    journal = root / "journal.jsonl"
    layers = {
        layer: {
            "provider": PROVIDER,
            "layer": layer,
            "journal": str(journal),
            "reasons": probe_reasons.get(layer, []),
            "version": LAYER_VERSION,
        }
        for layer in suites
    }
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    profile = {"name": "report-selftest", "layers": layers}
    (root / "stacks" / "local.yaml").write_text(json.dumps(profile))
    (root / "pytest.ini").write_text("[pytest]\n")
    for layer, tests in suites.items():
        folder = root / "suites" / layer
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"test_{layer}.py").write_text(_suite_module(layer, tests))
    return root


def _suite_module(layer: str, tests: dict[str, str | None]) -> str:
    head = (
        "from meshstack.pytest import judge\nfrom meshstack.verdicts import Finding\n"
    )
    return head + "".join(_check(layer, name, code) for name, code in tests.items())


def _check(layer: str, name: str, code: str | None) -> str:
    """One check: judge the layer's probe (code None) or a finding with ``code``."""
    if code is None:
        body = f"    judge(stack.provider({layer!r}).probe())\n"
    else:
        add = f"    finding.add({code!r})\n" if code else ""
        body = (
            f"    stack.provider({layer!r})\n"
            f"    finding = Finding(layer={layer!r})\n{add}    judge(finding)\n"
        )
    return f"\n\ndef {name}(stack):\n{body}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child run: the repo importable, no MESHSTACK_* leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHSTACK_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env.update(extra)
    return env


def run_pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on the harness in its own process, as CI would."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    log.debug("running %s in %s", " ".join(argv), root)
    return subprocess.run(
        argv,
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def meshstack_command() -> list[str]:
    """The installed ``meshstack`` console script, else the module it runs."""
    script = Path(sys.executable).with_name("meshstack")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "meshstack.cli.main"]


def run_report(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``meshstack report`` (the real command) with ``args``."""
    argv = [*meshstack_command(), "report", *args]
    log.debug("running %s in %s", " ".join(argv), cwd)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def read_results(directory: Path) -> list[dict[str, object]]:
    """Every ``*-result.json`` in an allure-results directory."""
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(directory.glob("*-result.json"))
    ]


def labels(result: dict[str, object], name: str) -> list[str]:
    found = result.get("labels")
    entries = found if isinstance(found, list) else []
    return [
        str(lab.get("value"))
        for lab in entries
        if isinstance(lab, dict) and lab.get("name") == name
    ]


def allure_installed() -> bool:
    return (REPO / "node_modules" / ".bin" / "allure").exists()
