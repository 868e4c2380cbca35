"""The plugin's options, gating, outcomes and xdist behaviour, run through pytester.

Each test builds a small harness checkout (a profile, suites per layer) whose layers
use the self-test provider, so what is judged here is the plugin, not a stack.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROVIDER = "tests.plugin.selftest_provider:"


@pytest.fixture
def harness(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.syspath_prepend(str(REPO))
    for name in ("MESHSTACK_STACK", "MESHSTACK_KEEP_STACK", "MESHSTACK_STACK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def write_profile(
    p: pytest.Pytester,
    reasons: dict[str, list[str]] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """The self-test profile: three layers of the self-test provider, each with its
    probe's ``reasons`` and any further ``settings`` of its own."""
    reasons, settings = reasons or {}, settings or {}
    journal = p.path / "journal.jsonl"
    layers = {
        layer: {
            "provider": PROVIDER,
            "layer": layer,
            "journal": str(journal),
            "reasons": reasons.get(layer, []),
            **settings.get(layer, {}),
        }
        for layer in ("cloud", "cluster", "mesh")
    }
    (p.path / "stacks").mkdir(exist_ok=True)
    profile = p.path / "stacks" / "local.yaml"
    profile.write_text(json.dumps({"name": "selftest", "layers": layers}))
    return journal


def write_suites(p: pytest.Pytester, body: str = "") -> None:
    for layer in ("cloud", "cluster", "mesh"):
        d = p.path / "suites" / layer
        d.mkdir(parents=True, exist_ok=True)
        (d / f"test_{layer}.py").write_text(
            textwrap.dedent(
                f"""
                import os
                from meshstack.pytest import judge

                def test_{layer}_holds(stack):
                    prov = stack.provider("{layer}")
                    here = os.path.dirname(__file__)
                    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
                    with open(os.path.join(here, "..", "..", "ran.txt"), "a") as fh:
                        fh.write("{layer} " + worker + "\\n")
                    judge(prov.probe())
                """
            )
            + textwrap.dedent(body)
        )


def journal(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_bare_run_with_no_stack_to_attach_to_says_to_pass_stack_fresh(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness)
    write_suites(harness)
    result = harness.runpytest_subprocess("suites")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no stack to attach to*--stack=fresh*"])


def test_keep_stack_with_existing_is_refused_at_parse_time(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness)
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=existing", "--keep-stack")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--keep-stack with --stack=existing*"])


def test_an_unknown_mode_names_the_flag_and_the_choices(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness)
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--stack='sometimes': expected one of fresh, reuse, existing*"]
    )


