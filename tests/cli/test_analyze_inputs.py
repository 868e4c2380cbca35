"""What `meshstack analyze` accepts: encodings, pipes, bad options, broken bundles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MESHSTACK = str(Path(sys.executable).parent / "meshstack")
EMPTY_VECTOR = '{"status":"success","data":{"resultType":"vector","result":[]}}'


def analyze(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MESHSTACK, "analyze", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_byte_order_mark_or_utf16_does_not_hide_the_kind(tmp_path: Path) -> None:
    for name, data in {
        "utf8bom": b"\xef\xbb\xbf" + EMPTY_VECTOR.encode(),
        "utf16": EMPTY_VECTOR.encode("utf-16"),
    }.items():
        (tmp_path / name).write_bytes(data)
        out = json.loads(analyze("--json", str(tmp_path / name)).stdout)
        assert (out["kind"], out["verdict"]) == (
            "prometheus-response",
            "INCONCLUSIVE",
        ), name


def test_a_pipe_named_on_the_command_line_is_read() -> None:
    proc = subprocess.run(
        ["bash", "-c", f"{MESHSTACK} analyze --json <(printf '%s' '{EMPTY_VECTOR}')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(proc.stdout)["kind"] == "prometheus-response"


def test_invalid_context_options_are_usage_errors_naming_the_option() -> None:
    for args, named in (
        (["--overlay-cidr", "banana"], "--overlay-cidr"),
        (["--overlay-cidr", "10.0.0.0/33"], "--overlay-cidr"),
        (["--metallb-version", "banana"], "--metallb-version"),
        (["--extra", 'objective={"op":">=","bound":NaN}'], "--extra"),
    ):
        proc = analyze(*args, "-", stdin="x")
        assert proc.returncode == 4, (args, proc.stderr)
        assert named in proc.stderr and proc.stdout == ""


def test_a_broken_bundle_manifest_is_a_harness_error_per_line_not_a_crash(
    tmp_path: Path,
) -> None:
    (tmp_path / "bundle.jsonl").write_text(
        '{"file":"../outside","kind":"linkerd-check","context":{}}\n'
        "not json\n"
        '{"file":"a.txt","kind":"no-such-kind","context":{}}\n'
        '{"file":"a.txt","kind":"linkerd-check","context":{"now":"yesterday"}}\n'
    )
    (tmp_path / "a.txt").write_text("x")
    proc = analyze("--json", str(tmp_path))
    assert proc.returncode == 3, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(lines) == 4
    assert all(x["verdict"] == "HARNESS-ERROR" for x in lines)
    assert all(x["reasons"] == ["unrecognised_input"] for x in lines)
    assert "outside the bundle" in lines[0]["hints"][0]
    assert "Traceback" not in proc.stderr
