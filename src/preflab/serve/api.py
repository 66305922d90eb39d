"""The OpenAI request and reply shapes: ``/v1/completions`` and ``/v1/chat/completions``.

A request is checked in two steps. :func:`parse_completion` / :func:`parse_chat`
run on arrival, without the tokenizer or the model (types, ranges, `max_tokens`
against the server's cap, token-id prompts against the context); :func:`answer`
runs on the model thread: it tokenizes, checks the prompts against the context and
the batch limits, generates and builds the reply.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from preflab.models.generate import Sampling
from preflab.serve.errors import bad_request
from preflab.serve.limits import Limits
from preflab.serve.model import Job, JudgeModel

DEFAULT_MAX_TOKENS = {"completion": 16, "chat": 256}
MAX_N = 64


@dataclass(frozen=True)
class Plan:
    """A request checked on arrival: what the model thread needs to answer it."""

    kind: str  # "completion" or "chat"
    prompts: list[Any]  # completion: texts or token-id lists; chat: [messages]
    n: int
    max_tokens: int | None  # None: the endpoint's default, shortened to fit the context
    max_tokens_param: str
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    top_k: int | None

    @property
    def param(self) -> str:
        return "prompt" if self.kind == "completion" else "messages"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(body: dict[str, Any], name: str, default: int | None, low: int | None = None,
         high: int | None = None, hint: str = "") -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if not _is_int(value):
        raise bad_request(f"'{name}' must be an integer, got {value!r}", name, "invalid_type")
    if low is not None and value < low:
        raise bad_request(f"'{name}' must be at least {low}, got {value}", name)
    if high is not None and value > high:
        raise bad_request(f"'{name}' must be at most {high}{hint}, got {value}", name)
    return value


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float,
            open_low: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_request(f"'{name}' must be a number, got {value!r}", name, "invalid_type")
    if value > high or value < low or (open_low and value == low):
        side = "(" if open_low else "["
        raise bad_request(f"'{name}' must lie in {side}{low}, {high}], got {value}", name)
    return float(value)


def _common(body: dict[str, Any], limits: Limits, kind: str, prompts: list[Any],
            top_k: int | None) -> Plan:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    max_tokens = _int(body, name, None, 1, limits.max_tokens,
                      " (this server's limit, --max-tokens)")
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise bad_request("'stop' must be a string or a list of strings", "stop", "invalid_type")
    return Plan(kind=kind, prompts=prompts, n=_int(body, "n", 1, 1, MAX_N) or 1,
                max_tokens=max_tokens, max_tokens_param=name,
                temperature=_number(body, "temperature", 1.0, 0.0, 1e6),
                top_p=_number(body, "top_p", 1.0, 0.0, 1.0, open_low=True),
                seed=_int(body, "seed", None), stop=stop, top_k=top_k)


def _prompt_list(prompt: Any, judge: JudgeModel) -> list[Any]:
    if isinstance(prompt, str) or (isinstance(prompt, list) and prompt
                                   and all(_is_int(t) for t in prompt)):
        prompt = [prompt]
    if not isinstance(prompt, list) or not prompt:
        raise bad_request("'prompt' must be a string, token ids, or a non-empty list of "
                          "those", "prompt", "invalid_type")
    for p in prompt:
        if isinstance(p, list) and all(_is_int(t) for t in p):
            if any(t < 0 or t >= judge.vocab for t in p):
                raise bad_request(f"token ids must lie in [0, {judge.vocab})", "prompt")
            _check_context(judge, len(p), 1, "prompt")
        elif not isinstance(p, str):
            raise bad_request("each prompt must be a string or a list of token ids",
                              "prompt", "invalid_type")
        if len(p) == 0:
            raise bad_request("a prompt is empty", "prompt")
    return prompt


def parse_completion(judge: JudgeModel, limits: Limits, body: dict[str, Any]) -> Plan:
    """Check a ``/v1/completions`` body on arrival."""
    if body.get("echo"):
        raise bad_request("'echo' is not supported", "echo")
    top_k = _int(body, "logprobs", None, 0, limits.max_logprobs, " (--max-logprobs)")
    plan = _common(body, limits, "completion", _prompt_list(body.get("prompt"), judge), top_k)
    _check_rows(plan, limits)
    return plan


def parse_chat(judge: JudgeModel, limits: Limits, body: dict[str, Any]) -> Plan:
    """Check a ``/v1/chat/completions`` body on arrival."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str) for m in messages):
        raise bad_request("'messages' must be a non-empty list of {role, content} objects "
                          "with string content", "messages", "invalid_type")
    if not judge.tokenizer.chat_template:
        raise bad_request(f"{judge.name} has no chat template; use /v1/completions",
                          "messages")
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise bad_request(f"'logprobs' must be a boolean, got {logprobs!r}", "logprobs",
                          "invalid_type")
    top_k = (_int(body, "top_logprobs", 0, 0, limits.max_logprobs, " (--max-logprobs)")
             if logprobs else None)
    plan = _common(body, limits, "chat", [[{"role": m["role"], "content": m["content"]}
                                           for m in messages]], top_k)
    _check_rows(plan, limits)
    return plan