def test_the_flag_wins_over_the_environment_and_the_environment_over_ini(
    harness: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profile(harness)
    write_suites(harness)
    harness.makeini("[pytest]\nmeshstack_stack = bogus-from-ini\n")
    assert harness.runpytest_subprocess("suites").ret == pytest.ExitCode.USAGE_ERROR
    monkeypatch.setenv("MESHSTACK_STACK", "bogus-from-env")
    result = harness.runpytest_subprocess("suites")
    result.stderr.fnmatch_lines(["*MESHSTACK_STACK='bogus-from-env'*"])
    result = harness.runpytest_subprocess("suites", "--stack=fresh")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_a_broken_profile_names_the_file_the_key_and_what_was_expected(
    harness: pytest.Pytester,
) -> None:
    write_suites(harness)
    (harness.path / "stacks").mkdir()
    (harness.path / "stacks" / "local.yaml").write_text(
        "name: broken\nlayers:\n  cloud: {provider: 7}\n  clowd: {provider: x}\n"
    )
    result = harness.runpytest_subprocess("suites", "--stack=fresh")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "stacks/local.yaml" in err
    assert "layers.cloud.provider: expected str, found 7" in err
    assert "layers.clowd: unknown key" in err


def test_broken_load_profiles_are_a_usage_error_naming_every_problem(
    harness: pytest.Pytester,
) -> None:
    write_suites(harness)
    loads = harness.path / "loadprofiles"
    loads.mkdir()
    (loads / "paced_locust.py").write_text("# never run: the profile is refused\n")
    common = (
        "locustfile: paced_locust.py\napp: webdemo\nusers: 2\nduration: 50\n"
        "slo: {selector: {namespace: webdemo}, success_rate: 0.99}\n"
    )
    (loads / "typo.yaml").write_text(f"name: typo\nrate: 2\nstedy: 40\n{common}")
    (loads / "nan.yaml").write_text(f"name: nan\nrate: .nan\n{common}")
    (harness.path / "stacks").mkdir()
    stack = harness.path / "stacks" / "broken-load.yaml"
    stack.write_text(
        "name: broken-load\nlayers:\n"
        "  load: {provider: locust, attach: {ran: true}, profiles: [typo, nan]}\n"
    )
    result = harness.runpytest_subprocess(
        "suites", "--stack=existing", "--stack-profile", str(stack)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "2 problem(s) in the profile and its load profiles" in err
    assert f"{loads / 'typo.yaml'}: stedy: unknown key; did you mean steady?" in err
    assert f"{loads / 'nan.yaml'}: rate: expected a finite number, found nan" in err


def test_a_fresh_run_builds_every_layer_once_and_removes_it_after(
    harness: pytest.Pytester,
) -> None:
    log = write_profile(harness)
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh")
    result.assert_outcomes(passed=3)
    events = [(e["layer"], e["event"]) for e in journal(log)]
    assert events.count(("cloud", "provision")) == 1
    assert [e for e in events if e[1] == "teardown"] == [
        ("mesh", "teardown"),
        ("cluster", "teardown"),
        ("cloud", "teardown"),
    ]
    assert not (harness.path / ".meshstack" / "state.json").exists()


def _a_kept_stack(harness: pytest.Pytester) -> Path:
    """Build the self-test stack and keep it; return its journal."""
    log = write_profile(harness)
    write_suites(harness)
    harness.runpytest_subprocess(
        "suites", "--stack=fresh", "--keep-stack"
    ).assert_outcomes(passed=3)
    return log


def test_a_kept_stack_is_attached_to_by_a_later_existing_run(
    harness: pytest.Pytester,
) -> None:
    log = _a_kept_stack(harness)
    assert (harness.path / ".meshstack" / "state.json").exists()
    harness.runpytest_subprocess("suites/mesh").assert_outcomes(passed=1)
    provisions = [e for e in journal(log) if e["event"] == "provision"]
    assert len(provisions) == 3
    assert not [e for e in journal(log) if e["event"] == "teardown"]
    refused = harness.runpytest_subprocess("suites", "--stack=fresh")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*records a stack kept by run*meshstack down*"])


def test_a_kept_stack_reused_by_a_later_run_stays_kept(
    harness: pytest.Pytester,
) -> None:
    log = _a_kept_stack(harness)
    # the cluster looks again once the mesh is built, as the mesh does after apps
    write_profile(harness, settings={"cluster": {"judged_again_after": "mesh"}})
    before = len(journal(log))

    harness.runpytest_subprocess("suites/mesh", "--stack=reuse").assert_outcomes(
        passed=1
    )

    assert not [e for e in journal(log) if e["event"] == "teardown"]
    # a healthy layer is probed once: that probe is its verdict, nothing is rebuilt,
    # and no second look is due since the mesh was already there at the first
    # (the mesh once more by the one check collected, which probes it itself)
    probed = Counter(e["layer"] for e in journal(log)[before:] if e["event"] == "probe")
    assert probed == {"cloud": 1, "cluster": 1, "mesh": 2}, probed
    assert not [e for e in journal(log)[before:] if e["event"] == "provision"]
    state = json.loads((harness.path / ".meshstack" / "state.json").read_text())
    assert state["kept"] is True
    harness.runpytest_subprocess("suites/cloud").assert_outcomes(passed=1)


def test_each_session_on_a_kept_stack_keeps_its_own_evidence_bundle(
    harness: pytest.Pytester,
) -> None:
    # Sessions attaching to one kept stack share its run id; a bundle per run id
    # mixed their evidence, and re-judging it judged every session at once.
    write_profile(harness)
    write_suites(
        harness,
        body="""
        from meshstack import analyzers
        from meshstack.analyzers import Context, Evidence

        def test_judges_one_artifact(stack):
            analyzers.get("linkerd-check").judge(Evidence("x", "x"), Context())
        """,
    )
    harness.runpytest_subprocess(
        "suites", "--stack=fresh", "--keep-stack"
    ).assert_outcomes(passed=6)
    for _ in range(2):
        harness.runpytest_subprocess("suites/mesh").assert_outcomes(passed=2)

    (run,) = (harness.path / ".meshstack" / "bundle").iterdir()
    sessions = sorted(m.parent for m in run.glob("*/bundle.jsonl"))
    recorded = [len((s / "bundle.jsonl").read_text().splitlines()) for s in sessions]
    assert recorded == [3, 1, 1], recorded


def test_a_failed_layer_blocks_every_check_above_it_naming_the_layer(
    harness: pytest.Pytester,
) -> None:
    log = write_profile(harness, {"cluster": ["node_not_ready"]})
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*BLOCKED: mesh needs cluster, which is FAIL (node_not_ready)*"]
    )
    # Nothing is built above a failed layer.
    assert ("mesh", "provision") not in [(e["layer"], e["event"]) for e in journal(log)]


def test_a_second_look_blocks_an_unhealthy_upper_layer_it_explains(
    harness: pytest.Pytester,
) -> None:
    # The cluster, like the mesh on a real stack, can only be fully judged once the
    # layer above it is built, and that layer fails for the cluster's fault (as apps
    # whose pods lack the proxy do). The failure must be BLOCKED by the cluster, not
    # stand beside a cluster recorded as healthy.
    log = write_profile(
        harness,
        {"mesh": ["deployment_not_available"]},
        settings={
            "cluster": {"judged_again_after": "mesh", "reasons_after": ["not_meshed"]}
        },
    )
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*BLOCKED: mesh needs cluster, which is FAIL (not_meshed)*"]
    )
    events = [(e["layer"], e["event"]) for e in journal(log)]
    after_mesh = events[events.index(("mesh", "provision")) :]
    assert ("cluster", "probe") in after_mesh, events


