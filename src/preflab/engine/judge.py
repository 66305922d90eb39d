"""Pairwise LLM judge: P(reply 1 is better) from the log-probs of "1" and "2".

Each unit is one order of one pair: (context, reply A, reply B), optionally with a
rationale. The preamble and exemplars, the same in every prompt, run once per
scorer and their KV cache is reused for every pair (``share_prefix="run"``); both
orders of a pair share the conversation, which runs once per pair; only the last
position goes through the LM head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import torch

from preflab.data.messages import Messages, text_hash
from preflab.engine.label_prompt import LabelPrompt, load_template
from preflab.engine.label_tokens import label_logprobs, label_token_ids
from preflab.engine.units import Unit
from preflab.models.chat import plain_context
from preflab.models.forward import (
    Head,
    PrefixSharing,
    Shared,
    common_prefix_len,
    head_cache,
    last_hidden_states,
    split_shared_prefix,
)
from preflab.models.generate import Sampling, decode, stop_token_ids
from preflab.models.runtime import (
    Runtime,
    fingerprint,
    load_scoring_lm,
    model_fingerprint,
    within_context,
)

T = TypeVar("T")

BASE_PREAMBLE = (
    "You are an expert rater of AI assistant replies. Read the conversation and the two "
    "possible next replies of the assistant, then say which reply is better: more helpful, "
    "honest and harmless. Answer with 1 or 2."
)


def audit_prompt(preamble: str = BASE_PREAMBLE) -> LabelPrompt:
    """The audit committee's judge prompt: the helpful template with its own preamble."""
    template = {**load_template("helpful"), "base": preamble}
    return LabelPrompt("helpful", "base", (), template)


def judge_unit(context: Messages, a: str, b: str, rationale: str | None = None) -> Unit:
    """One order of a pairwise comparison (after a chain-of-thought `rationale`)."""
    key = text_hash("judge", context, a, b) if rationale is None else \
        text_hash("judge", context, a, b, rationale)
    return Unit(key=key, group=text_hash("context", context), payload=(context, a, b, rationale))


SHARE_PREFIX = ("run", "batch", "off")


def clip_text(tokenizer: Any | None, text: str, max_tokens: int | None) -> tuple[str, bool]:
    """The last `max_tokens` tokens of `text` (marked with "…"), and whether it was
    clipped; unclipped without a tokenizer or a limit."""
    if max_tokens is None or tokenizer is None:
        return text, False
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text, False
    return "…" + tokenizer.decode(ids[-max_tokens:]), True


MIDDLE = "[...]"  # where a shortened conversation lost its middle
SLACK = 8  # tokens left free where the conversation meets the template (merges)
MIN_CONTEXT = 32  # tokens a conversation keeps when the replies leave no room
EXEMPLAR_CONTEXT = 256  # an exemplar's conversation, when no cap is given
CONTEXT_CLIPPING = ("the first instruction (first paragraph of the first user turn) and the "
                    f"most recent tokens; the middle replaced by {MIDDLE}")


def instruction(context: Messages | str) -> str:
    """The task a conversation sets: the first paragraph of its first user turn, as a
    judge reads it (``Human: Summarize the following content.``)."""
    if isinstance(context, str):
        return context.lstrip().split("\n\n", 1)[0]
    for role, content in context:
        if role == "user":
            return plain_context(((role, content.strip().split("\n\n", 1)[0]),))
    return ""


