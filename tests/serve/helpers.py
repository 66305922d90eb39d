"""Helpers for the server tests: `preflab serve` as a process, and raw HTTP over a
socket (for what `requests` will not send: a lying Content-Length, a client that
leaves mid-request)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ServeProcess:
    """`preflab serve` in its own process; stderr goes to a file."""

    def __init__(self, args: list[str], cache: str, log: Path, timeout: float = 90) -> None:
        self.log = log
        self._err = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "preflab.cli", "serve", *args], stdout=subprocess.PIPE,
            stderr=self._err, text=True, env={**os.environ, "PREFLAB_CACHE": cache})
        self.url = ""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "serving" in line:
                self.url = line.split(" at ")[1].strip().removesuffix("/v1")
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"preflab serve did not start: {log.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._err.flush()
        return self.log.read_text()

    def stop(self) -> int | None:
        """Terminate if still running; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()
        return self.proc.returncode


def address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def send_raw(url: str, path: str, body: bytes | dict[str, Any] | None = None,
             method: str = "POST", headers: dict[str, str] | None = None,
             timeout: float = 30) -> socket.socket:
    """Open a connection and send one request (body as given: it may disagree with a
    Content-Length in `headers`); returns the socket to read the reply from or close."""
    blob = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    host, port = address(url)
    head = {"Host": f"{host}:{port}", "Content-Type": "application/json",
            "Content-Length": str(len(blob)), **(headers or {})}
    sock = socket.create_connection((host, port), timeout=timeout)
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items()), "", ""]
    sock.sendall("\r\n".join(lines).encode() + blob)
    return sock


def read_reply(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased) and body of one reply with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def assert_openai_error(body: dict[str, Any], param: str | None = None) -> dict[str, Any]:
    """The error object of an OpenAI-style error body."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error