def _check_rows(plan: Plan, limits: Limits) -> None:
    rows = len(plan.prompts) * plan.n
    if 2 * rows > limits.max_batch_tokens:  # each row takes a prompt and a new token
        raise bad_request(f"{rows} sequences (prompts x n) cannot fit this server's limit of "
                          f"{limits.max_batch_tokens} batch tokens (--max-batch-tokens)",
                          plan.param, "batch_too_large")


def _check_context(judge: JudgeModel, prompt: int, new: int, param: str,
                   prefix: bool = False) -> None:
    if judge.context is None or prompt + new <= judge.context:
        return
    if prefix:
        message = (f"This model's maximum context length is {judge.context} tokens. "
                   f"However, your prompt is longer: its beginning alone is {prompt} tokens.")
    else:
        message = (f"This model's maximum context length is {judge.context} tokens. "
                   f"However, you requested {prompt + new} tokens ({prompt} in the prompt, "
                   f"{new} for the completion).")
    raise bad_request(message + " Please reduce the length of the prompt or max_tokens.",
                      param, "context_length_exceeded")


def _tokenize(judge: JudgeModel, plan: Plan) -> list[list[int]]:
    tok = judge.tokenizer
    out = []
    for p in plan.prompts:
        if plan.kind == "chat":
            text = tok.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
            ids, prefix = judge.encode(text, add_special_tokens=False)
        elif isinstance(p, str):
            ids, prefix = judge.encode(p, add_special_tokens=not tok.chat_template)
        else:
            ids, prefix = list(p), False
        if not ids:
            raise bad_request("a prompt is empty", plan.param)
        _check_context(judge, len(ids), 1 if plan.max_tokens is None else plan.max_tokens,
                       plan.param, prefix)
        out.append(ids)
    return out


def _sampling(judge: JudgeModel, limits: Limits, plan: Plan, prompts: list[list[int]]
              ) -> Sampling:
    longest = max(len(p) for p in prompts)
    max_tokens = plan.max_tokens
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS[plan.kind], limits.max_tokens)
        if judge.context is not None:
            max_tokens = min(max_tokens, judge.context - longest)
    rows = len(prompts) * plan.n
    need = rows * (longest + max_tokens)
    if need > limits.max_batch_tokens:
        raise bad_request(f"this request needs {need} batch tokens ({rows} sequences x "
                          f"({longest} prompt + {max_tokens} new tokens)), over this server's "
                          f"limit of {limits.max_batch_tokens} (--max-batch-tokens); send fewer "
                          f"prompts, a smaller n or {plan.max_tokens_param}",
                          plan.param, "batch_too_large")
    megabytes = rows * max_tokens * judge.vocab * 4 / 2**20
    if plan.top_k is not None and megabytes > limits.max_logprobs_mb:
        raise bad_request(f"the log-probs of this request would take {megabytes:.0f} MB "
                          f"({rows} sequences x {max_tokens} tokens x {judge.vocab} vocabulary), "
                          f"over this server's limit of {limits.max_logprobs_mb:g} MB "
                          f"(--max-logprobs-mb); ask for fewer tokens or sequences",
                          plan.max_tokens_param, "logprobs_too_large")
    return Sampling(max_new_tokens=max_tokens, temperature=plan.temperature, top_p=plan.top_p)


def answer(judge: JudgeModel, limits: Limits, plan: Plan, job: Job | None = None
           ) -> dict[str, Any]:
    """The reply to a checked request (on the model thread)."""
    prompts = _tokenize(judge, plan)
    sampling = _sampling(judge, limits, plan, prompts)
    rows = [p for p in prompts for _ in range(plan.n)]
    results = judge.complete(rows, sampling, plan.seed, plan.top_k, plan.stop, job)
    if plan.kind == "chat":
        choices = [_chat_choice(i, r, plan.top_k) for i, r in enumerate(results)]
        prompt_tokens, kind, prefix = len(prompts[0]), "chat.completion", "chatcmpl"
    else:
        choices = [_completion_choice(i, r, plan.top_k) for i, r in enumerate(results)]
        prompt_tokens = sum(len(p) for p in prompts)
        kind, prefix = "text_completion", "cmpl"
    completion_tokens = sum(r["tokens"] for r in results)
    return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind,
            "created": int(time.time()), "model": judge.name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def _completion_choice(index: int, r: dict[str, Any], top_k: int | None) -> dict[str, Any]:
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
    return choice


def _chat_choice(index: int, r: dict[str, Any], top_k: int | None) -> dict[str, Any]:
    logprobs = None
    if top_k is not None:
        logprobs = {"content": [
            {"token": t, "logprob": lp, "bytes": list(t.encode()),
             "top_logprobs": [{"token": k, "logprob": v, "bytes": list(k.encode())}
                              for k, v in top.items()]}
            for t, lp, top in r["logprobs"]]}
    return {"index": index, "message": {"role": "assistant", "content": r["text"]},
            "finish_reason": r["finish_reason"], "logprobs": logprobs}
