"""Pairwise LLM judge: P(reply 1 is better) from the log-probs of "1" and "2".

Each unit is one order of one pair: (context, reply A, reply B). Both orders of a
pair share the templated preamble and conversation, which run once per group
(prefix sharing); only the last position goes through the LM head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from preflab.engine.forward import (
    PrefixSharing,
    Shared,
    last_hidden_states,
    split_shared_prefix,
)
from preflab.engine.label_tokens import label_logprobs, label_token_ids
from preflab.engine.models import Runtime, fingerprint, load_scoring_lm, model_fingerprint
from preflab.engine.prompts import LabelPrompt, load_template
from preflab.engine.text import plain_context
from preflab.engine.units import Messages, Unit, text_hash

BASE_PREAMBLE = (
    "You are an expert rater of AI assistant replies. Read the conversation and the two "
    "possible next replies of the assistant, then say which reply is better: more helpful, "
    "honest and harmless. Answer with 1 or 2."
)


def audit_prompt(preamble: str = BASE_PREAMBLE) -> LabelPrompt:
    """The audit committee's judge prompt: the helpful template with its own preamble."""
    template = {**load_template("helpful"), "base": preamble}
    return LabelPrompt("helpful", "base", (), template)


def judge_unit(context: Messages, a: str, b: str) -> Unit:
    """One order of a pairwise comparison."""
    return Unit(key=text_hash("judge", context, a, b), group=text_hash("context", context),
                payload=(context, a, b))


class JudgeScorer(PrefixSharing):
    """Scores (context, A, B) units: the value is [log P(label 1), log P(label 2)], each
    label's probability totalled over its spellings (:mod:`preflab.engine.label_tokens`).

    `prompt` is what the judge reads (:class:`~preflab.engine.prompts.LabelPrompt`);
    the default is the audit's (:func:`audit_prompt` with `preamble`).
    """

    def __init__(self, model: str, name: str | None = None, preamble: str = BASE_PREAMBLE,
                 max_length: int = 2048, max_context_tokens: int | None = 256,
                 runtime: Runtime | None = None, prompt: LabelPrompt | None = None) -> None:
        self.runtime, resolved, self.tokenizer, self.model = load_scoring_lm(model, runtime)
        self.backbone = self.model.base_model
        self.lm_head = self.model.get_output_embeddings()
        self.prompt = prompt or audit_prompt(preamble)
        self.label_ids = label_token_ids(self.tokenizer, self.prompt.ending)
        self.max_length = max_length
        self.max_context_tokens = max_context_tokens
        self.truncated = 0
        self.context_truncated = 0
        self.name = name or f"judge:{model}"
        # The audit's prompt with one token per label keeps the fingerprint it always had
        # (cached scores stay valid); anything else adds what differs.
        extra: list[Any] = []
        if self.prompt.template != audit_prompt(self.prompt.template["base"]).template \
                or self.prompt.exemplars or self.prompt.preamble != "base":
            extra.append(text_hash(self.prompt.template, self.prompt.preamble,
                                   [e.__dict__ for e in self.prompt.exemplars]))
        if any(len(v) > 1 for v in self.label_ids):
            extra.append(self.label_ids)
        self.fingerprint = fingerprint("judge", model_fingerprint(model, resolved),
                                       self.prompt.head, self.prompt.ending, max_length,
                                       max_context_tokens, self.runtime.precision, *extra)

    def conversation(self, context: Messages) -> str:
        """The conversation as the judge reads it: its last `max_context_tokens` tokens."""
        text = plain_context(context)
        if self.max_context_tokens is None:
            return text
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_context_tokens:
            return text
        self.context_truncated += 1
        return "…" + self.tokenizer.decode(ids[-self.max_context_tokens:])

    def prompt_ids(self, context: Messages, a: str, b: str,
                   rationale: str | None = None) -> list[int]:
        """The prompt up to the ending, through the chat template when there is one."""
        body = self.prompt.user_text(self.conversation(context), a, b)
        answer = self.prompt.answer_prefix(rationale)
        tok = self.tokenizer
        if tok.chat_template:
            text = tok.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                           add_generation_prompt=True) + answer
            ids = tok(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tok(body + "\n\n" + answer)["input_ids"]
        if len(ids) > self.max_length:  # keep the preamble's end and the replies
            self.truncated += 1
            ids = ids[-self.max_length:]
        return ids

    def encode(self, units: list[Unit]) -> Shared:
        full = [self.prompt_ids(*u.payload) for u in units]
        prefix, suffixes = split_shared_prefix(full)
        return Shared(prefix, suffixes)

    @torch.inference_mode()
    def run(self, items: list[Shared]) -> list[np.ndarray]:
        with self.runtime.autocast():
            hidden = last_hidden_states(self.backbone, [(i.prefix, i.suffixes) for i in items],
                                        self.tokenizer.pad_token_id)
            logits = self.lm_head(hidden).float()
        logp = torch.log_softmax(logits, dim=-1).cpu().numpy()
        return list(label_logprobs(logp, self.label_ids).astype(np.float32))


def p_first(logp: np.ndarray) -> np.ndarray:
    """P(label 1) renormalised over the two labels, from [..., 2] log-probs."""
    logp = np.asarray(logp, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(logp[..., 1] - logp[..., 0]))
