"""A hub dataset id with the hub out of reach fails at once, in one line that says so,
without the hub client's retry lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from preflab.data import hub

SCRIPT = str(Path(sys.executable).with_name("preflab"))
OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("setting", ["HF_HUB_OFFLINE=1", "HF_ENDPOINT closed"])
def test_hub_dataset_without_the_hub_is_one_line(setting: str) -> None:
    extra = ({"HF_HUB_OFFLINE": "1"} if setting == "HF_HUB_OFFLINE=1"
             else {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"})
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    r = subprocess.run([SCRIPT, "inspect", "someone/dataset"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, check=False,
                       env={**env, "NO_COLOR": "1", "COLUMNS": "200", **extra})
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr  # no "Retrying in 1s [Retry 1/5]" lines
    assert lines[0].startswith("error: someone/dataset") and "the hub" in lines[0]
    assert "unreachable" in lines[0]


def test_reachability_is_one_cached_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OFFLINE:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as server:  # a listening port: reachable
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.unreachable() is None
    hub._connect_error.cache_clear()  # (the closed port may be the one just used)
    closed = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    assert hub.unreachable() == f"the hub ({closed}) is unreachable: Connection refused"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.unreachable() == "the hub is unreachable: offline mode (HF_HUB_OFFLINE is set)"


def test_a_proxy_is_what_gets_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert hub._target("https://huggingface.co") == ("127.0.0.1", 3128)
    monkeypatch.setenv("no_proxy", "huggingface.co")
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert hub._target("https://huggingface.co") == ("huggingface.co", 443)
