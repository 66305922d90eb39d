"""A reward model behind a server: vLLM's pooling runner, or ``preflab serve``.

``vllm serve MODEL --runner pooling`` serves a sequence-classification reward model on
vLLM's Pooling API: ``POST /pooling`` with ``{"model", "input", "task": "classify",
"use_activation": false}`` answers ``{"data": [{"index", "object": "pooling",
"data": [logit, ...]}]}`` (raw logits, as the model's head gives them); ``api =
"classify"`` uses ``POST /classify`` instead, whose items carry ``"probs"``. The
inputs are token ids when the model's tokenizer is at hand (rendered and truncated as
the local ``seq-rm`` member renders them, so a served model scores exactly as a local
one), else the conversation as chat ``messages``, one request each, for the server's
template to render.

Inputs are shortened to the server's context (``max_model_len`` in ``GET /v1/models``,
as vLLM and ``preflab serve`` give it) by the rule of the local member; a server that
shortens an input itself says so per item (``truncated_tokens``, ``preflab serve``).
Either way the unit counts as truncated.

Requests run and are retried as :mod:`preflab.engine.http_client` says. A request
the server refuses as input it will not read (:data:`INPUT_REFUSED`: 400, 413 or 422,
e.g. an input over a vLLM server's context) is sent again one input at a time, so
only the inputs it refuses fail; any other refusal (a wrong key, an unknown model)
fails the request. A reward that still fails, or a reply that cannot be read, becomes
NaN with its reason in :attr:`HttpRewardScorer.failures` — never a score (NaN values
are not cached, so the next run asks again).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from preflab.engine.http_client import (
    HttpOptions,
    JudgeError,
    check_url,
    connect,
    run_chunks,
)
from preflab.engine.units import Unit
from preflab.models.runtime import ENCODER_TYPES, fingerprint

APIS = {"pooling": "/pooling", "classify": "/classify"}
# Refusals of a request's inputs (bad request, too large, unprocessable): one input may
# be at fault, so the batch is sent again input by input. Other 4xx refuse every input.
INPUT_REFUSED = (400, 413, 422)
DEFAULT_BATCH = 16  # inputs per request (with a tokenizer; chat messages go one a request)


def server_root(url: str) -> str:
    """The server's root (vLLM serves ``/pooling`` there, not under ``/v1``)."""
    return check_url(url).rstrip("/").removesuffix("/v1")


def read_reward(item: Any, api: str, index: int) -> float:
    """The reward in one item of a Pooling or Classify reply: column `index` of its
    ``data`` (the last row of per-token data) or ``probs``."""
    if not isinstance(item, dict):
        raise JudgeError("a reply item is not a JSON object")
    value = item.get("probs" if api == "classify" else "data")
    if isinstance(value, list) and value and isinstance(value[-1], list):
        value = value[-1]  # a token-level reward model: the last token's row
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or len(value) <= index:
        raise JudgeError(f"the reply item has no output {index}: {str(value)[:80]}")
    reward = value[index]
    if isinstance(reward, bool) or not isinstance(reward, int | float) \
            or not math.isfinite(reward):
        raise JudgeError(f"the reward is not a finite number: {reward!r}")
    return float(reward)


def _encoder_folder(name: str) -> bool:
    """True when `name` resolves to a folder holding an encoder's config."""
    from preflab.models.offline import resolve

    try:
        config = Path(resolve(name)) / "config.json"
    except Exception:  # a hub id: not here
        return False
    return config.exists() and json.loads(config.read_text()).get("model_type") in ENCODER_TYPES


