"""Sockets the project's servers listen on (the judge/reward server, the review app), and
how a server serves on one: in the main thread or a background one."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host`:`port` (0: a free port), not listening yet.

    Raises OSError (``errno.EADDRINUSE`` when the port is taken)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class SocketServer:
    """A server on a bound socket: :meth:`serve_forever` in the main thread, or
    :meth:`start` in a daemon thread. A subclass sets `sock` and `_server` (a
    ``uvicorn.Server``), names its thread (`thread_name`) and itself in errors (`what`),
    and shuts down its own way."""

    thread_name = "preflab-server"
    what = "the server"
    start_timeout = 30.0  # seconds :meth:`start` waits by default
    sock: socket.socket
    _server: Any
    _thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        """Serve until SIGINT/SIGTERM (main thread) or the subclass's ``shutdown``."""
        self._server.run(sockets=[self.sock])

    def start(self, timeout: float | None = None) -> Self:
        """Serve in a background thread; returns once it accepts connections
        (RuntimeError when the thread dies first or `timeout` seconds pass; default
        `start_timeout`)."""
        thread = threading.Thread(target=self.serve_forever, name=self.thread_name,
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + (self.start_timeout if timeout is None else timeout)
        while not self._server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.what} did not start")
            time.sleep(0.02)
        self._thread = thread
        return self
