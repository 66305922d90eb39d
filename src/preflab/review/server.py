"""``preflab review serve``: the review app under uvicorn, on 127.0.0.1 by default.

:class:`ReviewServer` serves in the main thread until SIGINT/SIGTERM
(:meth:`~ReviewServer.serve_forever`) or in a background thread (:meth:`~ReviewServer.start`,
:meth:`~ReviewServer.shutdown`), as tests and scripts use it. The access log never
shows a token: the value of a login link's ``token`` parameter is written as
``[redacted]``, its name matched as the app reads it (decoded, so ``tok%65n=`` too).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from pathlib import Path
from urllib.parse import unquote_plus

import uvicorn

from preflab.review.app import MAX_BODY, SESSION_DAYS, create_app
from preflab.sockets import SocketServer, bind_socket

LOOPBACK = ("localhost",)
QUERY = re.compile(r"\?([^\s\"#]*)")
SECRET_PARAMETER = "token"


def _redact_part(part: str) -> str:
    name = part.partition("=")[0]
    # the name as the app reads it (Starlette: urllib.parse.parse_qsl, '+' a space)
    return f"{name}=[redacted]" if unquote_plus(name) == SECRET_PARAMETER else part


def redact_query(text: str) -> str:
    """`text` with the value of every ``token`` parameter of each query string in it
    replaced by ``[redacted]``."""
    return QUERY.sub(lambda m: "?" + "&".join(_redact_part(p) for p in m.group(1).split("&")),
                     text)


class RedactTokens(logging.Filter):
    """Redacts the ``token`` parameter (:func:`redact_query`) in a log record's message
    and string arguments (uvicorn's access line: client, method, path with query,
    version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


REDACT = RedactTokens()


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, banner: str | None) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.banner:
            print(self.banner, flush=True)


class ReviewServer(SocketServer):
    """The review app of project `db` on a bound socket."""

    thread_name, what = "preflab-review", "the review server"

    def __init__(self, db: str | Path, sock: socket.socket, quiet: bool = True,
                 banner: bool = False, secure_cookie: bool = False,
                 max_body: int = MAX_BODY, max_connections: int = 256,
                 session_days: float = SESSION_DAYS) -> None:
        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.app = create_app(db, secure_cookie=secure_cookie, max_body=max_body,
                              session_days=session_days)
        config = uvicorn.Config(self.app, http="h11", loop="asyncio", lifespan="off",
                                log_level="warning" if quiet else "info",
                                access_log=not quiet, limit_concurrency=max_connections,
                                timeout_graceful_shutdown=5)
        for name in ("uvicorn.access", "uvicorn.error"):  # after the config set logging up
            logging.getLogger(name).addFilter(REDACT)
        self._server = _Uvicorn(config, f"serving review at {self.url}" if banner else None)

    def shutdown(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()


def make_server(db: str | Path, host: str = "127.0.0.1", port: int = 8765, quiet: bool = True,
                banner: bool = False, secure_cookie: bool = False,
                session_days: float = SESSION_DAYS) -> ReviewServer:
    """A review server for project `db` on `host`:`port` (0 picks a free port);
    `session_days`: how long a reviewer's login lasts."""
    sock = bind_socket(host, port)
    try:
        return ReviewServer(db, sock, quiet=quiet, banner=banner, secure_cookie=secure_cookie,
                            session_days=session_days)
    except BaseException:
        sock.close()
        raise
