"""The web demo serves its page and JSON endpoint on the port the kubelet maps."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_emojivoto import free_port, service


def test_the_web_demo_listens_on_the_mapped_port_and_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PORT": "8080",
        "MESHSTACK_PORT_8080": str(port),
        "MESHSTACK_POD_NAME": "wd-1",
    }
    with service("meshstack.demoapps.webdemo", env, port, tmp_path / "wd.log"):
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/", timeout=5) as resp:
            page = resp.read().decode()
        infos = []
        for _ in range(3):
            with urllib.request.urlopen(base + "/api/info", timeout=5) as resp:
                infos.append(json.loads(resp.read()))
        with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
            health = resp.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/nope", timeout=5)

    assert "wd-1" in page
    assert [i["served"] for i in infos] == [1, 2, 3]
    assert {i["pod"] for i in infos} == {"wd-1"}
    assert health == b"ok\n"
    assert missing.value.code == 404
    log = (tmp_path / "wd.log").read_text()
    assert log.count('"GET /api/info HTTP/1.1" 200') == 3
