"""A pairwise judge behind any OpenAI-compatible server (vLLM, TGI, `preflab serve`...).

Scoring asks ``/v1/completions`` for one token with the top log-probs and totals,
per label, the probability of the tokens that read as it ("1", " 1"...). Rationales
come from the same endpoint. The prompt is rendered exactly as the local judge
renders it (:class:`~preflab.engine.judge.JudgeReader`) and sent as token ids when
the tokenizer is at hand, else as plain text.

Requests run and are retried as :mod:`preflab.engine.http_client` says. A
judgement that still fails, or a reply that cannot be read, becomes a NaN value with
its reason in :attr:`HttpJudgeScorer.failures` — never a label (NaN values are not
cached, so the next run asks again).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from preflab.data.messages import Messages
from preflab.engine.http_client import (
    HttpOptions,
    JudgeError,
    check_url,
    connect,
    run_chunks,
)
from preflab.engine.judge import JudgeReader
from preflab.engine.label_prompt import LabelPrompt
from preflab.engine.units import Unit
from preflab.models.generate import Sampling
from preflab.models.runtime import fingerprint

DEFAULT_BATCH = 8  # prompts per request


def api_base(url: str) -> str:
    """The API root of a server URL: ``http://host:8000`` -> ``http://host:8000/v1``."""
    base = check_url(url).rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


def read_label_logprobs(top: Any, labels: Sequence[str] = ("1", "2")) -> np.ndarray:
    """[log P(label) for each label, labels missing from the top log-probs] from one
    position's ``{token: logprob}``: each label's total over the tokens that read as it.
    A label outside the top-k gets the lowest log-prob shown (an upper bound); with
    none of the labels shown there is no judgement."""
    if not isinstance(top, dict) or not top:
        raise JudgeError("the reply has no top log-probs")
    try:
        items = [(str(k), float(v)) for k, v in top.items()]
    except (TypeError, ValueError):
        raise JudgeError("the top log-probs are not numbers") from None
    out, missing = [], 0
    for label in labels:
        found = [v for k, v in items if k.strip() == label]
        if found:
            out.append(float(np.logaddexp.reduce(found)))
        else:
            out.append(min(v for _, v in items))
            missing += 1
    if missing == len(labels):
        raise JudgeError(f"none of the labels {list(labels)} is among the top "
                         f"{len(items)} log-probs")
    return np.array([*out, missing], dtype=np.float64)


