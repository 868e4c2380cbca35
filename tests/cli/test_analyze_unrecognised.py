"""`meshstack analyze` says plainly when an input is empty or not of the kind named.

Every kind in the registry is tried: an empty input is "empty: nothing to judge"
(HARNESS-ERROR ``unrecognised_input``, exit status 3) whatever --kind says, and a
message never tells the user to name a kind with --kind when one was named.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshstack import analyzers

MESHSTACK = str(Path(sys.executable).parent / "meshstack")
KINDS = sorted(analyzers.kinds())
ADVICE_TO_NAME_A_KIND = "name its kind with --kind"


def analyze(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MESHSTACK, "analyze", "--json", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert proc.stdout, f"no output; stderr: {proc.stderr}"
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.parametrize("content", ["", " \n\t\r\n"], ids=["empty", "white-space"])
def test_an_empty_file_is_nothing_to_judge_under_every_kind(
    tmp_path: Path, content: str
) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text(content)

    for kind in [None, *KINDS]:
        args = [str(capture), *(["--kind", kind] if kind else [])]
        proc = analyze(*args)

        [row] = rows(proc)
        assert proc.returncode == 3, (kind, proc.stderr)
        assert row["verdict"] == "HARNESS-ERROR", kind
        assert row["reasons"] == ["unrecognised_input"], kind
        if kind and analyzers.kinds()[kind].directory:
            # what is wrong first: that kind is a folder, not a file
            assert row["hints"] == [_NOT_A_DIRECTORY.format(capture, kind)], kind
        else:
            assert row["hints"] == [
                f"{capture}: empty: nothing to judge; capture it again (an empty "
                "capture often means the command printed only to stderr, or did not "
                "run)"
            ], kind
        assert row["kind"] == (kind or "")
        # a named kind says which layer the input was meant for
        assert row["layer"] == (analyzers.kinds()[kind].layer if kind else "unknown")


_NOT_A_DIRECTORY = (
    "{}: not a directory; {} is judged whole from its folder: name the folder"
)


def test_a_file_under_a_directory_kind_is_told_to_name_the_folder(
    tmp_path: Path,
) -> None:
    result = tmp_path / "0001-result.json"
    result.write_text('{"name": "test_a", "status": "passed"}')

    proc = analyze("--kind", "allure-results", str(result))

    [row] = rows(proc)
    assert proc.returncode == 3
    assert row["reasons"] == ["unrecognised_input"]
    assert row["hints"] == [_NOT_A_DIRECTORY.format(result, "allure-results")]


def test_empty_standard_input_is_nothing_to_judge() -> None:
    proc = analyze("--kind", "linkerd-check", "-", stdin="\n\n")

    [row] = rows(proc)
    assert proc.returncode == 3
    assert row["hints"][0].startswith("-: empty: nothing to judge")


def test_an_empty_directory_is_nothing_to_judge_even_as_a_directory_kind(
    tmp_path: Path,
) -> None:
    for args in ([str(tmp_path)], [str(tmp_path), "--kind", "allure-results"]):
        proc = analyze(*args)

        [row] = rows(proc)
        assert proc.returncode == 3
        assert row["hints"] == [
            f"{tmp_path}: empty: nothing to judge; name the directory that holds "
            "the artifacts"
        ]


def test_input_not_of_the_kind_named_never_suggests_naming_a_kind(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text("hello from a file of no kind at all\n")

    for kind in KINDS:
        proc = analyze(str(capture), "--kind", kind)

        [row] = rows(proc)
        assert row["reasons"] == ["unrecognised_input"], kind
        assert proc.returncode == 3, kind
        assert not any(ADVICE_TO_NAME_A_KIND in h for h in row["hints"]), row
        if analyzers.kinds()[kind].directory:
            assert row["hints"] == [_NOT_A_DIRECTORY.format(capture, kind)], row
            continue
        assert any(
            f"not {kind} output, the kind --kind names" in h and "leave --kind out" in h
            for h in row["hints"]
        ), row


def test_a_judge_that_refuses_what_its_detector_accepted_does_not_suggest_kind(
    tmp_path: Path,
) -> None:
    # A Prometheus answer cut off early: its detector scores it, its judge refuses
    # it (its own path to unrecognised_input, not the registry's).
    capture = tmp_path / "answer.json"
    capture.write_text('{"status":"success","data":{"resultType":')
    kind = analyzers.get("prometheus-response")
    assert kind.detect(analyzers.Evidence(capture.read_text())) > 0

    proc = analyze(str(capture), "--kind", "prometheus-response")

    [row] = rows(proc)
    assert row["reasons"] == ["unrecognised_input"]
    assert row["hints"] == [
        f"{capture}: the input is not prometheus-response output, the kind --kind "
        "names; check the file, or leave --kind out to have its kind detected"
    ]


def test_input_of_no_kind_detected_still_gets_the_advice_to_name_one(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text("hello from a file of no kind at all\n")

    [row] = rows(analyze(str(capture)))

    assert any(ADVICE_TO_NAME_A_KIND in h for h in row["hints"]), row


def test_a_bundle_member_not_of_its_recorded_kind_blames_the_file_not_the_flags(
    tmp_path: Path,
) -> None:
    (tmp_path / "bundle.jsonl").write_text(
        '{"file":"a.txt","kind":"linkerd-check","context":{}}\n'
        '{"file":"b.txt","kind":"linkerd-check","context":{}}\n'
    )
    (tmp_path / "a.txt").write_text("no check output here\n")
    (tmp_path / "b.txt").write_text("")

    proc = analyze(str(tmp_path))

    changed, empty = rows(proc)
    assert proc.returncode == 3
    assert changed["hints"] == [
        f"{tmp_path / 'a.txt'}: the input is not linkerd-check output, the kind the "
        "bundle's manifest records; was the file changed after the run?"
    ]
    assert empty["hints"][0] == (
        f"{tmp_path / 'b.txt'}: empty: nothing to judge; capture it again (an empty "
        "capture often means the command printed only to stderr, or did not run)"
    )
