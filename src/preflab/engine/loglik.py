"""Log-likelihood of a reply under a causal LM, with and without its context.

The value of a (context, reply) unit is [sum log p(reply tokens | context),
number of reply tokens]. An empty context gives the reply's unconditional
likelihood (an empty reply alone has no tokens: [0, 0]); the two together give the
instruction-following difficulty IFD(x, y) = PPL(y | x) / PPL(y) (Li et al. 2024)
used by the ``ifd`` member.
With context, the reply is the assistant's turn of the chat template; alone, it
is the reply's plain tokens after the start token.
"""

from __future__ import annotations

import numpy as np
import torch

from preflab.engine.units import Unit
from preflab.models.chat import chat_ids
from preflab.models.runtime import (
    Runtime,
    fingerprint,
    load_scoring_lm,
    model_context,
    model_fingerprint,
)


class LoglikScorer:
    """Scores (context, reply) units: [sum of reply-token log-probs, reply tokens].

    The context keeps its last `max_context_tokens` tokens and the reply its first
    `max_reply_tokens`; when the two together are more than the model's context, the
    context gives up its oldest tokens first (then the reply its last). Both
    truncations are counted, and the unit's key kept in ``truncated_keys``.
    """

    def __init__(self, model: str, name: str | None = None, max_context_tokens: int = 256,
                 max_reply_tokens: int = 256, runtime: Runtime | None = None) -> None:
        self.runtime, resolved, self.tokenizer, self.model = load_scoring_lm(model, runtime)
        self.max_context_tokens = max_context_tokens
        self.max_reply_tokens = max_reply_tokens
        self.context = model_context(self.model, self.tokenizer)
        binds = self.context is not None and self.context < max_context_tokens + max_reply_tokens
        self.truncated = 0
        self.truncated_keys: set[str] = set()
        self.truncation = (f"the context keeps its last {max_context_tokens} tokens, the reply "
                           f"its first {max_reply_tokens}"
                           + (f"; together at most the model's {self.context}" if binds else ""))
        self.name = name or f"loglik:{model}"
        self.fingerprint = fingerprint("loglik", model_fingerprint(model, resolved),
                                       max_context_tokens, max_reply_tokens,
                                       self.runtime.precision,
                                       *([self.context] if binds else []))

    def _split(self, unit: Unit) -> tuple[list[int], list[int]]:
        """(context ids, reply ids), shortened to fit (see the class)."""
        prompt, target, cut = self._full_split(unit)
        if self.context is not None and len(prompt) + len(target) > self.context:
            target = target[:self.context - 1]
            prompt = prompt[-(self.context - len(target)):]
            cut = True
        if cut:
            self.truncated += 1
            self.truncated_keys.add(unit.key)
        return prompt, target

    def _full_split(self, unit: Unit) -> tuple[list[int], list[int], bool]:
        """The templated prompt (its last `max_context_tokens`) and the reply's tokens
        after it (its first `max_reply_tokens`), and whether either was cut."""
        context, reply = unit.payload
        start = self.tokenizer.bos_token_id
        start = self.tokenizer.eos_token_id if start is None else start
        if not context:  # the reply alone: its plain tokens after a start token
            ids = self.tokenizer(reply, add_special_tokens=False, verbose=False)["input_ids"]
            return [start], ids[:self.max_reply_tokens], len(ids) > self.max_reply_tokens
        head = chat_ids(self.tokenizer, context, None)
        full = chat_ids(self.tokenizer, context, reply)
        n = 0
        while n < min(len(head), len(full)) and head[n] == full[n]:
            n += 1
        n = min(n, len(full) - 1)
        prompt, target = full[:n], full[n:]
        cut = len(prompt) > self.max_context_tokens or len(target) > self.max_reply_tokens
        keep = prompt[-self.max_context_tokens:] if self.max_context_tokens else []
        return keep or [start], target[:self.max_reply_tokens], cut

    def encode(self, units: list[Unit]) -> list[tuple[list[int], list[int]]]:
        return [self._split(u) for u in units]

    def sort_key(self, item: list[tuple[list[int], list[int]]]) -> tuple[int, ...]:
        return (max(len(p) + len(t) for p, t in item),)

    def cost(self, items: list[list[tuple[list[int], list[int]]]]) -> tuple[int, int]:
        lens = [len(p) + len(t) for item in items for p, t in item]
        return len(lens) * max(lens), sum(lens)

    @staticmethod
    def _target_logp(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits.gather(1, targets[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)

    @torch.inference_mode()
    def run(self, items: list[list[tuple[list[int], list[int]]]]) -> list[np.ndarray]:
        seqs = [pt for item in items for pt in item]
        dev = self.runtime.torch_device()
        width = max(len(p) + len(t) for p, t in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long, device=dev)
        mask = torch.zeros_like(ids)
        for j, (p, t) in enumerate(seqs):
            ids[j, :len(p) + len(t)] = torch.tensor(p + t)
            mask[j, :len(p) + len(t)] = 1
        with self.runtime.autocast():
            hidden = self.model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
            # Only the positions that predict a reply token go through the LM head.
            rows = torch.tensor([j for j, (p, t) in enumerate(seqs) for _ in t],
                                dtype=torch.long, device=dev)
            cols = torch.tensor([len(p) - 1 + i for p, t in seqs for i in range(len(t))],
                                dtype=torch.long, device=dev)
            if not len(rows):  # only empty replies in this batch: nothing to predict
                return [np.array([0.0, 0]) for _ in seqs]
            targets = ids[rows, cols + 1]
            head = self.model.get_output_embeddings()
            # In slices of positions: a [positions, vocab] logit matrix for a whole batch
            # would take gigabytes (SmolLM2's vocabulary is 49k).
            token_logp = torch.cat([
                self._target_logp(head(hidden[rows[k:k + 256], cols[k:k + 256]]).float(),
                                  targets[k:k + 256])
                for k in range(0, len(rows), 256)])
        sums = torch.zeros(len(seqs), device=dev).index_add_(0, rows, token_logp)
        return [np.array([float(sums[j]), len(t)]) for j, (_, t) in enumerate(seqs)]
