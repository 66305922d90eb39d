"""Pairs -> token ids for policy training (SFT, DPO), with the prompt shared.

Each pair becomes the chat-templated prompt ids (ending with the generation
header) and the ids of each reply as the assistant's turn (its end-of-turn tokens
included), split where the tokenized prompt and prompt+reply diverge. When the
chosen and rejected replies answer different contexts, only their common prefix is
shared and the rest of each context rides along with its reply, without loss.

Too-long sequences lose their oldest context tokens first (the same number on both
sides, so the prefix stays shared); a reply that does not fit alone is cut at its
end. Both are counted in the :class:`PolicyReport`, never silent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from preflab.data.messages import as_messages
from preflab.data.pair import PreferencePair
from preflab.errors import PairError
from preflab.models.chat import chat_ids
from preflab.models.forward import common_prefix_len


@dataclass
class PolicyExample:
    """One pair for policy training: a shared prefix and, per side, the tokens that
    follow it (`*_ids`), of which the last `*_n` are the reply (the loss tokens)."""

    id: str
    prefix: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    chosen_n: int
    rejected_n: int
    p_chosen: float = 1.0
    subset: str | None = None
    ref_chosen: float | None = None  # reference log-probs, filled before DPO
    ref_rejected: float | None = None
    context_truncated: bool = False  # the context lost its oldest tokens

    @property
    def tokens(self) -> int:
        """Tokens of prompt+chosen and prompt+rejected, as two separate sequences."""
        return 2 * len(self.prefix) + len(self.chosen_ids) + len(self.rejected_ids)


@dataclass
class PolicyReport:
    """What tokenization did (written into the training summary)."""

    n_pairs: int = 0
    context_truncated: int = 0  # pairs whose context lost its oldest tokens
    reply_truncated: int = 0  # replies cut at the end: they do not fit max_length alone
    max_tokens: int = 0
    mean_prefix: float = 0.0
    mean_reply: float = 0.0
    subsets: dict[str, int] = field(default_factory=dict)


def _split(tokenizer: Any, context: Any, reply: str) -> tuple[list[int], list[int]]:
    """(prompt ids, reply ids) with prompt+reply the templated conversation."""
    prompt = chat_ids(tokenizer, context, None)
    full = chat_ids(tokenizer, context, reply)
    n = common_prefix_len(prompt, full)
    return full[:n], full[n:]


def _side(rest: list[int], reply: list[int], room: int, report: PolicyReport
          ) -> tuple[list[int], int]:
    """The continuation after the shared prefix (rest of the context + reply), the reply
    cut at its end when it does not fit `room`."""
    keep = max(1, room - len(rest))
    if len(reply) > keep:
        report.reply_truncated += 1
        reply = reply[:keep]
    return rest + reply, len(reply)


def build_policy_examples(pairs: list[PreferencePair], tokenizer: Any, max_length: int,
                          source: str = "<pairs>", with_rejected: bool = True,
                          lines: list[int] | None = None
                          ) -> tuple[list[PolicyExample], PolicyReport]:
    """Tokenize pairs for SFT (`with_rejected=False`: the chosen side only) or DPO.
    `lines`: each pair's number in `source` for error messages (default: its position).

    Raises:
        PairError: a reply with no tokens, or chosen and rejected that become
            identical after truncation.
    """
    if max_length < 8:
        raise ValueError(f"max_length must be at least 8, got {max_length}")
    report = PolicyReport(n_pairs=len(pairs))
    examples = []
    prefix_total = reply_total = 0
    for i, pair in enumerate(pairs):
        where = (source, lines[i] if lines is not None else i + 1)
        c_prompt, c_reply = _split(tokenizer, as_messages(pair.prompt), pair.chosen)
        if with_rejected:
            r_prompt, r_reply = _split(tokenizer, as_messages(pair.rejected_context),
                                       pair.rejected)
        else:
            r_prompt, r_reply = c_prompt, []
        sides = [("chosen", c_reply), ("rejected", r_reply)][:1 + with_rejected]
        for name, reply in sides:
            if not reply:
                raise PairError(*where, name, "the reply has no tokens after the prompt",
                                unit="pair")
        shared = min(common_prefix_len(c_prompt, r_prompt), len(c_prompt), len(r_prompt))
        if shared == 0:  # the prefix's last token predicts each reply's first one
            raise PairError(*where, "rejected_prompt", "the chosen and rejected contexts "
                            "share no first token; give them a common start (e.g. a "
                            "tokenizer that adds a BOS token)", unit="pair")
        longest = max(len(c_prompt) + len(c_reply), len(r_prompt) + len(r_reply))
        over = max(0, longest - max_length)
        cut_context = min(over, shared - 1)  # the oldest shared tokens go first
        if cut_context:
            report.context_truncated += 1
        room = max_length - (shared - cut_context)

        if max(len(c_prompt), len(r_prompt)) - shared >= room:
            raise PairError(*where, "rejected_prompt", "the chosen and rejected contexts "
                            f"differ in more than --max-length {max_length} tokens",
                            unit="pair")
        chosen_ids, chosen_n = _side(c_prompt[shared:], c_reply, room, report)
        rejected_ids, rejected_n = (_side(r_prompt[shared:], r_reply, room, report)
                                    if with_rejected else ([], 0))
        if with_rejected and chosen_ids == rejected_ids:
            raise PairError(*where, "rejected", "chosen and rejected are identical after "
                            f"truncation to {max_length} tokens; raise --max-length",
                            unit="pair")
        prefix = c_prompt[cut_context:shared]
        total = len(prefix) + max(len(chosen_ids), len(rejected_ids))
        report.max_tokens = max(report.max_tokens, total)
        prefix_total += len(prefix)
        reply_total += chosen_n + rejected_n
        examples.append(PolicyExample(pair.id, prefix, chosen_ids, rejected_ids, chosen_n,
                                      rejected_n, pair.p_chosen, pair.subset,
                                      context_truncated=bool(cut_context)))
    n = max(1, len(examples))
    report.mean_prefix = round(prefix_total / n, 1)
    report.mean_reply = round(reply_total / n / (2 if with_rejected else 1), 1)
    report.subsets = dict(Counter(p.subset or "" for p in pairs))
    return examples, report
