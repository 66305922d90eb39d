"""`preflab serve`: an OpenAI-compatible server for a local model."""

from __future__ import annotations

from typing import Annotated

import typer

from preflab.cli.common import user_errors


@user_errors
def serve(
    model: Annotated[str, typer.Argument(help="A causal-LM preset, folder or hub id.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    served_name: Annotated[str | None, typer.Option(
        help="Model name the API reports (default: MODEL).")] = None,
    quiet: Annotated[bool, typer.Option(help="Do not log requests.")] = False,
    max_logprobs: Annotated[int, typer.Option(help="Most top log-probs a request may ask "
                                                   "for.")] = 20,
) -> None:
    """Serve a local model over the OpenAI-compatible API a judge needs (/v1/completions
    with logprobs, /v1/chat/completions, /v1/models), so a team can share one judge:
    `preflab label DATA --judge http://HOST:PORT`.

    Prints `serving MODEL at http://HOST:PORT/v1` once it accepts requests.

    Example: `preflab serve smollm2-135m-instruct --port 8000`
    """
    from preflab.serve.app import make_server

    server = make_server(model, host, port, served_name=served_name, quiet=quiet,
                         max_logprobs=max_logprobs)
    bound_host, bound_port = server.server_address[:2]
    print(f"serving {served_name or model} at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