def test_checks_of_a_layer_that_could_not_be_built_report_why(
    harness: pytest.Pytester,
) -> None:
    journal_file = write_profile(
        harness, settings={"cloud": {"provision_fails": "credentials_missing"}}
    )
    write_suites(
        harness,
        """
        import pytest

        @pytest.mark.dependency(depends=["test_holds_first"])
        def test_holds_after_another(stack):
            judge(stack.provider("cloud").probe())

        @pytest.mark.dependency(name="test_holds_first")
        def test_holds_first(stack):
            judge(stack.provider("cloud").probe())
        """,
    )
    result = harness.runpytest_subprocess("suites/cloud", "--stack=fresh", "-rA")
    # Each cloud check reports the provisioning failure itself (HARNESS-ERROR is
    # an error), not a probe of servers that were never made, nor (for the one
    # that depends on another) a skip for a dependency that failed the same way.
    result.assert_outcomes(errors=3)
    assert "depends on" not in result.stdout.str()
    # each error is told by its finding, not by a traceback through the plugin
    assert "pytest_pyfunc_call" not in result.stdout.str()
    assert "def judge(" not in result.stdout.str()
    result = harness.runpytest_subprocess("suites", "--stack=fresh", "-rA")
    result.assert_outcomes(errors=3, skipped=6)
    result.stdout.fnmatch_lines(
        ["*hint: self-test provisioning fails with credentials_missing*",
         "ERROR suites/cloud/test_cloud.py::test_cloud_holds*"],
        consecutive=False,
    )  # fmt: skip
    assert ("cloud", "probe") not in [
        (e["layer"], e["event"]) for e in journal(journal_file)
    ]