class HttpRewardScorer:
    """Scores (context, reply) units through a served reward model.

    `options` say where and how (:class:`~preflab.engine.http_client.HttpOptions`; 16
    inputs a request by default): the model defaults to the server's first (``GET
    /v1/models``), the tokenizer (a preset, folder or hub id; default: the model's
    name) renders and truncates the inputs as :func:`~preflab.engine.reward.reward_input`
    does; without one the conversations go as chat messages. `api`: ``pooling`` or
    ``classify``; `output_index`: the output that is the reward; `trust_remote_code`:
    load a tokenizer that needs its own code. The value is [reward], NaN when it could
    not be had (reason in :attr:`failures`, by unit key).
    """

    def __init__(self, options: HttpOptions, api: str = "pooling", output_index: int = 0,
                 trust_remote_code: bool = False) -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {', '.join(APIS)}, got {api!r}")
        if not isinstance(options.tokenizer, str | None):
            raise ValueError("an HTTP reward model's tokenizer is given by name (a preset, "
                             "folder or hub id)")
        self.client, model, self.server_context = connect(options, server_root(options.url),
                                                          "/v1/models")
        self.model_name = model
        self.api = api
        self.path = APIS[api]
        self.output_index = output_index
        self.max_length = min(options.max_length, self.server_context or options.max_length)
        self.concurrency = options.concurrency
        self.batch = options.batch or DEFAULT_BATCH
        name = options.tokenizer or model
        self.tokenizer = self._load_tokenizer(name, trust_remote_code)
        self.encoder = _encoder_folder(name) if self.tokenizer else False
        self.failures: dict[str, str] = {}
        self.truncated = 0
        self.truncated_keys: set[str] = set()
        from preflab.engine.reward import TRUNCATION

        self.truncation = (f"{TRUNCATION} ({self.max_length} tokens)" if self.tokenizer else
                           "by the server (the conversation is sent whole)")
        self.name = options.name or f"rm:{model}@{options.host}"
        self.fingerprint = fingerprint("http-reward", model, api, output_index,
                                       self.max_length, self.tokenizer is not None,
                                       self.encoder)

    @staticmethod
    def _load_tokenizer(name: str, trust_remote_code: bool = False) -> Any | None:
        """The tokenizer when it is here (a preset, a folder, the hub's cache); never
        downloaded: a remote model's name need not be a hub id. One that needs its own
        code loads only with `trust_remote_code` (else :class:`RemoteCodeRefused`)."""
        from preflab.models.offline import OFFLINE_MODELS, RemoteCodeRefused, load_tokenizer

        local = name in OFFLINE_MODELS or Path(name).expanduser().exists()
        try:
            return load_tokenizer(name, trust_remote_code=trust_remote_code,
                                  **({} if local else {"local_files_only": True}))
        except RemoteCodeRefused:
            raise
        except Exception:  # a remote model whose tokenizer is not here: chat messages
            return None

    def _input(self, unit: Unit) -> list[int] | list[dict[str, str]]:
        context, reply = unit.payload
        if self.tokenizer is None:
            return [{"role": r, "content": c} for r, c in context] + [
                {"role": "assistant", "content": reply}]
        from preflab.engine.reward import reward_input

        x = reward_input(self.tokenizer, self.encoder, context, reply, self.max_length)
        if x.context_cut or x.reply_cut:
            self.truncated += 1
            self.truncated_keys.add(unit.key)
        return x.ids

    # Engine protocol: one item per unit, no prefix sharing (the server batches).
    def encode(self, units: list[Unit]) -> list[tuple[str, Any]]:
        return [(u.key, self._input(u)) for u in units]

    def sort_key(self, item: list[tuple[str, Any]]) -> tuple[int, ...]:
        return (max(len(x) for _, x in item),)

    def cost(self, items: list[list[tuple[str, Any]]]) -> tuple[int, int]:
        n = sum(len(i) for i in items)
        return n, n

    def _body(self, chunk: list[tuple[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "use_activation": False}
        if self.api == "pooling":
            body["task"] = "classify"
        if self.tokenizer is None:  # one conversation per request
            body["messages"] = chunk[0][1]
        else:
            body["input"] = [x for _, x in chunk]
            body["add_special_tokens"] = False
        return body

    def _score(self, chunk: list[tuple[str, Any]]) -> list[np.ndarray]:
        try:
            reply = self.client.post(self.path, self._body(chunk))
            data = reply.get("data")
            if not isinstance(data, list):
                raise JudgeError("the reply has no 'data' list")
            items = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
            if len(items) != len(chunk):
                raise JudgeError(f"{len(items)} results for {len(chunk)} inputs")
        except JudgeError as e:
            if e.status in INPUT_REFUSED and len(chunk) > 1:
                # refused whole (one input over its context?): one at a time, so only
                # the inputs it refuses fail
                return [v for x in chunk for v in self._score([x])]
            for key, _ in chunk:
                self.failures[key] = str(e)
            return [np.full(1, np.nan) for _ in chunk]
        out = []
        for (key, _), item in zip(chunk, items, strict=True):
            try:
                out.append(np.array([read_reward(item, self.api, self.output_index)]))
            except JudgeError as e:
                self.failures[key] = str(e)
                out.append(np.full(1, np.nan))
                continue
            if item.get("truncated_tokens"):  # the server shortened it
                self.truncated_keys.add(key)
        return out

    def run(self, items: list[list[tuple[str, Any]]]) -> list[np.ndarray]:
        size = self.batch if self.tokenizer is not None else 1  # chat: one a request
        return run_chunks(self._score, items, size, self.concurrency)
