"""`preflab serve` as a process: a port in use, bad limits, and SIGINT mid-request."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.serve.helpers import ServeProcess, read_reply, send_raw


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflab.cli", "serve", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_port_in_use_is_one_line_and_exit_2_before_the_model_loads() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # a model that does not exist: loading it first would fail differently
        r = _serve("no-such-model", "--port", str(port))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} is already in use" in lines[0], r.stderr


def test_a_bad_limit_is_one_line_and_exit_2() -> None:
    r = _serve("no-such-model", "--port", "0", "--request-timeout", "0")
    assert r.returncode == 2 and "(--request-timeout) must be greater than 0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert len(r.stderr.strip().splitlines()) == 1


def test_sigint_during_a_request_answers_it_and_exits_0(serve_cache: str,
                                                          tmp_path: Path) -> None:
    server = ServeProcess(["tiny-llama", "--port", "0", "--quiet", "--shutdown-grace", "0.1",
                           "--max-context", "8192", "--max-tokens", "8192",
                           "--max-batch-tokens", "400000"], serve_cache, tmp_path / "serve.log")
    try:
        # A request still running after a second, however fast this machine: 32 rows
        # of up to 480, then 4,000 tokens (each row stops at its end-of-text token).
        for max_tokens in (480, 4000):
            sock = send_raw(server.url, "/v1/completions",
                            {"prompt": "Hello", "max_tokens": max_tokens, "n": 32,
                             "temperature": 1, "seed": 0})
            sock.settimeout(1.0)
            try:
                sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                break  # in flight
            sock.settimeout(30)
            read_reply(sock)
            sock.close()
        else:
            raise AssertionError("every request finished within a second")
        with sock:
            server.proc.send_signal(signal.SIGINT)
            sock.settimeout(15)
            status, _, body = read_reply(sock)
        # finished within the grace period (200) or cancelled (503): answered either way
        assert status == 200 or (status == 503 and json.loads(body)["error"]["code"]
                                 == "shutting_down"), (status, body[:200])
        assert server.proc.wait(15) == 0
        log = server.stderr()
        assert "terminate called" not in log and "Traceback" not in log, log
    finally:
        server.stop()