def test_gating_holds_when_only_an_upper_suite_is_collected(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness, {"cloud": ["server_unreachable"]})
    write_suites(harness)
    result = harness.runpytest_subprocess("suites/mesh", "--stack=fresh", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*BLOCKED: mesh needs cloud, which is FAIL (server_unreachable)*"]
    )
    # Only blocked checks ran, so the run must still fail: it judged nothing.
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_under_two_workers_the_stack_is_built_once_and_both_workers_run_checks(
    harness: pytest.Pytester,
) -> None:
    log = write_profile(harness)
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh", "-n", "2")
    result.assert_outcomes(passed=3)
    provisions = [e for e in journal(log) if e["event"] == "provision"]
    assert len(provisions) == 3
    assert {e["worker"] for e in provisions} == {"main"}
    workers = {
        line.split()[1] for line in (harness.path / "ran.txt").read_text().splitlines()
    }
    assert workers == {"gw0", "gw1"}


def test_gating_holds_across_workers(harness: pytest.Pytester) -> None:
    write_profile(harness, {"cluster": ["node_not_ready"]})
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh", "-n", "2", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*BLOCKED: mesh needs cluster*"])


def test_a_dependency_chain_within_one_layer_is_honoured_under_two_workers(
    harness: pytest.Pytester,
) -> None:
    """C28: pytest-dependency only sees its own process; a layer stays on one worker."""
    write_profile(harness)
    write_suites(
        harness,
        body="""
        import pytest

        @pytest.mark.dependency(name="first")
        def test_first(stack):
            pass

        @pytest.mark.dependency(depends=["first"])
        def test_second(stack):
            pass

        @pytest.mark.dependency(depends=["first"])
        def test_third(stack):
            pass
        """,
    )
    result = harness.runpytest_subprocess(
        "suites", "--stack=fresh", "-n", "2", "-p", "dependency"
    )
    result.assert_outcomes(passed=12)
    assert "pytest-dependency" not in result.stdout.str()


def test_verdicts_map_to_outcomes(harness: pytest.Pytester) -> None:
    write_profile(harness)
    write_suites(harness)
    (harness.path / "suites" / "cloud" / "test_outcomes.py").write_text(
        textwrap.dedent(
            """
            from meshstack.pytest import judge
            from meshstack.verdicts import Finding

            def f(code):
                x = Finding(layer="cloud")
                x.add(code)
                return x

            def test_warn(stack):
                judge(f("degraded_tcp_relay"))

            def test_fail(stack):
                judge(f("server_unreachable"))

            def test_inconclusive(stack):
                judge(f("no_data"))

            def test_invalid_run(stack):
                judge(f("min_sample"))

            def test_harness_error(stack):
                judge(f("credentials_missing"))
            """
        )
    )
    result = harness.runpytest_subprocess("suites/cloud", "--stack=fresh")
    result.assert_outcomes(passed=2, failed=3, errors=1, warnings=1)
    out = result.stdout.str()
    assert "INCONCLUSIVE" in out and "INVALID-RUN" in out and "HARNESS-ERROR" in out


def test_self_tests_outside_suites_leave_the_stack_alone(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness)
    harness.makepyfile(test_plain="def test_x():\n    assert True\n")
    result = harness.runpytest_subprocess("test_plain.py")
    result.assert_outcomes(passed=1)


