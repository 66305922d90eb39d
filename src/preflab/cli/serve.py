"""`preflab serve`: an OpenAI-compatible server for a local model."""

from __future__ import annotations

import errno
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from preflab.cli.console import (
    err,
    user_errors,
)
from preflab.cli.options import (
    ThreadsOpt,
    set_threads,
)


@user_errors
def serve(
    model: Annotated[str, typer.Argument(
        help="A causal-LM preset, folder or hub id; or a reward model (a train-rm folder, "
             "any sequence-classification model).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    served_name: Annotated[str | None, typer.Option(
        help="Model name the API reports (default: MODEL).")] = None,
    quiet: Annotated[bool, typer.Option(help="Do not log requests.")] = False,
    max_logprobs: Annotated[int, typer.Option(
        min=0, help="Most top log-probs a request may ask for.")] = 20,
    max_body_mb: Annotated[float, typer.Option(
        help="Largest request body in MiB; larger ones get a 413.")] = 4.0,
    max_tokens: Annotated[int, typer.Option(
        min=1, help="Most new tokens a request may ask for (max_tokens); more is a 400.")
    ] = 1024,
    max_batch_tokens: Annotated[int, typer.Option(
        min=2, help="Most sequences x (longest prompt + max_tokens) in one request.")
    ] = 32768,
    max_logprobs_mb: Annotated[float, typer.Option(
        help="Most memory (MiB) the log-probs of one request may take (sequences x "
             "max_tokens x vocabulary x 4 bytes).")] = 1024.0,
    max_queue: Annotated[int, typer.Option(
        min=0, help="Requests that may wait behind the running one; more get a 503 with "
                    "Retry-After.")] = 16,
    request_timeout: Annotated[float, typer.Option(
        help="Seconds a request may take, waiting included; then a 503.")] = 120.0,
    shutdown_grace: Annotated[float, typer.Option(
        min=0, help="Seconds the running request gets to finish on SIGINT/SIGTERM.")] = 5.0,
    max_connections: Annotated[int, typer.Option(
        min=1, help="Most open connections; more get a 503.")] = 128,
    max_context: Annotated[int | None, typer.Option(
        min=2, help="Most tokens (prompt + completion) per sequence; longer prompts get a "
                    "400 (default: the model's context length).")] = None,
    reward: Annotated[bool | None, typer.Option(
        "--reward/--generate",
        help="Serve a reward model on vLLM's Pooling and Classify APIs (/pooling, "
             "/classify), or a causal LM on /v1/completions (default: a folder whose "
             "config names a sequence-classification model is a reward model).")] = None,
    threads: ThreadsOpt = None,
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
    from preflab.serve.limits import Limits
    from preflab.serve.server import make_server
    from preflab.sockets import bind_socket

    set_threads(threads)
    limits = Limits(max_body_mb=max_body_mb, max_tokens=max_tokens,
                    max_batch_tokens=max_batch_tokens, max_logprobs=max_logprobs,
                    max_logprobs_mb=max_logprobs_mb, max_queue=max_queue,
                    request_timeout=request_timeout, shutdown_grace=shutdown_grace,
                    max_connections=max_connections, max_context=max_context)
    try:  # before the model loads, so a taken port fails at once
        sock = bind_socket(host, port)
    except OSError as e:
        _fail(f"port {port} is already in use on {host}; pick another with --port (0 picks "
              f"a free one)" if e.errno == errno.EADDRINUSE
              else f"cannot listen on {host}:{port}: {e.strerror or e}")
    try:
        server = make_server(model, sock=sock, served_name=served_name, quiet=quiet,
                             limits=limits, banner=True, reward=reward)
    except OSError as e:  # a hub id that cannot be fetched, a folder without weights...
        if isinstance(e, FileNotFoundError | PermissionError):
            raise
        _fail(f"cannot load {model}: {' '.join(str(e).split())}")
    server.serve_forever()


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 2."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