def keep_instruction(tokenizer: Any, context: Messages | str, budget: int
                     ) -> tuple[str, bool]:
    """`context` as text in about `budget` tokens, and whether it was shortened: the
    :func:`instruction` (its first line, or its start, when it alone takes over half
    the budget), :data:`MIDDLE`, then the most recent tokens."""
    text = context if isinstance(context, str) else plain_context(context)

    def ids(t: str) -> list[int]:
        return tokenizer(t, add_special_tokens=False)["input_ids"]

    full = ids(text)
    if len(full) <= budget:
        return text, False
    task = instruction(context)
    if len(ids(task)) > budget // 2:
        task = task.split("\n", 1)[0]
    if len(task_ids := ids(task)) > budget // 2:
        task = tokenizer.decode(task_ids[:budget // 2]) + "…"
    sep = f"\n\n{MIDDLE} "
    keep = budget - len(ids(task + sep))
    if not task.strip() or keep < 1:
        return clip_text(tokenizer, text, budget)
    return task + sep + tokenizer.decode(full[-keep:]).lstrip(), True


class ShortenedPrompts:
    """What a scorer that reads prompts counts of their shortening: ``truncated`` (prompts
    over ``max_length``, cut to their end), ``context_truncated`` (conversations clipped
    to their budget) and ``truncated_keys``, the units either happened to (the keys the
    engine counts and caches as shortened)."""

    truncated: int
    context_truncated: int
    truncated_keys: set[str]

    def noting_cuts(self, unit: Unit, encode: Callable[..., T]) -> T:
        """``encode(*unit.payload)``; the unit's key kept in ``truncated_keys`` when that
        shortened its prompt or its conversation (either count went up)."""
        before = self.truncated + self.context_truncated
        out = encode(*unit.payload)
        if self.truncated + self.context_truncated > before:
            self.truncated_keys.add(unit.key)
        return out


class JudgeReader(ShortenedPrompts):
    """What a judge reads, as text or token ids: the prompt (preamble, exemplars, the
    sample with its conversation shortened to fit), through the tokenizer's chat
    template when it has one, up to the ending (or, for chain of thought, up to the
    rationale). Shared by the local and HTTP judges.

    With `keep_task` (the labeler's choice) a conversation gets what the prompt leaves
    of `max_length` once the template, the replies and the ending are in, at most
    `max_context_tokens` when that is set; a longer one keeps its first instruction
    and its most recent tokens (:func:`keep_instruction`). Without it (the default,
    the audit's judges: their cached scores stay valid) it keeps its last
    `max_context_tokens`. Without a tokenizer (an HTTP judge whose tokenizer cannot
    be loaded) the prompt is plain text and nothing is shortened.
    """

    def __init__(self, tokenizer: Any | None, prompt: LabelPrompt, max_length: int = 2048,
                 max_context_tokens: int | None = 256, keep_task: bool = False) -> None:
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.max_length = max_length
        self.max_context_tokens = max_context_tokens
        self.keep_task = keep_task
        self.truncated = 0
        self.context_truncated = 0
        self.truncated_keys: set[str] = set()  # units whose prompt was shortened
        self.prompt_tokens = 0  # tokens of the prompts judged or explained (not cached)
        self.generated_tokens = 0  # tokens of rationales
        self._head_ids: list[int] | None = None
        self._fixed: dict[tuple[bool, bool], int] = {}  # template tokens, by (cot, rationale)
        # the exemplars' conversations shortened as the samples' are
        cap = max_context_tokens if max_context_tokens is not None or not keep_task \
            else EXEMPLAR_CONTEXT
        self.reading = replace(prompt, exemplars=tuple(
            replace(e, context=self._clip(e.context, cap)[0]) for e in prompt.exemplars))

    def _clip(self, context: Messages | str, budget: int | None) -> tuple[str, bool]:
        if self.keep_task and budget is not None and self.tokenizer is not None:
            return keep_instruction(self.tokenizer, context, budget)
        text = context if isinstance(context, str) else plain_context(context)
        return clip_text(self.tokenizer, text, budget)

    def _ids(self, text: str) -> list[int]:
        tok = self.tokenizer
        return tok(text, add_special_tokens=not tok.chat_template)["input_ids"]

    def context_budget(self, a: str, b: str, rationale: str | None = None,
                       cot: bool = False) -> int | None:
        """Tokens the conversation may take beside replies `a` and `b` (see the class)."""
        if not self.keep_task or self.tokenizer is None:
            return self.max_context_tokens
        key = (cot, rationale is not None)
        if key not in self._fixed:
            empty = self._render("", "", "", None if rationale is None else "", cot)
            self._fixed[key] = len(self._ids(empty))
        used = sum(len(self.tokenizer(t, add_special_tokens=False)["input_ids"])
                   for t in (a, b, rationale or ""))
        room = max(self.max_length - self._fixed[key] - used - SLACK, MIN_CONTEXT)
        return room if self.max_context_tokens is None else min(room, self.max_context_tokens)

    def conversation(self, context: Messages, a: str = "", b: str = "",
                     rationale: str | None = None, cot: bool = False) -> str:
        """The conversation as the judge reads it beside `a` and `b`: shortened to
        :meth:`context_budget` tokens (counted in `context_truncated`)."""
        text, clipped = self._clip(context, self.context_budget(a, b, rationale, cot))
        self.context_truncated += clipped
        return text

    def _render(self, conversation: str, a: str, b: str, rationale: str | None,
                cot: bool) -> str:
        body = self.reading.user_text(conversation, a, b)
        answer = self.reading.cot_ending if cot else self.reading.answer_prefix(rationale)
        tok = self.tokenizer
        if tok is not None and tok.chat_template:
            return tok.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                           add_generation_prompt=True) + answer
        return body + "\n\n" + answer

    def prompt_text(self, context: Messages, a: str, b: str, rationale: str | None = None,
                    cot: bool = False) -> str:
        """The prompt as text: up to the ending (after `rationale` when given), or with
        `cot` up to the chain-of-thought ending, where the rationale starts."""
        return self._render(self.conversation(context, a, b, rationale, cot), a, b, rationale,
                            cot)

    def prompt_ids(self, context: Messages, a: str, b: str, rationale: str | None = None,
                   cot: bool = False) -> list[int]:
        """:meth:`prompt_text` as token ids; a prompt over `max_length` keeps its end."""
        if self.tokenizer is None:
            raise ValueError("this judge has no tokenizer; use prompt_text")
        ids = self._ids(self.prompt_text(context, a, b, rationale, cot))
        if len(ids) > self.max_length:  # keep the preamble's end and the replies
            self.truncated += 1
            ids = ids[-self.max_length:]
        return ids

    def head_ids(self) -> list[int]:
        """The tokens every prompt starts with: those two unlike prompts share, less one
        (so a tokenizer that merges across the boundary cannot break the split)."""
        if self._head_ids is None:
            a = self.prompt_ids((("user", "Hi."),), "A", "B")
            b = self.prompt_ids((("user", "What is 2+3?\n"),), "5", "Six")
            self._head_ids = a[:max(common_prefix_len(a, b) - 1, 0)]
        return self._head_ids

    @property
    def truncation(self) -> str:
        """The rule this reader shortens prompts by, in words."""
        cap = "" if self.max_context_tokens is None else f", at most {self.max_context_tokens}"
        context = (f"the conversation keeps {CONTEXT_CLIPPING} (what the prompt leaves{cap})"
                   if self.keep_task and self.tokenizer is not None else
                   f"the conversation keeps its last {self.max_context_tokens} tokens")
        return f"{context}; a prompt over {self.max_length} tokens keeps its end"

    def prompt_fingerprint(self) -> list[Any]:
        """What of the prompt a fingerprint needs beyond its head and ending. The audit's
        prompt adds nothing, so its cached scores stay valid."""
        p = self.prompt
        if p.template != audit_prompt(p.template["base"]).template or p.exemplars \
                or p.preamble != "base":
            return [text_hash(p.template, p.preamble, [e.__dict__ for e in self.reading.exemplars])]
        return []


class JudgeScorer(JudgeReader, PrefixSharing):
    """Scores (context, A, B) units: the value is [log P(label 1), log P(label 2)], each
    label's probability totalled over its spellings (:mod:`preflab.engine.label_tokens`).

    `prompt` is what the judge reads (:class:`~preflab.engine.label_prompt.LabelPrompt`);
    the default is the audit's (:func:`audit_prompt` with `preamble`).
    `share_prefix` says how the tokens every prompt starts with are reused: ``run``
    computes them once per scorer, ``batch`` once per batch, ``off`` never (every
    pair's prompt runs whole; the two orders of a pair still share theirs). The
    scores agree up to float rounding, so they share one fingerprint. `keep_task`
    (the labeler's) shortens conversations as :class:`JudgeReader` says; the
    default keeps the audit's clipping (the last `max_context_tokens`).
    """

    def __init__(self, model: str, name: str | None = None, preamble: str = BASE_PREAMBLE,
                 max_length: int = 2048, max_context_tokens: int | None = 256,
                 runtime: Runtime | None = None, prompt: LabelPrompt | None = None,
                 share_prefix: str = "run", keep_task: bool = False) -> None:
        if share_prefix not in SHARE_PREFIX:
            raise ValueError(f"share_prefix must be one of {SHARE_PREFIX}, got {share_prefix!r}")
        self.share_prefix = share_prefix
        self._head: Head | None = None
        self.runtime, resolved, tokenizer, self.model = load_scoring_lm(model, runtime)
        max_length = within_context(max_length, self.model, tokenizer)
        super().__init__(tokenizer, prompt or audit_prompt(preamble), max_length,
                         max_context_tokens, keep_task)
        self.backbone = self.model.base_model
        self.lm_head = self.model.get_output_embeddings()
        self.label_ids = label_token_ids(self.tokenizer, self.prompt.ending)
        self.name = name or f"judge:{model}"
        extra = self.prompt_fingerprint() + (["keep-task"] if keep_task else [])
        if any(len(v) > 1 for v in self.label_ids):
            extra.append(self.label_ids)
        self.fingerprint = fingerprint("judge", model_fingerprint(model, resolved),
                                       self.prompt.head, self.prompt.ending, max_length,
                                       max_context_tokens, self.runtime.precision, *extra)

    def head(self) -> Head:
        """The KV cache of :meth:`head_ids`, computed on first use."""
        if self._head is None:
            with self.runtime.autocast():
                self._head = head_cache(self.backbone, self.head_ids())
        return self._head

    def stop_ids(self) -> set[int]:
        return stop_token_ids(self.tokenizer, self.model)

    def generate(self, prompts: Sequence[tuple[Messages, str, str]], seeds: Sequence[int],
                 sampling: Sampling) -> list[str]:
        """A rationale for each (context, A, B), read after the chain-of-thought ending;
        one batch (the caller chunks). Row `i` samples with `seeds[i]`."""
        full = [self.prompt_ids(*p, cot=True) for p in prompts]
        head = self.head_ids() if self.share_prefix == "run" else []
        use_head = len(head) >= 8 and all(len(f) > len(head) and f[:len(head)] == head
                                          for f in full)
        with self.runtime.autocast():
            new = decode(self.model, self.head() if use_head else None,
                         [f[len(head):] if use_head else f for f in full], seeds, sampling,
                         self.stop_ids(), self.tokenizer.pad_token_id)
        self.prompt_tokens += sum(len(f) for f in full)
        self.generated_tokens += sum(len(t) for t in new)
        return [self.tokenizer.decode(t, skip_special_tokens=True).strip() for t in new]

    def encode(self, units: list[Unit]) -> Shared:
        full = [self.noting_cuts(u, self.prompt_ids) for u in units]
        self.prompt_tokens += sum(len(f) for f in full)
        prefix, suffixes = split_shared_prefix(full)
        if self.share_prefix == "run":
            head = self.head_ids()
            if len(head) >= 8 and len(prefix) > len(head) and prefix[:len(head)] == head:
                return Shared(prefix[len(head):], suffixes, head=True)
        return Shared(prefix, suffixes)

    @torch.inference_mode()
    def run(self, items: list[Shared]) -> list[np.ndarray]:
        head = self.head() if any(i.head for i in items) else None
        min_common = 1 << 30 if self.share_prefix == "off" else 8
        order, parts = [], []
        with self.runtime.autocast():
            for with_head in (True, False):
                picked = [j for j, i in enumerate(items) if i.head == with_head]
                if not picked:
                    continue
                parts.append(last_hidden_states(
                    self.backbone, [(items[j].prefix, items[j].suffixes) for j in picked],
                    self.tokenizer.pad_token_id, min_common=min_common,
                    head=head if with_head else None))
                order += [(j, k) for j in picked for k in range(len(items[j].suffixes))]
            hidden = torch.cat(parts)
            # back to the order of the items and of the units inside them
            rank = {jk: r for r, jk in enumerate(order)}
            hidden = hidden[[rank[(j, k)] for j, i in enumerate(items)
                             for k in range(len(i.suffixes))]]
            logits = self.lm_head(hidden).float()
        logp = torch.log_softmax(logits, dim=-1).cpu().numpy()
        return list(label_logprobs(logp, self.label_ids).astype(np.float32))


def p_first(logp: np.ndarray) -> np.ndarray:
    """P(label 1) renormalised over the two labels, from [..., 2] log-probs."""
    logp = np.asarray(logp, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(logp[..., 1] - logp[..., 0]))
