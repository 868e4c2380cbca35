"""Self-tests of the ``microstack-log`` analyzer.

Fixtures in data/microstack-log/: ``c18-init-traceback.txt`` is case C18's artifact
(CanonicalLtd/microstack#91, rev 245) re-typed; ``c18-rev241-timestamps.txt`` is
the same issue's first report (rev 241) with its timestamps, its traceback beyond
the first frame [reconstructed] from the tool's usual format; ``init-complete.txt``
re-types a public single-node walkthrough's successful ``microstack init`` (rev
242); the cut-off and ``Killed`` variants are derived from these.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshstack.analyzers import Context, Evidence
from meshstack.analyzers import microstack_log as ml
from meshstack.verdicts import Verdict

DATA = Path(__file__).parent / "data"
HERE = DATA / "microstack-log"
OTHER_KINDS = ("zerotier-member", "zerotier-cli", "ip-link", "openstack-error")

FOREIGN = {
    "linkerd check": (
        "linkerd-version\n---------------\n√ can determine the latest version\n"
        "‼ cli is up-to-date\n    is running version 2.14.1 but the latest "
        "stable version is 2.14.10\n"
    ),
    "locust log": (
        "[2026-12-04 15:00:00,000] node-1/INFO/locust.main: Starting Locust 2.47.0\n"
        'Traceback (most recent call last):\n  File "locustfile.py", line 3\n'
        "ModuleNotFoundError: No module named 'requests'\n"
    ),
    "locust csv": "Type,Name,Request Count\nGET,/,600\n",
    "yaml manifest": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: emojivoto\n",
    "k3s journal": (
        'time="2026-12-04T15:00:00Z" level=info msg="Starting k3s v1.28.5+k3s1"\n'
        'time="2026-12-04T15:00:01Z" level=fatal msg="starting kubernetes: '
        'preparing server: init cluster datastore"\n'
    ),
}


def judged(name: str):
    return ml.judge(Evidence.from_path(HERE / name), Context())


SNAP_245 = {
    "version": "ussuri",
    "revision": 245,
    "channel": "latest/beta",
    "confinement": "devmode",
}


def test_case_c18_fails_at_creating_databases_with_the_snap_attached():
    f = judged("c18-init-traceback.txt")

    assert f.verdict is Verdict.FAIL
    assert f.reasons == ["microstack_init_failed"]
    assert f.layer == "cloud"
    assert f.details["stage"] == "Creating databases"
    assert f.details["snap"] == SNAP_245
    assert "waiting_for" not in f.details
    assert any("snap remove --purge microstack" in h for h in f.hints)


def test_case_c18_cut_off_right_after_the_traceback_line_still_fails():
    f = judged("c18-cut-after-traceback.txt")

    assert f.verdict is Verdict.FAIL
    assert f.details["stage"] == "Creating databases"


def test_the_first_report_with_timestamps_names_stage_revision_and_exception():
    f = judged("c18-rev241-timestamps.txt")

    assert f.reasons == ["microstack_init_failed"]
    assert f.details["stage"] == "Creating databases"
    assert f.details["snap"]["revision"] == 241
    assert f.details["exception"].startswith("subprocess.CalledProcessError:")


def test_a_completed_init_passes_and_its_warnings_become_hints():
    f = judged("init-complete.txt")

    assert f.verdict is Verdict.PASS
    assert f.reasons == []
    assert f.details["stage"] == "complete"
    assert f.details["snap"]["revision"] == 242
    assert any("software emulation" in h for h in f.hints)


def test_a_log_cut_off_mid_run_cannot_claim_success():
    f = judged("init-cut-off-mid-run.txt")

    assert f.verdict is Verdict.INCONCLUSIVE
    assert f.reasons == ["context_missing"]
    assert f.details["stage"] == "Running Nova DB migrations"
    assert f.details["waiting_for"] == "192.0.2.13:8774"


def test_an_init_killed_while_waiting_fails_at_that_wait():
    f = judged("init-killed-waiting-for-mysql.txt")

    assert f.verdict is Verdict.FAIL
    assert f.details["stage"] == "Waiting for MySQL server to start"
    assert f.details["waiting_for"] == "192.0.2.71:3306"


def test_waiting_lines_alone_are_progress_not_failure():
    text = (
        "2026-12-04 15:00:00,000 - microstack_init - INFO - Configuring Neutron\n"
        "Waiting for 192.0.2.71:9696\n"
        "2026-12-04 15:02:00,000 - microstack_init - INFO - Complete. Marked "
        "microstack as initialized!\n"
    )

    assert ml.judge(Evidence(text), Context()).verdict is Verdict.PASS


def test_an_error_line_fails_at_the_step_before_it():
    text = (
        "x - microstack_init - INFO - Configuring the Cinder services...\n"
        "x - microstack_init - ERROR - Command returned non-zero exit status 1.\n"
    )

    f = ml.judge(Evidence(text), Context())

    assert f.reasons == ["microstack_init_failed"]
    assert f.details["stage"] == "Configuring the Cinder services"


def test_a_traceback_after_an_earlier_completion_still_fails():
    complete = (HERE / "init-complete.txt").read_text()
    failed = (HERE / "c18-init-traceback.txt").read_text()

    f = ml.judge(Evidence(complete + failed), Context())

    assert f.verdict is Verdict.FAIL
    assert f.details["stage"] == "Creating databases"


def test_a_failure_before_a_later_completion_is_superseded():
    failed = (HERE / "c18-init-traceback.txt").read_text()
    complete = (HERE / "init-complete.txt").read_text()

    assert ml.judge(Evidence(failed + complete), Context()).verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("message", "stage"),
    [
        ("Mysql server started! Creating databases ...", "Creating databases"),
        ("Configuring clustering ...", "Configuring clustering"),
        (
            "Running Nova DB migrations (this may take a lot of time)...",
            "Running Nova DB migrations",
        ),
        ("Configuring the Placement service...", "Configuring the Placement service"),
        ("RabbitMQ started!", "RabbitMQ started"),
        ("Opening horizon dashboard up to *", "Opening horizon dashboard up to *"),
    ],
)
def test_a_message_is_reduced_to_the_step_it_announces(message: str, stage: str):
    assert ml.stage_of(message) == stage


def _other_inputs() -> list[tuple[str, str]]:
    files = [
        (f"{kind}/{p.name}", p.read_text())
        for kind in OTHER_KINDS
        for p in sorted((DATA / kind).glob("*"))
    ]
    return files + list(FOREIGN.items())


@pytest.mark.parametrize(("label", "text"), _other_inputs())
def test_detector_scores_zero_on_other_kinds(label: str, text: str):
    assert ml.detect(Evidence(text, name=label)) == 0.0


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
    assert ml.detect(Evidence.from_path(path)) < 0.5


@pytest.mark.parametrize("name", sorted(p.name for p in HERE.iterdir()))
def test_judge_never_raises_on_any_prefix_of_a_fixture(name: str):
    text = (HERE / name).read_text()
    for end in range(0, len(text), max(1, len(text) // 60)):
        assert ml.judge(Evidence(text[:end]), Context()).verdict


@pytest.mark.parametrize(
    "junk", ["", "microstack_init - ", "Traceback (most recent call last):", "Killed"]
)
def test_judge_never_raises_on_junk(junk: str):
    assert ml.judge(Evidence(junk), Context()).verdict


# Each a megabyte on one line, after a real init log's start, so the line is read as
# a step message: "(" and spaces once made the step reading quadratic (minutes).
LONG_LINES = {
    "spaces": " " * 1_000_000,
    "tabs": "\t" * 1_000_000,
    "open parens": "(" * 1_000_000,
    "parens and letters": "(a" * 500_000,
    "dots": "." * 1_000_000,
    "waits": "Waiting for a:" * 70_000,
    "exceptions": "ErrorError" * 100_000,
}


@pytest.mark.parametrize("tail", LONG_LINES.values(), ids=LONG_LINES.keys())
def test_a_megabyte_step_message_is_detected_and_judged(
    tail: str,
) -> None:
    text = "$ sudo microstack init --auto --control\n"
    text += f"2021-06-01 10:00:00,000 - microstack_init - INFO - {tail}\n"

    ml.detect(Evidence(text=tail))
    f = ml.judge(Evidence(text=text), Context())

    assert f.kind == "microstack-log"


def test_a_step_s_parenthetical_is_dropped_once_however_many_spaces_precede_it() -> (
    None
):
    assert ml.stage_of("Configuring nova   (this takes a while).") == (
        "Configuring nova"
    )
    assert ml.stage_of("Done (1/2). Setting up (the) network!") == (
        "Setting up network"
    )