def test_a_second_run_on_a_held_stack_is_refused_while_the_first_holds_it(
    harness: pytest.Pytester,
) -> None:
    from meshstack.state import RunLock

    write_profile(harness)
    write_suites(harness)
    holder = RunLock(harness.path / ".meshstack" / "state.json")
    holder.acquire()
    try:
        result = harness.runpytest_subprocess("suites", "--stack=fresh")
    finally:
        holder.release()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*another meshstack run (pid *) holds this stack*"])
    harness.runpytest_subprocess("suites", "--stack=fresh").assert_outcomes(passed=3)


def test_a_profile_can_extend_another_and_override_one_setting(
    harness: pytest.Pytester,
) -> None:
    from meshstack.profile import load_profile

    write_profile(harness)
    variant = harness.path / "stacks" / "variant.yaml"
    variant.write_text(
        "extends: local.yaml\nname: variant\n"
        "layers:\n  cluster:\n    reasons: [node_not_ready]\n"
    )
    profile = load_profile(variant)
    assert profile.name == "variant"
    assert profile.layers["cluster"]["reasons"] == ["node_not_ready"]
    assert profile.layers["cluster"]["provider"] == PROVIDER
    assert profile.layers["cloud"]["reasons"] == []


def test_a_missing_load_profile_is_named_with_the_key_that_names_it(
    tmp_path: Path,
) -> None:
    from meshstack.profile import ProfileError, load_profile

    (tmp_path / "stacks").mkdir()
    profile = tmp_path / "stacks" / "p.yaml"
    profile.write_text(
        "name: p\nlayers:\n  load:\n    provider: locust\n    profiles: [nosuch]\n"
    )
    with pytest.raises(ProfileError) as err:
        load_profile(profile, provider_schemas=False)
    message = str(err.value)
    assert "nosuch.yaml: no such profile" in message
    assert "layers.load.profiles names 'nosuch'" in message
    assert "--stack-profile" not in message


def test_ctrl_c_while_building_removes_what_was_already_made(
    harness: pytest.Pytester,
) -> None:
    import signal
    import subprocess
    import sys

    log = write_profile(harness, settings={"cluster": {"delay": 30}})
    write_suites(harness)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "suites",
            "--stack=fresh",
            "-p",
            "no:cacheprovider",
        ],
        cwd=harness.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "cluster  provisioning" in line:
            proc.send_signal(signal.SIGINT)
            break
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    events = [(e["layer"], e["event"]) for e in journal(log)]
    # The cluster may or may not have recorded its resource before the signal came;
    # what was recorded must be gone either way.
    assert ("cloud", "teardown") in events, events
    if ("cluster", "provision") in events and ("cluster", "teardown") not in events:
        assert not (harness.path / ".meshstack" / "state.json").exists() or all(
            not r["resources"]
            for r in json.loads(
                (harness.path / ".meshstack" / "state.json").read_text()
            )["layers"].values()
        )
    state = (
        json.loads((harness.path / ".meshstack" / "state.json").read_text())
        if (harness.path / ".meshstack" / "state.json").exists()
        else {"layers": {}}
    )
    assert all(not layer["resources"] for layer in state["layers"].values())


