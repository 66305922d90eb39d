"""Running the app: bind the port first (so a port in use fails before the model
loads), serve with uvicorn, and shut down cleanly on SIGINT/SIGTERM.

On a signal the server stops accepting connections, answers the waiting requests
with a 503, gives the running one `shutdown_grace` seconds to finish (then stops it
between two decode steps), lets the replies go out and returns, so the process
exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from preflab.models.runtime import Runtime
from preflab.serve.app import create_app
from preflab.serve.config import ServeConfig
from preflab.serve.gate import Gate
from preflab.serve.limits import Limits
from preflab.serve.model import JudgeModel
from preflab.serve.reward import RewardModel, is_reward_model
from preflab.sockets import SocketServer, bind_socket

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging with the access log on stderr too: stdout carries only the
    ``serving ...`` line, so a parent that reads just that line never blocks us."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    return config


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, whose signals also stop the model's work, and which does not
    re-raise the signal once it has shut down (a clean exit is an exit 0)."""

    def __init__(self, config: uvicorn.Config, gate: Gate, grace: float,
                 on_start: Callable[[], None] | None) -> None:
        super().__init__(config)
        self.gate = gate
        self.grace = grace
        self.on_start = on_start
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started and self.on_start is not None:
            self.on_start()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.stop_requests()

    def stop_requests(self) -> None:
        """Start shutting down; safe from a signal handler or another thread."""
        self.should_exit = True
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.gate.close, self.grace)


class JudgeServer(SocketServer):
    """A model behind the API on a bound socket: :meth:`serve_forever` in the main
    thread (until SIGINT/SIGTERM), or :meth:`start` in a thread and :meth:`shutdown`."""

    thread_name, start_timeout = "preflab-serve", 60.0

    def __init__(self, judge: JudgeModel | RewardModel, sock: socket.socket,
                 limits: Limits | None = None,
                 quiet: bool = False, banner: bool = False) -> None:
        self.judge = judge
        self.limits = limits or Limits()
        self.sock = sock
        self._address: tuple[str, int] = sock.getsockname()[:2]
        self.app = create_app(judge, self.limits)
        config = uvicorn.Config(
            self.app, http="h11", loop="asyncio", lifespan="on",
            log_config=_log_config(), log_level="warning" if quiet else "info",
            access_log=not quiet,
            limit_concurrency=self.limits.max_connections,
            timeout_graceful_shutdown=int(self.limits.shutdown_grace) + 5)
        self._server = _Uvicorn(config, self.app.state.gate, self.limits.shutdown_grace,
                                self._announce if banner else None)

    @property
    def server_address(self) -> tuple[str, int]:
        return self._address

    @property
    def url(self) -> str:
        """The server's root URL (``http://HOST:PORT``; the API is under ``/v1``)."""
        host, port = self.server_address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def _announce(self) -> None:
        print(f"serving {self.judge.name} at {self.url}/v1", flush=True)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Shut down as on SIGTERM and wait for the serving thread."""
        self._server.stop_requests()
        if self._thread is not None:
            self._thread.join(timeout)


def make_server(model: str, config: ServeConfig | None = None, *,
                runtime: Runtime | None = None, sock: socket.socket | None = None,
                banner: bool = False, **overrides: Any) -> JudgeServer:
    """A server for `model` with the settings `config` (`overrides` on top:
    ``make_server("tiny-llama", port=0, quiet=True, limits=Limits(max_queue=2))``), on
    its host and port (``port=0`` picks a free one) or on `sock`, bound before the model
    loads, not yet serving. With `banner` it prints ``serving MODEL at
    http://HOST:PORT/v1`` once it accepts connections. A reward model (``reward``; by
    default: a folder whose config names a sequence-classification or reward
    architecture) is served on the Pooling and Classify APIs."""
    from preflab.models.offline import resolve

    config = replace(config or ServeConfig(), **overrides)
    sock = sock or bind_socket(config.host, config.port)
    try:
        context, reward = config.limits.max_context, config.reward
        if reward is None:
            reward = is_reward_model(resolve(model))
        judge: JudgeModel | RewardModel = (
            RewardModel(model, runtime, config.served_name, context) if reward
            else JudgeModel(model, runtime, config.served_name, context))
    except BaseException:
        sock.close()
        raise
    return JudgeServer(judge, sock, config.limits, config.quiet, banner)
