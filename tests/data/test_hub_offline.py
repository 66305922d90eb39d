"""A hub dataset id with the hub out of reach fails at once, in one line that says so,
without the hub client's retry lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from preflab.data import hub

SCRIPT = str(Path(sys.executable).with_name("preflab"))
OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections for the whole test: bound by a socket
    that never listens and stays open, so no other process can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def accepted(server: socket.socket) -> int:
    """How many connections the listening `server` has received: those queued before
    one this function makes last, and any still queued after it."""
    server.settimeout(None)
    with socket.create_connection(server.getsockname()) as last:
        mine, n = last.getsockname(), 0
        while True:
            conn, peer = server.accept()
            conn.close()
            if peer == mine:
                break
            n += 1
    server.setblocking(False)
    while True:
        try:
            server.accept()[0].close()
        except BlockingIOError:
            return n
        n += 1


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline variable and no proxy: a connect goes to HF_ENDPOINT itself."""
    for name in [*OFFLINE, *(k for k in os.environ if k.lower().endswith("_proxy"))]:
        monkeypatch.delenv(name, raising=False)


def test_the_closed_port_stays_ours(closed_port: int) -> None:
    """As found (issue 32 review): the port was released before use, so another process
    could take it and answer."""
    with socket.socket() as other, pytest.raises(OSError):
        other.bind(("127.0.0.1", closed_port))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port)).close()


@pytest.mark.parametrize("setting", ["HF_HUB_OFFLINE=1", "HF_ENDPOINT closed"])
def test_hub_dataset_without_the_hub_is_one_line(setting: str, closed_port: int) -> None:
    extra = ({"HF_HUB_OFFLINE": "1"} if setting == "HF_HUB_OFFLINE=1"
             else {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port}"})
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
    r = subprocess.run([SCRIPT, "inspect", "someone/dataset"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, check=False,
                       env={**env, "NO_COLOR": "1", "COLUMNS": "200", **extra})
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr  # no "Retrying in 1s [Retry 1/5]" lines
    assert lines[0].startswith("error: someone/dataset") and "the hub" in lines[0]
    assert "unreachable" in lines[0]


def test_reachability_is_one_cached_connect(monkeypatch: pytest.MonkeyPatch,
                                            closed_port: int, no_proxy: None) -> None:
    """Asked twice, the hub is connected to once; a refused connect and offline mode
    are said in words.

    As found (issue 32 review): the test never counted the connects."""
    hub._connect_error.cache_clear()
    with socket.socket() as server:  # a listening port: reachable
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.unreachable() is None
        assert hub.unreachable() is None
        assert accepted(server) == 1
    closed = f"http://127.0.0.1:{closed_port}"
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