class HttpJudgeScorer(JudgeReader):
    """Scores (context, A, B[, rationale]) units through an OpenAI-compatible server.

    The value is [log P(1), log P(2), labels outside the top-k] (NaN when the judgement
    failed). `options` say where and how (:class:`~preflab.engine.http_client.HttpOptions`;
    8 prompts a request by default): the model defaults to the server's first, the
    tokenizer (default: the model's name) renders the prompt as the local judge does,
    conversations shortened as :class:`~preflab.engine.judge.JudgeReader` says, within
    the server's context (``max_model_len`` in ``GET /v1/models``) less the label token.
    `top_logprobs`: the log-probs asked for at the label's position.
    """

    def __init__(self, options: HttpOptions, prompt: LabelPrompt,
                 max_context_tokens: int | None = 256, top_logprobs: int = 20,
                 keep_task: bool = False) -> None:
        self.client, model, context = connect(options, api_base(options.url), "/models")
        self.model_name = model
        # a prompt leaves room for the label token
        max_length = options.max_length if context is None else \
            min(options.max_length, context - 1)
        tok = options.tokenizer
        if tok is None or isinstance(tok, str):
            tok = self._load_tokenizer(tok or model)
        super().__init__(tok, prompt, max_length, max_context_tokens, keep_task)
        self.concurrency = options.concurrency
        self.batch = options.batch or DEFAULT_BATCH
        self.top_logprobs = top_logprobs
        self.failures: dict[str, str] = {}
        self.name = options.name or f"label:{model}@{options.host}"
        self.fingerprint = fingerprint("http-judge", model, prompt.head, prompt.ending,
                                       max_length, max_context_tokens, top_logprobs,
                                       self.tokenizer is not None, *self.prompt_fingerprint(),
                                       *(["keep-task"] if keep_task else []))

    @staticmethod
    def _load_tokenizer(name: str) -> Any | None:
        from preflab.models.offline import load_tokenizer

        try:
            return load_tokenizer(name)
        except Exception:  # a remote model whose tokenizer is not here: plain text
            return None

    def _prompt(self, context: Messages, a: str, b: str, rationale: str | None = None,
                cot: bool = False) -> list[int] | str:
        if self.tokenizer is None:
            return self.prompt_text(context, a, b, rationale, cot)
        return self.prompt_ids(context, a, b, rationale, cot)

    # Engine protocol: one item per unit, no prefix sharing (the server batches).
    def encode(self, units: list[Unit]) -> list[tuple[str, list[int] | str]]:
        items = [(u.key, self.noting_cuts(u, self._prompt)) for u in units]
        self.prompt_tokens += sum(len(p) for _, p in items if isinstance(p, list))
        return items

    def sort_key(self, item: list[tuple[str, Any]]) -> tuple[int, ...]:
        return (max(len(p) for _, p in item),)

    def cost(self, items: list[list[tuple[str, Any]]]) -> tuple[int, int]:
        n = sum(len(i) for i in items)
        return n, n

    def _score(self, chunk: list[tuple[str, Any]]) -> list[np.ndarray]:
        body = {"model": self.model_name, "prompt": [p for _, p in chunk], "max_tokens": 1,
                "temperature": 0, "logprobs": self.top_logprobs}
        try:
            reply = self.client.post("/completions", body)
            choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(chunk):
                raise JudgeError(f"{len(choices)} choices for {len(chunk)} prompts")
        except JudgeError as e:
            for key, _ in chunk:
                self.failures[key] = str(e)
            return [np.full(3, np.nan) for _ in chunk]
        out = []
        for (key, _), choice in zip(chunk, choices, strict=True):
            try:
                tops = ((choice.get("logprobs") or {}).get("top_logprobs")) or []
                if not tops:
                    raise JudgeError("the reply has no top log-probs")
                out.append(read_label_logprobs(tops[0]))
            except (JudgeError, AttributeError) as e:
                self.failures[key] = str(e) if isinstance(e, JudgeError) else \
                    "the reply's log-probs cannot be read"
                out.append(np.full(3, np.nan))
        return out

    def run(self, items: list[list[tuple[str, Any]]]) -> list[np.ndarray]:
        return run_chunks(self._score, items, self.batch, self.concurrency)

    def generate(self, prompts: Sequence[tuple[Messages, str, str]], seeds: Sequence[int],
                 sampling: Sampling) -> list[str | None]:
        """A rationale per (context, A, B); None where the server failed (reason in
        :attr:`failures`, under the unit's key)."""
        from preflab.engine.judge import judge_unit

        def one(j: int) -> str | None:
            context, a, b = prompts[j]
            body = {"model": self.model_name, "prompt": self._prompt(context, a, b, cot=True),
                    "max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature,
                    "top_p": sampling.top_p, "seed": int(seeds[j])}
            try:
                reply = self.client.post("/completions", body)
                text = reply["choices"][0]["text"]
                if not isinstance(text, str):
                    raise JudgeError("the reply's text is not a string")
                usage = reply.get("usage") or {}
                self.generated_tokens += int(usage.get("completion_tokens") or 0)
                return text.strip()
            except (JudgeError, KeyError, IndexError, TypeError) as e:
                reason = str(e) if isinstance(e, JudgeError) else "the reply has no text"
                self.failures[judge_unit(context, a, b).key] = reason
                return None

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, range(len(prompts))))
