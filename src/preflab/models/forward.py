"""Decoder forward passes that compute a shared prefix once (prefix sharing).

A group is one prefix (e.g. the chat-templated prompt) and several suffixes (the
replies). The prefixes of a batch run left-padded in one pass that fills the KV
cache; the cache rows are then repeated for each suffix, and the suffixes run
right-padded against it. The result is the hidden state at each suffix's last
token, equal (up to float rounding) to running every prefix+suffix separately.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def split_shared_prefix(sequences: Sequence[Sequence[int]], hint: Sequence[int] | None = None
                        ) -> tuple[list[int], list[list[int]]]:
    """(prefix, suffixes) where every suffix keeps at least one token.

    `hint` (e.g. the prompt with its generation header) bounds the prefix, so the
    split is exact even when a tokenizer merges tokens across the boundary.
    """
    first = list(sequences[0])
    n = len(first) if hint is None else common_prefix_len(first, hint)
    for seq in sequences:
        n = min(n, common_prefix_len(first, seq), len(seq) - 1)
    n = max(n, 0)
    return first[:n], [list(s[n:]) for s in sequences]


@dataclass
class Shared:
    """A group encoded for prefix sharing: one prefix and the suffixes that follow it."""

    prefix: list[int]
    suffixes: list[list[int]]
    head: bool = False  # the prefix comes after the scorer's :class:`Head` (left out here)


class PrefixSharing:
    """Batching methods of scorers whose encoded items are :class:`Shared` groups."""

    def sort_key(self, item: Shared) -> tuple[int, ...]:
        return prefix_sort_key(item.prefix, item.suffixes)

    def cost(self, items: list[Shared]) -> tuple[int, int]:
        return prefix_cost([(i.prefix, i.suffixes) for i in items])


def prefix_sort_key(prefix: Sequence[int], suffixes: Sequence[Sequence[int]]
                    ) -> tuple[int, ...]:
    """Sort groups by prefix length (suffixes are re-batched by length inside a run)."""
    return (len(prefix), max(len(s) for s in suffixes))


def prefix_cost(groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]]
                ) -> tuple[int, int]:
    """(padded, real) tokens of a batch: prefixes padded to the longest, suffixes as run.

    Suffixes are regrouped by length inside :func:`last_hidden_states`, so their
    padding is small and counted as real here.
    """
    width = max(len(p) for p, _ in groups)
    suffix_tokens = sum(len(s) for _, ss in groups for s in ss)
    real = sum(len(p) for p, _ in groups) + suffix_tokens
    return len(groups) * width + suffix_tokens, real


def _batch_common_prefix(prefixes: Sequence[Sequence[int]]) -> int:
    """Length of the prefix all sequences share, leaving each at least one token."""
    if len(prefixes) == 0 or min(len(p) for p in prefixes) < 2:
        return 0
    n = min(len(p) for p in prefixes) - 1
    first = prefixes[0]
    for p in prefixes[1:]:
        n = min(n, common_prefix_len(first[:n], p))
    return n


def select_rows(cache: Any, rows: torch.Tensor) -> Any:
    """A new cache holding the given batch rows (the original stays intact)."""
    picked = copy.copy(cache)
    picked.layers = [copy.copy(layer) for layer in cache.layers]
    picked.batch_select_indices(rows)
    return picked


def _suffix_chunks(lengths: list[int], max_waste: float, max_tokens: int) -> list[list[int]]:
    """Suffix rows sorted by length, chunked so padding stays within `max_waste`."""
    from preflab.models.batching import plan_batches

    return plan_batches(lengths, sort_key=lambda n: (n,),
                        cost=lambda ns: (len(ns) * max(ns), sum(ns)),
                        max_tokens=max_tokens, max_rows=4096, max_waste=max_waste)


@dataclass
class Head:
    """A prefix every prompt of a scorer starts with (a judge's preamble and exemplars),
    with its KV cache computed once (:func:`head_cache`)."""

    ids: list[int]
    cache: Any


@torch.inference_mode()
def head_cache(backbone: torch.nn.Module, ids: list[int]) -> Head:
    """Run `ids` once and keep their KV cache."""
    device = next(backbone.parameters()).device
    cache = backbone(input_ids=torch.tensor([ids], device=device), use_cache=True
                     ).past_key_values
    return Head(list(ids), cache)


def extend_prefix(backbone: torch.nn.Module, cache: Any, common: int, rest: list[list[int]],
            pad_id: int, device: torch.device, want_last: bool = False
            ) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """Run each group's `rest` (left-padded) after `common` cached tokens (none when
    `cache` is None): the new cache, its attention mask and, with `want_last`, the
    hidden state at each row's last token."""
    rwidth = max(len(r) for r in rest)
    ids = torch.full((len(rest), rwidth), pad_id, dtype=torch.long, device=device)
    mask = torch.ones((len(rest), common + rwidth), dtype=torch.long, device=device)
    mask[:, common:] = 0
    for g, r in enumerate(rest):
        if r:
            ids[g, rwidth - len(r):] = torch.tensor(r, device=device)
            mask[g, common + rwidth - len(r):] = 1
    if rwidth == 0:
        return cache, mask, None
    positions = common + (mask[:, common:].cumsum(-1) - 1).clamp(min=0)
    result = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                      past_key_values=cache, use_cache=True)
    last = result.last_hidden_state[:, -1] if want_last else None
    return result.past_key_values, mask, last


