"""Sockets the project's servers listen on (the judge/reward server, the review app)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable


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


def serve_in_thread(run: Callable[[], None], started: Callable[[], bool], name: str,
                    timeout: float, what: str) -> threading.Thread:
    """Call `run` (a server's serve-forever loop) in a daemon thread and return once
    `started()` is true; RuntimeError naming `what` when the thread dies first or
    `timeout` seconds pass."""
    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not started():
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)
    return thread
