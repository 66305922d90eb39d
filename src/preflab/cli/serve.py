"""`preflab serve`: an OpenAI-compatible server for a local model."""

from __future__ import annotations

import errno
from dataclasses import fields
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from preflab.cli.console import err, user_errors
from preflab.cli.from_config import options_from
from preflab.serve.config import ServeConfig
from preflab.serve.limits import Limits

LIMITS = {f.name: f.name for f in fields(Limits)}  # each limit is an option of its own


@user_errors
@options_from(ServeConfig, nested={"limits": LIMITS})
def serve(
    model: Annotated[str, typer.Argument(
        help="A causal-LM preset, folder or hub id; or a reward model (a train-rm folder, "
             "any sequence-classification model).")],
    config: ServeConfig,
) -> None:
    """Serve a local model over the OpenAI-compatible API a judge needs (/v1/completions
    with logprobs, /v1/chat/completions, /v1/models), so a team can share one judge:
    `preflab label DATA --judge http://HOST:PORT`.

    Prints `serving MODEL at http://HOST:PORT/v1` once it accepts requests. One request
    runs at a time; prompts longer than the model's context, bodies, max_tokens and
    batches over the limits are refused; a client that leaves stops its generation.
    SIGINT or SIGTERM shuts down cleanly (exit 0).

    A reward model is served on vLLM's Pooling and Classify APIs instead, so an
    `http-rm` committee member scores through it as through `vllm serve MODEL --runner
    pooling`.

    Example: `preflab serve smollm2-135m-instruct --port 8000`
    """
    from preflab.models.runtime import set_threads
    from preflab.serve.server import make_server
    from preflab.sockets import bind_socket

    set_threads(config.threads)
    host, port = config.host, config.port
    try:  # before the model loads, so a taken port fails at once
        sock = bind_socket(host, port)
    except OSError as e:
        _fail(f"port {port} is already in use on {host}; pick another with --port (0 picks "
              f"a free one)" if e.errno == errno.EADDRINUSE
              else f"cannot listen on {host}:{port}: {e.strerror or e}")
    try:
        server = make_server(model, config, sock=sock, banner=True)
    except OSError as e:  # a hub id that cannot be fetched, a folder without weights...
        if isinstance(e, FileNotFoundError | PermissionError):
            raise
        _fail(f"cannot load {model}: {' '.join(str(e).split())}")
    server.serve_forever()


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
