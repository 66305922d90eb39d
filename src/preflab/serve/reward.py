"""A served reward model: vLLM's Pooling and Classify APIs, for ``preflab serve``.

``POST /pooling`` (and ``/v1/pooling``) takes ``{"model", "input", "task",
"use_activation", "add_special_tokens"}`` or, instead of ``input``, one conversation as
``messages``, and answers ``{"data": [{"index", "object": "pooling", "data":
[value, ...]}], "usage"}``; ``POST /classify`` (and ``/v1/classify``) answers items
``{"index", "label", "probs", "num_classes"}``. As in vLLM, the head's logits pass
through its activation (sigmoid for one label, softmax for more) unless
``use_activation`` is false. ``input`` is a text, a list of texts, a list of token
ids or a list of such lists. The model is any sequence-classification reward model
preflab scores locally (a ``train-rm`` folder, a hub model in the cache), run
through :class:`~preflab.engine.reward.RewardScorer`, so a served model gives the
numbers the local ``seq-rm`` member gives.

An input longer than the model's context is shortened as the local member shortens it
(:func:`~preflab.engine.reward.clip_ids`: a decoder's keeps its last tokens, an
encoder's ``[CLS] context [SEP] reply [SEP]`` loses the context's oldest tokens
first), never refused: its item says how many tokens it lost (``truncated_tokens``)
and ``usage.truncated_inputs`` counts such inputs, while the rest of the batch is
scored as sent.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from preflab.models.runtime import Runtime
from preflab.serve.errors import bad_request
from preflab.serve.limits import Limits
from preflab.serve.model import Job, context_length

TASKS = (None, "classify", "score", "reward")


def is_reward_model(path: str) -> bool:
    """True when a model folder holds a sequence-classification (reward) model."""
    config = Path(path) / "config.json"
    if not config.exists():
        return False
    data = json.loads(config.read_text())
    archs = data.get("architectures") or []
    return (data.get("model_type") == "preflab_bi_encoder"
            or any("SequenceClassification" in a or "Reward" in a for a in archs))


class RewardModel:
    """The served reward model: a :class:`~preflab.engine.reward.RewardScorer` run whole
    (no prefix sharing: the requests bring whole sequences), its context length and
    its labels."""

    def __init__(self, model: str, runtime: Runtime | None = None,
                 served_name: str | None = None, context: int | None = None,
                 batch: int = 16) -> None:
        from preflab.engine.reward import RewardScorer

        self.scorer = RewardScorer(model, runtime=runtime, prefix_sharing=False)
        self.tokenizer = self.scorer.tokenizer
        self.name = served_name or model
        self.created = int(time.time())
        own = context_length(self.scorer.model, self.tokenizer)  # never past its positions
        self.context = min(context, own) if context and own else (context or own)
        self.batch = batch
        config = self.scorer.model.config
        self.labels = [str((config.id2label or {}).get(i, f"LABEL_{i}"))
                       for i in range(getattr(config, "num_labels", 1))]

    def encode(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.tokenizer(text, add_special_tokens=add_special_tokens,
                              verbose=False)["input_ids"]

    def chat(self, messages: list[dict[str, str]]) -> tuple[list[int], int]:
        """Token ids of a conversation as the local member renders it (the last turn is
        the reply), shortened to the context, and how many tokens that removed."""
        from preflab.engine.reward import reward_input

        turns = tuple((m["role"], m["content"]) for m in messages)
        x = reward_input(self.tokenizer, self.scorer.encoder, turns[:-1], turns[-1][1],
                         self.context or 10**9)
        return x.ids, x.context_cut + x.reply_cut

    def clip(self, ids: list[int]) -> tuple[list[int], int]:
        """`ids` shortened to the context by the local member's rule, and how many tokens
        that removed."""
        from preflab.engine.reward import clip_ids

        if self.context is None:
            return ids, 0
        sep = self.tokenizer.sep_token_id if self.scorer.encoder else None
        return clip_ids(ids, self.context, sep)

    @torch.inference_mode()
    def logits(self, ids: list[list[int]], job: Job | None = None) -> list[list[float]]:
        """The reward output (every column) of each sequence; batches of `batch`
        sequences, the job checked between them."""
        from preflab.engine.reward import strip_pad

        scorer = self.scorer
        out: list[list[float]] = []
        with scorer.runtime.autocast():
            for start in range(0, len(ids), self.batch):
                if job is not None:
                    job.check()
                chunk = ids[start:start + self.batch]
                seqs = chunk if scorer.encoder else [strip_pad(s, scorer.pad_id)
                                                     for s in chunk]
                out.extend(scorer.outputs(seqs).float().cpu().tolist())
        return out


@dataclass(frozen=True)
class PoolPlan:
    """A pooling/classify request checked on arrival."""

    endpoint: str  # "pooling" or "classify"
    inputs: list[Any]  # texts or token-id lists
    messages: list[dict[str, str]] | None
    activation: bool
    add_special_tokens: bool


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value)


def parse_pool(endpoint: str, body: dict[str, Any]) -> PoolPlan:
    """A ``/pooling`` or ``/classify`` request, checked (400 naming the field)."""
    task = body.get("task")
    if task not in TASKS:
        raise bad_request(f"'task' {task!r} is not served here: this server serves a "
                          "sequence-classification reward model (task 'classify')", "task")
    activation = body.get("use_activation")
    if activation is not None and not isinstance(activation, bool):
        raise bad_request("'use_activation' must be true, false or null", "use_activation")
    special = body.get("add_special_tokens", True)
    if not isinstance(special, bool):
        raise bad_request("'add_special_tokens' must be true or false", "add_special_tokens")
    messages = body.get("messages")
    if messages is not None:
        if not (isinstance(messages, list) and messages and all(
                isinstance(m, dict) and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str) for m in messages)):
            raise bad_request("'messages' must be a non-empty list of {role, content} "
                              "with string values", "messages")
        return PoolPlan(endpoint, [], messages, activation is not False, special)
    raw = body.get("input")
    if isinstance(raw, str) or _is_ids(raw):
        inputs: list[Any] = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, str) or _is_ids(x) for x in raw):
        inputs = list(raw)
    else:
        raise bad_request("'input' must be a text, a list of texts, a list of token ids or "
                          "a list of such lists (or give 'messages')", "input")
    return PoolPlan(endpoint, inputs, None, activation is not False, special)


def answer_pool(model: RewardModel, limits: Limits, plan: PoolPlan,
                job: Job | None = None) -> dict[str, Any]:
    """Tokenize, shorten what is over the context, check against the batch limit,
    score, and build the reply (on the model thread)."""
    cuts: list[int] | None = None  # tokens each input lost to the context
    if plan.messages is not None:
        seq, cut = model.chat(plan.messages)
        ids, cuts = [seq], [cut]
    else:
        ids = [x if isinstance(x, list) else model.encode(x, plan.add_special_tokens)
               for x in plan.inputs]
    vocab = len(model.tokenizer)
    for j, seq in enumerate(ids):
        if not seq:
            raise bad_request(f"input {j} is empty", "input")
        if max(seq) >= vocab or min(seq) < 0:
            raise bad_request(f"input {j} has token ids outside the vocabulary (0..{vocab - 1})",
                              "input")
    if cuts is None:
        clipped = [model.clip(seq) for seq in ids]
        ids, cuts = [c[0] for c in clipped], [c[1] for c in clipped]
    if len(ids) * max(len(s) for s in ids) > limits.max_batch_tokens:
        raise bad_request(f"{len(ids)} inputs x {max(len(s) for s in ids)} tokens is over "
                          f"this server's limit of {limits.max_batch_tokens} "
                          "(--max-batch-tokens); send fewer at a time", "input")
    values = model.logits(ids, job)
    if plan.activation:
        t = torch.tensor(values)
        values = (torch.sigmoid(t) if t.shape[1] == 1 else torch.softmax(t, dim=1)).tolist()
    tokens = sum(len(s) for s in ids)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0,
             "truncated_inputs": sum(c > 0 for c in cuts)}
    created = int(time.time())
    cut = [{"truncated_tokens": c} if c else {} for c in cuts]
    if plan.endpoint == "classify":
        data = [{"index": i, "label": model.labels[max(range(len(v)), key=v.__getitem__)],
                 "probs": v, "num_classes": len(v), **cut[i]} for i, v in enumerate(values)]
        return {"id": f"classify-{uuid.uuid4().hex}", "object": "list", "created": created,
                "model": model.name, "data": data, "usage": usage}
    data = [{"index": i, "object": "pooling", "data": v, **cut[i]}
            for i, v in enumerate(values)]
    return {"id": f"pool-{uuid.uuid4().hex}", "object": "list", "created": created,
            "model": model.name, "data": data, "usage": usage}