@torch.inference_mode()
def last_hidden_states(backbone: torch.nn.Module, groups: Sequence[tuple[list[int],
                       list[list[int]]]], pad_id: int, max_waste: float = 1.1,
                       max_tokens: int = 8192, min_common: int = 8,
                       head: Head | None = None) -> torch.Tensor:
    """Final hidden state at the last token of every suffix, shape [n_suffixes, hidden].

    With `head`, every group's prefix comes after the head's tokens, whose cached
    KV rows are reused (the prefixes given here leave the head out). Otherwise the
    tokens that all prefixes of the batch share (at least `min_common`) run once.
    The rest of each prefix runs left-padded in one pass that fills the KV cache.
    Suffixes are then sorted by length and run in chunks (padding within
    `max_waste`), each against the cache rows of its own prefix.
    """
    device = next(backbone.parameters()).device
    owners = [g for g, (_, suffixes) in enumerate(groups) for _ in suffixes]
    suffixes = [s for _, ss in groups for s in ss]
    offset = len(head.ids) if head is not None else 0
    prefix_lens = torch.tensor([offset + len(p) for p, _ in groups], device=device)
    width = int(prefix_lens.max()) if len(groups) else 0
    cache, mask = None, None
    common = _batch_common_prefix([p for p, _ in groups]) if head is None else 0
    if head is not None:
        cache = select_rows(head.cache, torch.zeros(len(groups), dtype=torch.long,
                                                     device=device))
        cache, mask, _ = extend_prefix(backbone, cache, offset, [list(p) for p, _ in groups],
                                 pad_id, device)
    elif common >= min_common:
        # Tokens every prefix of the batch starts with (a system prompt, a judge's
        # preamble) run once; their KV rows are copied to every group.
        cache = backbone(input_ids=torch.tensor([groups[0][0][:common]], device=device),
                         use_cache=True).past_key_values
        cache = select_rows(cache, torch.zeros(len(groups), dtype=torch.long, device=device))
        cache, mask, _ = extend_prefix(backbone, cache, common, [p[common:] for p, _ in groups],
                                 pad_id, device)
    elif width > 0:
        ids = torch.full((len(groups), width), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(groups), width), dtype=torch.long, device=device)
        for g, (prefix, _) in enumerate(groups):
            if prefix:
                ids[g, width - len(prefix):] = torch.tensor(prefix, device=device)
                mask[g, width - len(prefix):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True).past_key_values
    out: torch.Tensor | None = None
    for chunk in _suffix_chunks([len(s) for s in suffixes], max_waste, max_tokens):
        rows = torch.tensor([owners[j] for j in chunk], device=device)
        lens = torch.tensor([len(suffixes[j]) for j in chunk], device=device)
        rwidth = int(lens.max())
        rids = torch.full((len(chunk), rwidth), pad_id, dtype=torch.long, device=device)
        for r, j in enumerate(chunk):
            rids[r, :len(suffixes[j])] = torch.tensor(suffixes[j], device=device)
        rmask = (torch.arange(rwidth, device=device)[None, :] < lens[:, None]).long()
        positions = prefix_lens[rows][:, None] + torch.arange(rwidth, device=device)[None, :]
        if cache is not None:
            chunk_cache = select_rows(cache, rows)
            full_mask = torch.cat([mask[rows], rmask], dim=1)
        else:
            chunk_cache, full_mask = None, rmask
        hidden = backbone(input_ids=rids, attention_mask=full_mask, position_ids=positions,
                          past_key_values=chunk_cache,
                          use_cache=chunk_cache is not None).last_hidden_state
        last = hidden[torch.arange(len(chunk), device=device), lens - 1]
        if out is None:
            out = last.new_empty((len(suffixes), last.shape[-1]))
        out[torch.tensor(chunk, device=device)] = last
    assert out is not None
    return out


@torch.inference_mode()
def last_hidden_states_unshared(backbone: torch.nn.Module, sequences: Sequence[list[int]],
                                pad_id: int) -> torch.Tensor:
    """Final hidden state at the last token of each whole sequence (right padding)."""
    device = next(backbone.parameters()).device
    lens = torch.tensor([len(s) for s in sequences], device=device)
    width = int(lens.max())
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long, device=device)
    for j, s in enumerate(sequences):
        ids[j, :len(s)] = torch.tensor(s, device=device)
    mask = (torch.arange(width, device=device)[None, :] < lens[:, None]).long()
    hidden = backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    return hidden[torch.arange(len(sequences), device=device), lens - 1]
