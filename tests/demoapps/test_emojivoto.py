"""emojivoto's services answer the real app's routes, call graph and failure."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshstack.demoapps.emojivoto.catalogue import BY_METHOD, EMOJI, method_name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(
    port: int, proc: subprocess.Popen[bytes], timeout: float = 10
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the service exited {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def service(module: str, env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """``python -m module`` on loopback, its output in ``log``; stopped by pid."""
    full = {**os.environ, "MESHSTACK_BIND_ADDRESS": "127.0.0.1", **env}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", module], env=full,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_listening(port, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def emojivoto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """web, emoji and voting on loopback, wired through their environment."""
    logs = tmp_path_factory.mktemp("emojivoto")
    emoji, voting, web = free_port(), free_port(), free_port()
    web_env = {"WEB_PORT": "8080", "MESHSTACK_PORT_8080": str(web),
               "EMOJISVC_HOST": f"127.0.0.1:{emoji}",
               "VOTINGSVC_HOST": f"127.0.0.1:{voting}"}  # fmt: skip
    with (
        service("meshstack.demoapps.emojivoto.emoji", {"GRPC_PORT": str(emoji)},
                emoji, logs / "emoji.log"),
        service("meshstack.demoapps.emojivoto.voting", {"GRPC_PORT": str(voting)},
                voting, logs / "voting.log"),
        service("meshstack.demoapps.emojivoto.web", web_env, web, logs / "web.log"),
    ):  # fmt: skip
        yield {"url": f"http://127.0.0.1:{web}", "logs": logs}


def test_every_emoji_has_a_voting_method_of_its_own() -> None:
    assert method_name(":stuck_out_tongue_winking_eye:") == "StuckOutTongueWinkingEye"
    assert method_name(":poop:") == "Poop"
    assert len(BY_METHOD) == len(EMOJI)


def test_the_web_api_lists_every_emoji_from_the_emoji_service(emojivoto: dict) -> None:
    status, body = get(f"{emojivoto['url']}/api/list")

    assert status == 200
    assert isinstance(body, list)
    assert {e["shortcode"] for e in body} == set(EMOJI)


def test_a_vote_is_counted_on_the_leaderboard(emojivoto: dict) -> None:
    for _ in range(3):
        assert get(f"{emojivoto['url']}/api/vote?choice=:doughnut:")[0] == 200
    status, board = get(f"{emojivoto['url']}/api/leaderboard")

    assert status == 200
    top = {row["shortcode"]: row for row in board}  # type: ignore[union-attr]
    assert top[":doughnut:"]["votes"] >= 3
    assert top[":doughnut:"]["unicode"] == EMOJI[":doughnut:"]


def test_a_vote_for_poop_always_fails_and_is_never_counted(emojivoto: dict) -> None:
    statuses = {get(f"{emojivoto['url']}/api/vote?choice=:poop:")[0] for _ in range(5)}
    _, board = get(f"{emojivoto['url']}/api/leaderboard")

    assert statuses == {500}
    assert ":poop:" not in {row["shortcode"] for row in board}  # type: ignore[union-attr]


def test_a_vote_for_an_unknown_emoji_is_a_bad_request(emojivoto: dict) -> None:
    assert get(f"{emojivoto['url']}/api/vote?choice=:no_such_emoji:")[0] == 400


def test_the_page_is_served_and_every_request_is_logged(emojivoto: dict) -> None:
    with urllib.request.urlopen(f"{emojivoto['url']}/", timeout=5) as resp:
        page = resp.read().decode()
    time.sleep(0.2)
    web_log = (Path(str(emojivoto["logs"])) / "web.log").read_text()
    voting_log = (Path(str(emojivoto["logs"])) / "voting.log").read_text()

    assert "Emoji Vote" in page
    assert '"GET / HTTP/1.1" 200' in web_log
    assert '"POST /emojivoto.v1.VotingService/VotePoop HTTP/1.1" 500' in voting_log


def test_web_refuses_to_start_without_the_service_addresses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("SVC_HOST")}
    argv = [sys.executable, "-m", "meshstack.demoapps.emojivoto.web"]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)

    assert res.returncode != 0
    assert "EMOJISVC_HOST is not set" in res.stderr


def test_web_answers_502_when_a_service_behind_it_is_down(tmp_path: Path) -> None:
    web, nobody = free_port(), free_port()
    env = {"WEB_PORT": str(web), "EMOJISVC_HOST": f"127.0.0.1:{nobody}",
           "VOTINGSVC_HOST": f"127.0.0.1:{nobody}"}  # fmt: skip
    with service("meshstack.demoapps.emojivoto.web", env, web, tmp_path / "web.log"):
        status, body = get(f"http://127.0.0.1:{web}/api/list")

    assert status == 502
    assert "did not answer" in body["error"]  # type: ignore[index]
