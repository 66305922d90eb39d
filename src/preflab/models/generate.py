"""Batched decoding after a shared head: chain-of-thought rationales for the judge.

Every prompt starts with the judge's :class:`~preflab.models.forward.Head` (its
preamble and exemplars), whose KV cache is computed once; each batch copies it,
runs the rest of its prompts left-padded, then decodes step by step. Each row
draws its tokens from its own seeded generator, so a sampled rationale does not
depend on which rows share its batch (greedy when `temperature` is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from preflab.models.forward import Head, extend_prefix, select_rows


@dataclass(frozen=True)
class Sampling:
    """How rationales are drawn: greedy when `temperature` is 0."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"temperature must be >= 0 and top_p in (0, 1], got "
                             f"{self.temperature} and {self.top_p}")


def stop_token_ids(tokenizer: Any, model: torch.nn.Module) -> set[int]:
    """Tokens that end a generation: the end of sequence and the end of a chat turn."""
    ids: set[int] = set()
    eos = model.generation_config.eos_token_id
    ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for name in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
        i = tokenizer.convert_tokens_to_ids(name)
        if isinstance(i, int) and i != tokenizer.unk_token_id:
            ids.add(i)
    return ids


def _pick(logits: torch.Tensor, sampling: Sampling, generators: Sequence[torch.Generator]
          ) -> torch.Tensor:
    if sampling.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > sampling.top_p
        sorted_p[drop] = 0
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return torch.stack([torch.multinomial(probs[r], 1, generator=g)[0]
                        for r, g in enumerate(generators)])


@torch.inference_mode()
def decode(model: torch.nn.Module, head: Head | None, rests: Sequence[list[int]],
           seeds: Sequence[int], sampling: Sampling, stop_ids: set[int], pad_id: int,
           return_logprobs: bool = False, copies: int = 1) -> Any:
    """New token ids for each prompt (`head` + rest), stopping at `stop_ids` (left out).

    With `copies` > 1 each prompt runs once and `copies` continuations are decoded
    against copies of its KV cache: one result per (prompt, copy), prompt-major, and
    one seed each. Rows that have stopped leave the batch once a quarter of it has.

    With `return_logprobs`: (ids with the stop token kept, and per token the log-probs
    of the model's raw distribution over the vocabulary at that step).
    """
    backbone, lm_head = model.base_model, model.get_output_embeddings()
    device = next(model.parameters()).device
    n = len(rests) * copies
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {len(rests)} prompts x {copies} copies")
    offset = len(head.ids) if head is not None else 0
    cache = None
    if head is not None:
        cache = select_rows(head.cache, torch.zeros(len(rests), dtype=torch.long,
                                                    device=device))
    if any(len(r) == 0 for r in rests):
        raise ValueError("every prompt needs at least one token after the head")
    cache, mask, last = extend_prefix(backbone, cache, offset, [list(r) for r in rests], pad_id,
                                device, want_last=True)
    positions = torch.tensor([offset + len(r) for r in rests], device=device)
    if copies > 1:
        cache.batch_repeat_interleave(copies)
        mask, last, positions = (t.repeat_interleave(copies, 0) for t in (mask, last, positions))
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    out: list[list[int]] = [[] for _ in range(n)]
    logps: list[list[torch.Tensor]] = [[] for _ in range(n)]
    active = list(range(n))  # the original row of each batch row
    for step in range(sampling.max_new_tokens):
        logits = lm_head(last).float()
        tokens = _pick(logits, sampling, generators).tolist()
        logp = torch.log_softmax(logits, dim=-1) if return_logprobs else None
        keep = []
        for b, (r, t) in enumerate(zip(active, tokens, strict=True)):
            if r < 0:  # stopped earlier, still in the batch
                continue
            if logp is not None:
                logps[r].append(logp[b])
            if t in stop_ids:
                if return_logprobs:
                    out[r].append(t)
            else:
                out[r].append(t)
                keep.append(b)
        if not keep or step == sampling.max_new_tokens - 1:
            break
        token = torch.tensor(tokens, device=device)
        if len(keep) <= 0.75 * len(active):  # drop the rows that stopped (and dead ones)
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            mask, last, positions, token = (t[rows] for t in (mask, last, positions, token))
            active = [active[b] for b in keep]
            generators = [generators[b] for b in keep]
        elif len(keep) < len(active):  # finished rows run on (their tokens are ignored)
            kept = set(keep)
            active = [r if b in kept else -1 for b, r in enumerate(active)]
        mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)],
                         dim=1)
        result = backbone(input_ids=token[:, None], attention_mask=mask,
                          position_ids=positions[:, None], past_key_values=cache, use_cache=True)
        cache, last = result.past_key_values, result.last_hidden_state[:, -1]
        positions = positions + 1
    return (out, logps) if return_logprobs else out
