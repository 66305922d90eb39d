"""Decoder forward passes that compute a shared prefix once (prefix sharing).

A group is one prefix (e.g. the chat-templated prompt) and several suffixes (the
replies). The prefixes of a batch run left-padded in one pass that fills the KV
cache; the cache rows are then repeated for each suffix, and the suffixes run
right-padded against it. The result is the hidden state at each suffix's last
token, equal (up to float rounding) to running every prefix+suffix separately.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def prefix_sort_key(prefix: Sequence[int], suffixes: Sequence[Sequence[int]]
                    ) -> tuple[int, ...]:
    """Bucket by prefix length, then sort by the longest suffix."""
    from preflab.engine.batching import length_bucket

    longest = max(len(s) for s in suffixes)
    return (length_bucket(len(prefix)), length_bucket(longest), len(prefix), longest)


def prefix_cost(groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]]
                ) -> tuple[int, int]:
    """(padded, real) tokens of a batch of groups: prefixes once, suffixes each."""
    width = max(len(p) for p, _ in groups)
    swidth = max(len(s) for _, ss in groups for s in ss)
    rows = sum(len(ss) for _, ss in groups)
    real = sum(len(p) + sum(len(s) for s in ss) for p, ss in groups)
    return len(groups) * width + rows * swidth, real


@torch.no_grad()
def last_hidden_states(backbone: torch.nn.Module, groups: Sequence[tuple[list[int],
                       list[list[int]]]], pad_id: int) -> torch.Tensor:
    """Final hidden state at the last token of every suffix, shape [n_suffixes, hidden]."""
    device = next(backbone.parameters()).device
    owners = [g for g, (_, suffixes) in enumerate(groups) for _ in suffixes]
    suffixes = [s for _, ss in groups for s in ss]
    prefix_lens = torch.tensor([len(p) for p, _ in groups], device=device)
    width = int(prefix_lens.max()) if len(groups) else 0
    owner_idx = torch.tensor(owners, device=device)
    cache = None
    if width > 0:
        ids = torch.full((len(groups), width), pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(groups), width), dtype=torch.long, device=device)
        for g, (prefix, _) in enumerate(groups):
            if prefix:
                ids[g, width - len(prefix):] = torch.tensor(prefix, device=device)
                mask[g, width - len(prefix):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True).past_key_values
        cache.batch_select_indices(owner_idx)  # one cache row per suffix
        prefix_mask = mask[owner_idx]
    else:
        prefix_mask = torch.zeros((len(suffixes), 0), dtype=torch.long, device=device)
    lens = torch.tensor([len(s) for s in suffixes], device=device)
    rwidth = int(lens.max())
    rids = torch.full((len(suffixes), rwidth), pad_id, dtype=torch.long, device=device)
    for j, s in enumerate(suffixes):
        rids[j, :len(s)] = torch.tensor(s, device=device)
    rmask = (torch.arange(rwidth, device=device)[None, :] < lens[:, None]).long()
    positions = prefix_lens[owner_idx][:, None] + torch.arange(rwidth, device=device)[None, :]
    out = backbone(input_ids=rids, attention_mask=torch.cat([prefix_mask, rmask], dim=1),
                   position_ids=positions, past_key_values=cache, use_cache=cache is not None)
    hidden = out.last_hidden_state
    return hidden[torch.arange(len(suffixes), device=device), lens - 1]


@torch.no_grad()
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
