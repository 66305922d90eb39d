"""The served model, and the job that lets a request in flight be stopped.

Generation runs :func:`preflab.models.generate.decode` unchanged; a forward pre-hook
on the model's output layer, which ``decode`` calls once per step, polls the running
:class:`Job` and raises :class:`Cancelled` when the client left, the request ran out
of time or the server is shutting down — so a request stops between two decode steps
and its numbers are those of an uninterrupted run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import torch

from preflab.models.generate import Sampling, decode, stop_token_ids
from preflab.models.runtime import Runtime, load_scoring_lm, model_context

# How much text is tokenized to tell that a prompt cannot fit: at most this many
# characters per token of context (and never less than 256 KiB), so a 4 MB prompt
# is refused in milliseconds instead of tokenized whole.
CHARS_PER_TOKEN_WINDOW = 16
MIN_WINDOW = 256 * 1024


class Cancelled(Exception):
    """Generation stopped between two decode steps; the message says why
    (``disconnect``, ``timeout`` or ``shutdown``)."""


class Job:
    """One request's claim on the model: its deadline and, once set, why it must stop.

    Written from the event loop, read by the model thread between decode steps.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.deadline_reason = "timeout"
        self.reason: str | None = None
        self.started = False
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Claim the model (model thread); False when the job was cancelled first."""
        with self._lock:
            if self.reason is not None:
                return False
            self.started = True
            return True

    def cancel(self, reason: str, only_waiting: bool = False) -> bool:
        """Ask the job to stop; True when it had not started (it never will)."""
        with self._lock:
            if only_waiting and self.started:
                return False
            if self.reason is None:
                self.reason = reason
            return not self.started

    def check(self) -> None:
        """Raise :class:`Cancelled` when the job must stop (model thread)."""
        if self.reason is not None:
            raise Cancelled(self.reason)
        if time.monotonic() > self.deadline:
            raise Cancelled(self.deadline_reason)

    def shorten(self, deadline: float, reason: str) -> None:
        """Bring the deadline forward (to `deadline`, if earlier), for `reason`."""
        if deadline < self.deadline:
            self.deadline_reason = reason
            self.deadline = deadline


def context_length(model: Any, tokenizer: Any) -> int | None:
    """The most tokens (prompt + completion) the model takes, when it says."""
    return model_context(model, tokenizer)


class JudgeModel:
    """The served model: tokenizer, weights, its context length (`context`, else the
    model's own) and the running job."""

    def __init__(self, model: str, runtime: Runtime | None = None,
                 served_name: str | None = None, context: int | None = None) -> None:
        self.runtime, _, self.tokenizer, self.model = load_scoring_lm(model, runtime)
        self.name = served_name or model
        self.created = int(time.time())
        self.context = context or context_length(self.model, self.tokenizer)
        self.vocab = len(self.tokenizer)
        self.stop_ids = stop_token_ids(self.tokenizer, self.model)
        self.lock = threading.Lock()
        self._job: Job | None = None
        self.model.get_output_embeddings().register_forward_pre_hook(self._poll)

    def _poll(self, module: torch.nn.Module, args: Any) -> None:
        job = self._job
        if job is not None:
            job.check()

    def encode(self, text: str, add_special_tokens: bool) -> tuple[list[int], bool]:
        """Token ids of `text`, and whether they are only a prefix: text far longer than
        the context is tokenized only as far as it takes to show it cannot fit."""
        window = max(MIN_WINDOW, CHARS_PER_TOKEN_WINDOW * (self.context or 0))
        if self.context is not None and len(text) > window:
            head = self.tokenizer(text[:window], add_special_tokens=add_special_tokens)
            if len(head["input_ids"]) >= self.context:
                return head["input_ids"], True
        return self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"], False

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
                 top_k: int | None, stop: list[str], job: Job | None = None
                 ) -> list[dict[str, Any]]:
        """Generate for each prompt: text, token count, finish reason and (with `top_k`)
        per token (text, log-prob, top log-probs). Raises :class:`Cancelled` when `job`
        is cancelled or runs out of time between two decode steps."""
        with self.lock, self.runtime.autocast():
            seeds = [(seed or 0) + j for j in range(len(ids))]
            if job is not None:
                job.check()
            self._job = job
            try:
                result = decode(self.model, None, ids, seeds, sampling, self.stop_ids,
                                self.tokenizer.pad_token_id, return_logprobs=top_k is not None)
            finally:
                self._job = None
        new, logps = result if top_k is not None else (result, None)
        return [self._result(j, tokens, logps, sampling, top_k, stop)
                for j, tokens in enumerate(new)]

    def _result(self, j: int, tokens: list[int], logps: Any, sampling: Sampling,
                top_k: int | None, stop: list[str]) -> dict[str, Any]:
        if logps is not None:  # the stop token is kept
            stopped = bool(tokens) and tokens[-1] in self.stop_ids
            count = len(tokens)
        else:  # the stop token is left out: a row that stopped is shorter than the limit
            stopped = len(tokens) < sampling.max_new_tokens
            count = len(tokens) + stopped
        text = self.tokenizer.decode([t for t in tokens if t not in self.stop_ids],
                                     skip_special_tokens=True)
        finish = "stop" if stopped else "length"
        cut = min((text.find(s) for s in stop if s in text), default=-1)
        if cut >= 0:
            text, finish = text[:cut], "stop"
        item: dict[str, Any] = {"text": text, "finish_reason": finish, "tokens": count}
        if top_k is not None:
            item["logprobs"] = [
                (self.tokenizer.decode([t]), float(row[t]), self._top(row, top_k))
                for t, row in zip(tokens, logps[j], strict=True)]
        return item
