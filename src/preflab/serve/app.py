"""``preflab serve``: a local causal LM behind the OpenAI-compatible API subset a judge
needs, so a team can share one judge and the HTTP backend is tested against a real
server.

Endpoints: ``GET /v1/models``, ``GET /health``, ``POST /v1/completions`` (prompt as
text, token ids or a list of either; ``max_tokens``, ``temperature``, ``top_p``,
``n``, ``seed``, ``stop``, ``logprobs``: up to `max_logprobs`, 20 as in vLLM, top
log-probs of the model's raw distribution at each generated token) and ``POST /v1/chat/completions``
(messages through the model's chat template; ``logprobs`` and ``top_logprobs``).
One request runs at a time (the model is not shared between threads); the prompts
of one request run as a batch. Bad requests get a 400 with an OpenAI-style error.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import torch

from preflab.models.generate import Sampling, decode, stop_token_ids
from preflab.models.runtime import Runtime, load_scoring_lm

MAX_LOGPROBS = 20


class RequestError(ValueError):
    """A request the server refuses (HTTP 400)."""


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RequestError(f"'{name}' must be {getattr(kind, '__name__', kind)}, got a bool")
    if not isinstance(value, kind):
        raise RequestError(f"'{name}' must be {getattr(kind, '__name__', kind)}, "
                           f"got {type(value).__name__}")
    return value


class JudgeModel:
    """The served model: tokenizer, weights and a lock."""

    def __init__(self, model: str, runtime: Runtime | None = None,
                 served_name: str | None = None, max_logprobs: int = MAX_LOGPROBS) -> None:
        self.max_logprobs = max_logprobs
        self.runtime, _, self.tokenizer, self.model = load_scoring_lm(model, runtime)
        self.name = served_name or model
        self.lock = threading.Lock()
        self.created = int(time.time())

    def _prompts(self, prompt: Any) -> list[list[int]]:
        tok = self.tokenizer
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                       and all(isinstance(t, int) for t in prompt)):
            prompt = [prompt]
        if not isinstance(prompt, list) or not prompt:
            raise RequestError("'prompt' must be a string, token ids, or a non-empty list "
                               "of those")
        out = []
        for p in prompt:
            if isinstance(p, str):
                ids = tok(p, add_special_tokens=not tok.chat_template)["input_ids"]
            elif isinstance(p, list) and all(isinstance(t, int) and not isinstance(t, bool)
                                             for t in p):
                ids = list(p)
                if any(t < 0 or t >= len(tok) for t in ids):
                    raise RequestError(f"token ids must lie in [0, {len(tok)})")
            else:
                raise RequestError("each prompt must be a string or a list of token ids")
            if not ids:
                raise RequestError("a prompt is empty")
            out.append(ids)
        return out

    def _stop_ids(self) -> set[int]:
        return stop_token_ids(self.tokenizer, self.model)

    def _top(self, logp: torch.Tensor, k: int) -> dict[str, float]:
        """The `k` likeliest tokens as text -> log-prob (spellings that decode alike are
        totalled)."""
        values, ids = logp.topk(k)
        top: dict[str, float] = {}
        for v, i in zip(values.tolist(), ids.tolist(), strict=True):
            text = self.tokenizer.decode([i])
            top[text] = float(np.logaddexp(top[text], v)) if text in top else v
        return top

    @torch.inference_mode()
    def complete(self, ids: list[list[int]], sampling: Sampling, seed: int | None,
                 top_k: int | None, stop: list[str]) -> list[dict[str, Any]]:
        """Generate for each prompt: text, tokens and their log-probs, finish reason."""
        with self.lock, self.runtime.autocast():
            seeds = [(seed or 0) + j for j in range(len(ids))]
            new, logps = decode(self.model, None, ids, seeds, sampling, self._stop_ids(),
                                self.tokenizer.pad_token_id, return_logprobs=True)
        out = []
        stop_ids = self._stop_ids()
        for tokens, rows in zip(new, logps, strict=True):
            text = self.tokenizer.decode([t for t in tokens if t not in stop_ids],
                                         skip_special_tokens=True)
            finish = "stop" if tokens and tokens[-1] in stop_ids else "length"
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text, finish = text[:cut], "stop"
            item: dict[str, Any] = {"text": text, "finish_reason": finish,
                                    "tokens": len(tokens)}
            if top_k is not None:
                item["logprobs"] = [
                    (self.tokenizer.decode([t]), float(row[t]), self._top(row, top_k))
                    for t, row in zip(tokens, rows, strict=True)]
            out.append(item)
        return out


def _sampling(body: dict[str, Any], default_max: int) -> tuple[Sampling, int | None, list[str]]:
    max_tokens = _field(body, "max_tokens", int, default_max)
    if "max_completion_tokens" in body:
        max_tokens = _field(body, "max_completion_tokens", int, default_max)
    temperature = float(_field(body, "temperature", (int, float), 1.0))
    top_p = float(_field(body, "top_p", (int, float), 1.0))
    try:
        sampling = Sampling(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p)
    except ValueError as e:
        raise RequestError(str(e)) from None
    seed = _field(body, "seed", int, None)
    stop = _field(body, "stop", (str, list), [])
    stop = [stop] if isinstance(stop, str) else stop
    if not all(isinstance(s, str) for s in stop):
        raise RequestError("'stop' must be a string or a list of strings")
    return sampling, seed, stop


def completions(judge: JudgeModel, body: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``/v1/completions`` reply."""
    if body.get("echo"):
        raise RequestError("'echo' is not supported")
    sampling, seed, stop = _sampling(body, 16)
    n = _field(body, "n", int, 1)
    top_k = _field(body, "logprobs", int, None)
    if top_k is not None and not 0 <= top_k <= judge.max_logprobs:
        raise RequestError(f"'logprobs' must lie in [0, {judge.max_logprobs}]")
    prompts = judge._prompts(body.get("prompt"))
    if not 1 <= n <= 64:
        raise RequestError("'n' must lie in [1, 64]")
    ids = [p for p in prompts for _ in range(n)]
    results = judge.complete(ids, sampling, seed, top_k, stop)
    choices = []
    for index, r in enumerate(results):
        choice: dict[str, Any] = {"index": index, "text": r["text"],
                                  "finish_reason": r["finish_reason"], "logprobs": None}
        if top_k is not None:
            offsets, pos = [], 0
            for tok, _, _ in r["logprobs"]:
                offsets.append(pos)
                pos += len(tok)
            choice["logprobs"] = {"tokens": [t for t, _, _ in r["logprobs"]],
                                  "token_logprobs": [lp for _, lp, _ in r["logprobs"]],
                                  "top_logprobs": [top for _, _, top in r["logprobs"]],
                                  "text_offset": offsets}
        choices.append(choice)
    prompt_tokens = sum(len(p) for p in prompts)
    completion_tokens = sum(r["tokens"] for r in results)
    return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion",
            "created": int(time.time()), "model": judge.name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def chat_completions(judge: JudgeModel, body: dict[str, Any]) -> dict[str, Any]:
    """The body of a ``/v1/chat/completions`` reply."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        raise RequestError("'messages' must be a non-empty list of {role, content} objects "
                           "with string content")
    tok = judge.tokenizer
    if not tok.chat_template:
        raise RequestError(f"{judge.name} has no chat template; use /v1/completions")
    text = tok.apply_chat_template([{"role": m["role"], "content": m["content"]}
                                    for m in messages], tokenize=False,
                                   add_generation_prompt=True)
    sampling, seed, stop = _sampling(body, 256)
    n = _field(body, "n", int, 1)
    if not 1 <= n <= 64:
        raise RequestError("'n' must lie in [1, 64]")
    want = bool(_field(body, "logprobs", bool, False))
    top_k = _field(body, "top_logprobs", int, 0) if want else None
    if top_k is not None and not 0 <= top_k <= judge.max_logprobs:
        raise RequestError(f"'top_logprobs' must lie in [0, {judge.max_logprobs}]")
    ids = judge._prompts([tok(text, add_special_tokens=False)["input_ids"]]) * n
    results = judge.complete(ids, sampling, seed, top_k, stop)
    choices = []
    for index, r in enumerate(results):
        logprobs = None
        if top_k is not None:
            logprobs = {"content": [
                {"token": t, "logprob": lp, "bytes": list(t.encode()),
                 "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())}
                                  for k, v in top.items()]}
                for t, lp, top in r["logprobs"]]}
        choices.append({"index": index, "message": {"role": "assistant", "content": r["text"]},
                        "finish_reason": r["finish_reason"], "logprobs": logprobs})
    prompt_tokens = len(ids[0])
    completion_tokens = sum(r["tokens"] for r in results)
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": judge.name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def make_handler(judge: JudgeModel, quiet: bool = False) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:
                super().log_message(format, *args)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            blob = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def _error(self, status: int, message: str, kind: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok", "model": judge.name})
            elif self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": judge.name, "object": "model", "created": judge.created,
                     "owned_by": "preflab"}]})
            else:
                self._error(404, f"no route {self.path}", "not_found_error")

        def do_POST(self) -> None:
            routes = {"/v1/completions": completions, "/v1/chat/completions": chat_completions}
            route = routes.get(self.path.rstrip("/"))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if route is None:
                self._error(404, f"no route {self.path}", "not_found_error")
                return
            try:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise RequestError("the request body must be a JSON object")
                model = body.get("model")
                if model not in (None, judge.name):
                    self._error(404, f"model {model!r} is not served here; this server "
                                     f"serves {judge.name!r}", "not_found_error")
                    return
                self._send(200, route(judge, body))
            except json.JSONDecodeError as e:
                self._error(400, f"the request body is not JSON: {e}", "invalid_request_error")
            except RequestError as e:
                self._error(400, str(e), "invalid_request_error")
            except Exception as e:  # the server keeps serving; the client records why
                self._error(500, f"{type(e).__name__}: {e}", "server_error")

    return Handler


def make_server(model: str, host: str = "127.0.0.1", port: int = 8000,
                runtime: Runtime | None = None, served_name: str | None = None,
                quiet: bool = False, max_logprobs: int = MAX_LOGPROBS) -> ThreadingHTTPServer:
    """A server for `model`, bound but not yet serving (``port=0`` picks a free port)."""
    judge = JudgeModel(model, runtime, served_name, max_logprobs)
    server = ThreadingHTTPServer((host, port), make_handler(judge, quiet))
    server.daemon_threads = True
    return server
