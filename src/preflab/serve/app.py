"""``preflab serve``: a local causal LM behind the OpenAI-compatible API subset a judge
needs, as an ASGI app (Starlette, served by uvicorn: see :mod:`preflab.serve.server`).

Endpoints: ``GET /v1/models``, ``GET /health``, ``POST /v1/completions`` (prompt as
text, token ids or a list of either; ``max_tokens``, ``temperature``, ``top_p``,
``n``, ``seed``, ``stop``, ``logprobs``: up to `max_logprobs`, 20 as in vLLM, top
log-probs of the model's raw distribution at each generated token) and
``POST /v1/chat/completions`` (messages through the model's chat template;
``logprobs`` and ``top_logprobs``). One request runs at a time (the prompts of one
request run as a batch), a bounded number wait (:mod:`preflab.serve.gate`), and every
refusal is an OpenAI-style error: 400 (bad or too large a request), 404, 405, 413
(body over the limit), 503 (busy, timed out, shutting down; ``Retry-After`` when busy).
A reward model is served on vLLM's Pooling and Classify APIs instead (``POST /pooling``,
``POST /classify``: :mod:`preflab.serve.reward`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from preflab.serve.api import Plan, answer, parse_chat, parse_completion
from preflab.serve.errors import ApiError, bad_request
from preflab.serve.gate import ClientGone, Gate
from preflab.serve.limits import Limits
from preflab.serve.model import Job, JudgeModel
from preflab.serve.reward import RewardModel, answer_pool, parse_pool

log = logging.getLogger(__name__)

Parser = Callable[[JudgeModel, Limits, dict[str, Any]], Plan]
Work = Callable[[Job], dict[str, Any]]


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                  ) -> Response:
    """A JSON reply (``json.dumps`` as before, so log-probs print exactly)."""
    return Response(json.dumps(body), status, headers, media_type="application/json")


def error_response(e: ApiError) -> Response:
    return json_response(e.status, e.body(), e.headers)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object: 413 when its ``Content-Length`` or, while it
    streams in, its size passes `limit` bytes; 400 when it is not a JSON object."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, f"the request body is {int(length)} bytes, over this server's "
                            f"limit of {limit} bytes (--max-body-mb)", code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is over this server's limit of {limit} "
                                f"bytes (--max-body-mb)", code="request_too_large")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"the request body is not JSON: {e}", None, "invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", None, "invalid_json")
    return body


def _paths(path: str) -> list[str]:
    return [path, path + "/"]


def create_app(judge: JudgeModel | RewardModel, limits: Limits | None = None) -> Starlette:
    """The ASGI app serving `judge` (a causal LM, or a reward model on the Pooling and
    Classify APIs) within `limits`; ``app.state.gate`` is its queue."""
    served = Served(judge, limits or Limits())
    gate = served.gate

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        gate.close(0.0)
        gate.shutdown()

    app = Starlette(routes=served.routes(), lifespan=lifespan, exception_handlers={
        HTTPException: _http_error, Exception: _server_error})
    app.state.gate = gate
    app.state.judge = judge
    app.state.limits = served.limits
    return app


class Served:
    """The routes of one served model: each request is read, checked and planned on
    arrival (400s at once), then run on the model thread through the gate."""

    def __init__(self, judge: JudgeModel | RewardModel, limits: Limits) -> None:
        self.judge = judge
        self.limits = limits
        self.gate = Gate(limits.max_queue, limits.request_timeout)

    def routes(self) -> list[Route]:
        """Health and the model list; then the Pooling and Classify APIs for a reward
        model (at the root, as vLLM's pooling runner serves them, and under ``/v1``),
        else the completions and chat completions APIs."""
        routes = [
            *(Route(p, self.health, methods=["GET"])
              for p in _paths("/health") + _paths("/v1/health")),
            *(Route(p, self.models, methods=["GET"]) for p in _paths("/v1/models")),
        ]
        if isinstance(self.judge, RewardModel):
            posts = {"/pooling": self.pool, "/v1/pooling": self.pool,
                     "/classify": self.classify, "/v1/classify": self.classify}
        else:
            posts = {"/v1/completions": self.completions,
                     "/v1/chat/completions": self.chat_completions}
        return routes + [Route(p, endpoint, methods=["POST"])
                         for path, endpoint in posts.items() for p in _paths(path)]

    async def health(self, request: Request) -> Response:
        return json_response(200, {"status": "ok", "model": self.judge.name})

    async def models(self, request: Request) -> Response:
        judge = self.judge
        return json_response(200, {"object": "list", "data": [
            {"id": judge.name, "object": "model", "created": judge.created,
             "owned_by": "preflab",
             **({"max_model_len": judge.context} if judge.context else {})}]})

    async def handle(self, request: Request, plan: Callable[[dict[str, Any]], Work]
                     ) -> Response:
        """Read the body, check the model, `plan` the work (400s on arrival), run it on
        the model thread through the gate and answer."""
        name = self.judge.name
        try:
            body = await read_json(request, self.limits.max_body_bytes)
            model = body.get("model")
            if model not in (None, name):
                raise ApiError(404, f"model {model!r} is not served here; this server serves "
                                    f"{name!r}", param="model", code="model_not_found")
            reply = await self.gate.run(plan(body), request.receive)
        except ApiError as e:
            return error_response(e)
        except (ClientGone, ClientDisconnect):
            return Response(status_code=499)  # nobody reads it
        except Exception as e:  # the server keeps serving; the client records why
            log.exception("request failed")
            return error_response(ApiError(500, f"{type(e).__name__}: {e}", kind="server_error"))
        return json_response(200, reply)

    def generation(self, parse: Parser) -> Callable[[dict[str, Any]], Work]:
        def plan(body: dict[str, Any]) -> Work:
            judge = self.judge
            assert isinstance(judge, JudgeModel)
            checked = parse(judge, self.limits, body)
            return lambda job: answer(judge, self.limits, checked, job)
        return plan

    def pooling(self, endpoint: str) -> Callable[[dict[str, Any]], Work]:
        def plan(body: dict[str, Any]) -> Work:
            judge = self.judge
            assert isinstance(judge, RewardModel)
            checked = parse_pool(endpoint, body)
            return lambda job: answer_pool(judge, self.limits, checked, job)
        return plan

    async def completions(self, request: Request) -> Response:
        return await self.handle(request, self.generation(parse_completion))

    async def chat_completions(self, request: Request) -> Response:
        return await self.handle(request, self.generation(parse_chat))

    async def pool(self, request: Request) -> Response:
        return await self.handle(request, self.pooling("pooling"))

    async def classify(self, request: Request) -> Response:
        return await self.handle(request, self.pooling("classify"))


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 from routing, in OpenAI's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = ", ".join(sorted(m.strip() for m in (exc.headers or {}).get(
            "Allow", "").split(",") if m.strip()))
        e = ApiError(405, f"{request.method} is not allowed on {request.url.path}; use "
                          f"{allowed}", code="method_not_allowed", headers={"Allow": allowed})
    elif exc.status_code == 404:
        e = ApiError(404, f"Invalid URL ({request.method} {request.url.path})",
                     code="not_found")
    else:
        e = ApiError(exc.status_code, str(exc.detail), headers=exc.headers)
    return error_response(e)


async def _server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: a 500 the client can record, and the server keeps serving."""
    return error_response(ApiError(500, f"{type(exc).__name__}: {exc}", kind="server_error"))
