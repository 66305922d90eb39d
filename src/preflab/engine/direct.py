"""Direct scoring (direct RLAIF): the judge rates one reply from 1 to 10.

The score is the expectation sum_i i * P(i) over the ten labels, rescaled from
[1, 10] to [-1, 1], so it can serve as a reward. Each label's probability is read
after the ending ("Score="): one token for "1".."9"; "10" is one token in some
vocabularies and "1" then "0" in others (SmolLM2, Gemma), where P("10") =
P("1") * P("0" | "1") comes from a second suffix that shares the prompt's forward
pass, and P("1") keeps the rest of the mass of the "1" token.
"""

from __future__ import annotations

import numpy as np
import torch

from preflab.data.messages import Messages, text_hash
from preflab.engine.judge import MIN_CONTEXT, SLACK, ShortenedPrompts, keep_instruction
from preflab.engine.label_prompt import load_template
from preflab.engine.label_tokens import label_logprobs, label_token_ids
from preflab.engine.units import Unit
from preflab.models.forward import PrefixSharing, Shared, last_hidden_states
from preflab.models.runtime import (
    Runtime,
    fingerprint,
    load_scoring_lm,
    model_fingerprint,
    within_context,
)

SCORES = tuple(str(i) for i in range(1, 11))


def direct_unit(context: Messages, reply: str) -> Unit:
    """One reply to rate; a group of its own (its suffixes are its own prompt's)."""
    key = text_hash("direct", context, reply)
    return Unit(key=key, group=key, payload=(context, reply))


def rescale(expected: np.ndarray) -> np.ndarray:
    """An expected 1-10 score on [-1, 1]."""
    return (np.asarray(expected, dtype=np.float64) - 5.5) / 4.5


class DirectScorer(ShortenedPrompts, PrefixSharing):
    """Scores (context, reply) units: the value is the 10 labels' log-probs
    (renormalised over the labels: see :func:`expected_score`)."""

    def __init__(self, model: str, task: str = "helpful", template_file: str | None = None,
                 max_length: int = 2048, max_context_tokens: int | None = 256,
                 runtime: Runtime | None = None, name: str | None = None) -> None:
        self.runtime, resolved, self.tokenizer, self.model = load_scoring_lm(model, runtime)
        self.backbone = self.model.base_model
        self.lm_head = self.model.get_output_embeddings()
        self.template = load_template(task, template_file)
        self.ending = self.template["direct_ending"]
        # one position to spare: a "10" of two tokens reads one past the prompt
        self.max_length = within_context(max_length + 1, self.model, self.tokenizer) - 1
        self.max_context_tokens = max_context_tokens
        self.truncated = 0
        self.context_truncated = 0
        self.truncated_keys: set[str] = set()
        self._fixed: int | None = None  # tokens of the prompt with no conversation, no reply
        tok = self.tokenizer
        self.digit_ids = label_token_ids(tok, self.ending, SCORES[:9])
        ten = tok(self.ending + "10", add_special_tokens=False)["input_ids"]
        base = tok(self.ending, add_special_tokens=False)["input_ids"]
        if ten[:len(base)] == base and len(ten) == len(base) + 1:
            self.ten: tuple[int, ...] | None = (ten[-1],)  # "10" is one token
            self.zero_ids: list[tuple[int, ...]] = []
        else:
            self.ten = None  # "1" then "0": read P("0" | "1") from a second suffix
            self.zero_ids = label_token_ids(tok, self.ending + "1", ("0",))
        # the "1" that the second suffix appends, as the tokenizer writes it after the ending
        self.one_id = tok(self.ending + "1", add_special_tokens=False)["input_ids"][-1]
        self.name = name or f"direct:{model}"
        self.fingerprint = fingerprint("direct", model_fingerprint(model, resolved),
                                       self.template["direct"], self.template["direct_sample"],
                                       self.ending, self.max_length, max_context_tokens,
                                       self.runtime.precision, "keep-task")

    def _render(self, conversation: str, reply: str) -> list[int]:
        tok = self.tokenizer
        body = self.template["direct"] + "\n\n" + self.template["direct_sample"].format(
            conversation=conversation, response=reply)
        if tok.chat_template:
            text = tok.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                           add_generation_prompt=True) + self.ending
            return tok(text, add_special_tokens=False)["input_ids"]
        return tok(body + "\n\n" + self.ending)["input_ids"]

    def context_budget(self, reply: str) -> int:
        """Tokens the conversation may take: what the prompt leaves of `max_length` beside
        `reply`, at most `max_context_tokens` when set."""
        if self._fixed is None:
            self._fixed = len(self._render("", ""))
        used = len(self.tokenizer(reply, add_special_tokens=False)["input_ids"])
        room = max(self.max_length - self._fixed - used - SLACK, MIN_CONTEXT)
        return room if self.max_context_tokens is None else min(room, self.max_context_tokens)

    def prompt_ids(self, context: Messages, reply: str) -> list[int]:
        """The prompt's ids; a long conversation keeps its first instruction and its most
        recent tokens (:func:`~preflab.engine.judge.keep_instruction`)."""
        text, clipped = keep_instruction(self.tokenizer, context, self.context_budget(reply))
        self.context_truncated += clipped
        ids = self._render(text, reply)
        if len(ids) > self.max_length:
            self.truncated += 1
            ids = ids[-self.max_length:]
        return ids

    def encode(self, units: list[Unit]) -> Shared:
        """One group per unit: the prompt, then its last token (and, when "10" is two
        tokens, its last token followed by "1")."""
        if len(units) != 1:
            raise ValueError("direct units are scored one per group")
        ids = self.noting_cuts(units[0], self.prompt_ids)
        suffixes = [ids[-1:]] + ([] if self.ten is not None else [[ids[-1], self.one_id]])
        return Shared(ids[:-1], suffixes)

    @torch.inference_mode()
    def run(self, items: list[Shared]) -> list[np.ndarray]:
        with self.runtime.autocast():
            hidden = last_hidden_states(self.backbone, [(i.prefix, i.suffixes) for i in items],
                                        self.tokenizer.pad_token_id)
            logp = torch.log_softmax(self.lm_head(hidden).float(), dim=-1).cpu().numpy()
        out, row = [], 0
        for _ in items:
            first = logp[row]
            digits = label_logprobs(first, self.digit_ids)  # "1".."9"
            if self.ten is not None:
                ten = label_logprobs(first, [self.ten])[0]
                row += 1
            else:
                after_one = logp[row + 1]
                p_zero = float(np.exp(label_logprobs(after_one, self.zero_ids)[0]))
                ten = digits[0] + np.log(max(p_zero, 1e-30))
                digits[0] = digits[0] + np.log(max(1.0 - p_zero, 1e-30))
                row += 2
            out.append(np.append(digits, ten).astype(np.float32))
        return out


def expected_score(logp: np.ndarray) -> np.ndarray:
    """sum_i i * P(i) over the ten labels (renormalised), from [..., 10] log-probs."""
    x = np.asarray(logp, dtype=np.float64)
    p = np.exp(x - x.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return p @ np.arange(1, 11, dtype=np.float64)