def test_a_local_stack_that_cannot_start_is_a_usage_error_with_its_reason(
    harness: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meshstack.local import launcher
    from meshstack.local.env import LocalStackError

    def refuse(root: Path, progress: Any = None) -> dict[str, Any]:
        raise LocalStackError("127.0.0.1:9090 (prometheus) is held; nothing started")

    monkeypatch.setattr(launcher, "ensure_up", refuse)
    log = write_profile(harness)
    profile = harness.path / "stacks" / "local.yaml"
    data = json.loads(profile.read_text())
    profile.write_text(json.dumps({**data, "local_stack": {"root": "../local"}}))
    write_suites(harness)
    result = harness.runpytest_inprocess("suites", "--stack=fresh")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the local stack could not start: 127.0.0.1:9090" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert journal(log) == []  # nothing was built
    assert not (harness.path / ".meshstack" / "state.json").exists()


def test_a_measurement_is_made_once_per_session_never_reused_by_a_later_one(
    harness: pytest.Pytester,
) -> None:
    # Load and SLO results are made "once": shared by every check and worker of a
    # session, but a later session on the kept stack (perhaps with a changed load
    # profile) must measure again, not judge the earlier session's results.
    write_profile(harness)
    write_suites(
        harness,
        """
        def test_measures(stack):
            def measure():
                with open(os.path.join(os.path.dirname(__file__), "..", "..",
                                       "measured.txt"), "a") as fh:
                    fh.write("measured\\n")
                return 1
            assert stack.once("measure", measure) == 1
        """,
    )
    measured = harness.path / "measured.txt"
    first = harness.runpytest_subprocess("suites", "--stack=fresh", "--keep-stack")
    first.assert_outcomes(passed=6)
    assert measured.read_text().count("measured") == 1
    second = harness.runpytest_subprocess("suites", "--stack=existing", "-n", "2")
    second.assert_outcomes(passed=6)
    assert measured.read_text().count("measured") == 2


def test_an_earlier_sessions_measurement_is_not_reported_by_a_later_one(
    harness: pytest.Pytester,
) -> None:
    write_profile(harness)
    write_suites(
        harness,
        """
        from meshstack.verdicts import Finding

        def test_measures(stack):
            stack.record_health("load:probe", Finding(layer="load"))
        """,
    )
    first = harness.runpytest_subprocess("suites", "--stack=fresh", "--keep-stack")
    first.stdout.fnmatch_lines(
        ["*load:probe*PASS*", "*stack kept (run ms-*): attach with --stack=existing*"]
    )
    second = harness.runpytest_subprocess(
        "suites/cloud", "--stack=existing", "-k", "holds"
    )
    second.assert_outcomes(passed=1)
    assert "load:probe" not in second.stdout.str()


def test_a_kept_stack_that_is_gone_can_be_forgotten_and_built_anew(
    harness: pytest.Pytester,
) -> None:
    import subprocess
    import sys

    write_profile(harness, settings={"cluster": {"teardown_fails": True}})
    write_suites(harness)
    harness.runpytest_subprocess("suites", "--stack=fresh", "--keep-stack")
    state = harness.path / ".meshstack" / "state.json"
    run_id = json.loads(state.read_text())["run_id"]

    def meshstack(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "meshstack.cli.main", *args]
        return subprocess.run(
            argv, cwd=harness.path, capture_output=True, text=True, timeout=60
        )

    down = meshstack("down")
    assert down.returncode == 2, down.stderr
    assert "meshstack down --forget" in down.stderr
    assert f"meshstack sweep --run-id {run_id}" in down.stderr
    assert state.exists()  # kept, so that a second `down` retries

    forgot = meshstack("down", "--forget")
    assert forgot.returncode == 0, forgot.stderr
    assert f"forgot the stack of run {run_id}" in forgot.stdout
    assert not state.exists()
    again = harness.runpytest_subprocess("suites", "--stack=fresh", "--keep-stack")
    again.assert_outcomes(passed=3)


def test_the_table_gives_the_sessions_whole_time_with_the_build_in_it(
    harness: pytest.Pytester,
) -> None:
    # pytest's "N passed in T" starts after the stack is built; the table says how
    # long the session took with the build, so a nightly log shows the real cost.
    write_profile(harness, settings={"cloud": {"delay": 1.5}})
    write_suites(harness)
    result = harness.runpytest_subprocess("suites", "--stack=fresh")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    line = re.search(
        r"this session: ([\d.]+)s, of which building and probing the layers "
        r"([\d.]+)s",
        text,
    )
    assert line, text
    session, building = float(line[1]), float(line[2])
    pytest_time = float(re.search(r"3 passed in ([\d.]+)s", text)[1])  # type: ignore[index]
    assert building >= 1.5  # the cloud's provisioning slept that long
    assert session >= building > pytest_time
