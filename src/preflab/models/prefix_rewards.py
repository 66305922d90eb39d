"""Rewards of a decoder reward model with each pair's prompt run once: the prompts fill
the KV cache, both replies run against copies of it (gradients flow through the cache,
as DPO's shared-prefix log-probs do), sorted by length into chunks with little
padding, and the head reads only each reply's last token."""

from __future__ import annotations

from typing import Any

import torch

from preflab.models.batching import plan_batches
from preflab.models.bi_encoder import MODEL_TYPE as BI_ENCODER
from preflab.models.forward import select_rows
from preflab.models.runtime import is_encoder


def reward_body_and_head(model: Any) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(transformer body, scalar head) of a decoder sequence-classification model
    (through a peft wrapper), or None when it has no such plain layout."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if is_encoder(inner.config) or inner.config.model_type == BI_ENCODER:
        return None
    head = getattr(inner, "score", None)
    body = getattr(inner, "base_model", None)
    if head is None or body is None or body is inner:
        return None
    return body, head


def shared_prefix_rewards(model: Any, batch: dict[str, torch.Tensor],
                          max_waste: float = 1.3) -> torch.Tensor:
    """Rewards of the continuation rows of a :func:`~preflab.train.rm_data.shared_layout`
    batch (chosen, rejected of pair 0, then pair 1...).

    The prefixes run once, left-padded, and fill the KV cache. The replies, sorted by
    length, run in chunks whose padding stays within `max_waste`, each against the
    cache rows of its own prefix (gradients flow through the cache into the prefix).
    The head reads only each reply's last token, as
    ``AutoModelForSequenceClassification`` does on the whole sequence.
    """
    found = reward_body_and_head(model)
    if found is None:
        raise ValueError(f"{type(model).__name__}: not a decoder with a `score` head; "
                         "prefix sharing does not apply")
    body, head = found
    pids, pmask = batch["prefix_ids"], batch["prefix_mask"]
    cids, cmask = batch["cont_ids"], batch["cont_mask"]
    k = cids.shape[0] // pids.shape[0]
    positions = (pmask.cumsum(-1) - 1).clamp(min=0)
    cache = body(input_ids=pids, attention_mask=pmask, position_ids=positions,
                 use_cache=True).past_key_values
    if cache is None or cache.get_seq_length() == 0:
        raise RuntimeError("the model returned no KV cache (gradient checkpointing?); "
                           "set share_prefix = false")
    plen = pmask.sum(1)
    lengths = cmask.sum(1).tolist()
    chunks = plan_batches(lengths, sort_key=lambda n: (n,),
                          cost=lambda ns: (len(ns) * max(ns), sum(ns)),
                          max_tokens=2**62, max_rows=len(lengths), max_waste=max_waste)
    rewards, order = [], []
    for chunk in chunks:
        rows = torch.tensor(chunk, device=cids.device)
        owners = rows // k
        width = max(lengths[j] for j in chunk)
        ids, mask = cids[rows, :width], cmask[rows, :width]
        cpos = plen[owners][:, None] + (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = body(input_ids=ids, attention_mask=torch.cat([pmask[owners], mask], 1),
                      position_ids=cpos, past_key_values=select_rows(cache, owners),
                      use_cache=True).last_hidden_state
        last = hidden[torch.arange(len(chunk), device=ids.device), mask.sum(1) - 1]
        rewards.append(head(last)[:, 0].float())
        order += chunk
    out = torch.cat(rewards)
    return out[torch.argsort(torch.tensor(order, device=out.device))]
