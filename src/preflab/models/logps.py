"""Reply log-probabilities of a causal LM, with gradients, the prompt run once per pair.

A batch of :class:`~preflab.models.examples.PolicyExample` becomes a left-padded
prefix batch (B rows) and a right-padded continuation batch (2B rows: chosen and
rejected of each pair, interleaved). The prefixes run once and fill the KV cache;
its rows are repeated for the two continuations, which run against it. Gradients
flow through the cache into the prefix, so the result equals running prompt+chosen
and prompt+rejected separately (the unshared path, also here) at about
(P + C + R) / (2P + C + R) of the cost. Only reply positions go through the LM head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from preflab.models.examples import PolicyExample


def backbone_and_head(model: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformer body, LM head) of a causal LM, through a peft wrapper if any."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = inner.config.get_text_config()
    for name in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
        if getattr(config, name, None) not in (None, 1, 1.0):
            raise ValueError(f"{config.model_type}: its logits are transformed after the LM "
                             f"head ({name}), which reply log-probs here do not apply")
    return inner.base_model, inner.get_output_embeddings()


def collate_policy(batch: Sequence[PolicyExample], pad_id: int, rejected: bool = True
                   ) -> dict[str, torch.Tensor]:
    """Tensors for :func:`reply_logps`: rows are chosen, rejected of pair 0, then pair 1..."""
    sides = [(e.chosen_ids, e.chosen_n) for e in batch]
    if rejected:
        sides = [s for e in batch for s in ((e.chosen_ids, e.chosen_n),
                                            (e.rejected_ids, e.rejected_n))]
    out = collate_continuations([e.prefix for e in batch], sides, pad_id)
    out["p_chosen"] = torch.tensor([e.p_chosen for e in batch])
    if rejected and all(e.ref_chosen is not None for e in batch):
        out["ref_logps"] = torch.tensor([v for e in batch for v in (e.ref_chosen,
                                                                     e.ref_rejected)])
    return out


def collate_continuations(prefixes: Sequence[list[int]], sides: Sequence[tuple[list[int], int]],
                          pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded prefixes and right-padded continuations, the same number (k) per
    prefix in order; each continuation is (ids, reply length: its last tokens)."""
    if not prefixes or len(sides) % len(prefixes):
        raise ValueError(f"{len(sides)} continuations for {len(prefixes)} prefixes")
    pwidth = max(len(p) for p in prefixes)
    prefix = torch.full((len(prefixes), pwidth), pad_id, dtype=torch.long)
    pmask = torch.zeros_like(prefix)
    for i, p in enumerate(prefixes):
        prefix[i, pwidth - len(p):] = torch.tensor(p)
        pmask[i, pwidth - len(p):] = 1
    cwidth = max(len(ids) for ids, _ in sides)
    cont = torch.full((len(sides), cwidth), pad_id, dtype=torch.long)
    cmask = torch.zeros_like(cont)
    loss_mask = torch.zeros_like(cont)
    for j, (ids, n) in enumerate(sides):
        cont[j, :len(ids)] = torch.tensor(ids)
        cmask[j, :len(ids)] = 1
        loss_mask[j, len(ids) - n:len(ids)] = 1
    return {"prefix_ids": prefix, "prefix_mask": pmask, "cont_ids": cont, "cont_mask": cmask,
            "loss_mask": loss_mask}


def _token_logps(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor
                 ) -> torch.Tensor:
    """log p(target) for each row of `hidden` [N, H], in chunks of the vocabulary matrix."""
    out = []
    for h, t in zip(hidden.split(1024), targets.split(1024), strict=True):
        logits = head(h).float()
        out.append(logits.gather(-1, t[:, None])[:, 0] - logits.logsumexp(-1))
    return torch.cat(out) if out else hidden.new_zeros(0)


def prefix_then_continuations(body: torch.nn.Module, batch: dict[str, torch.Tensor]
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the left-padded prefixes once, then every continuation (k per prefix, from
    :func:`collate_continuations`) against a copy of its prefix's KV cache, gradients
    flowing through the cache. Returns (final hidden state at each prefix's last token,
    repeated per continuation [rows, H]; continuation hidden states [rows, width, H])."""
    pids, pmask = batch["prefix_ids"], batch["prefix_mask"]
    cids, cmask = batch["cont_ids"], batch["cont_mask"]
    k = cids.shape[0] // pids.shape[0]
    plen = pmask.sum(1).repeat_interleave(k)
    positions = (pmask.cumsum(-1) - 1).clamp(min=0)
    out = body(input_ids=pids, attention_mask=pmask, position_ids=positions, use_cache=True)
    cache = out.past_key_values
    if cache is None or cache.get_seq_length() == 0:
        raise RuntimeError("the model returned no KV cache (gradient checkpointing?); "
                           "call with share_prefix=False")
    if k > 1:
        cache.batch_repeat_interleave(k)
    last = out.last_hidden_state[:, -1].repeat_interleave(k, 0)
    cpos = plen[:, None] + (cmask.cumsum(-1) - 1).clamp(min=0)  # padding: no new positions
    hidden = body(input_ids=cids, attention_mask=torch.cat([pmask.repeat_interleave(k, 0),
                                                            cmask], 1),
                  position_ids=cpos, past_key_values=cache, use_cache=True).last_hidden_state
    return last, hidden


def reply_logps(model: Any, batch: dict[str, torch.Tensor], share_prefix: bool = True,
                per_token: bool = False) -> tuple[torch.Tensor, ...]:
    """(summed log-prob of each row's reply tokens, reply token counts), one per
    continuation row (chosen, rejected, chosen, ...). With `per_token` also the
    log-prob of every reply token (flat, rows in order) and the final hidden state at
    each prefix's last token (shared path only)."""
    body, head = backbone_and_head(model)
    pids, pmask = batch["prefix_ids"], batch["prefix_mask"]
    cids, cmask, lmask = batch["cont_ids"], batch["cont_mask"], batch["loss_mask"]
    rows = cids.shape[0]
    k = rows // pids.shape[0]  # continuations per prefix
    plen = pmask.sum(1).repeat_interleave(k)
    if share_prefix:
        last, hidden = prefix_then_continuations(body, batch)
        # Token j of a continuation is predicted at continuation position j - 1, the
        # first one at the prefix's last token.
        pred = torch.cat([last[:, None], hidden[:, :-1]], 1)
    else:
        # prompt + continuation as one right-padded row each (the reference path).
        width = int((plen + cmask.sum(1)).max())
        ids = torch.full((rows, width), int(pids[0, 0]), dtype=torch.long, device=cids.device)
        mask = torch.zeros_like(ids)
        for j in range(rows):
            p = pids[j // k][pmask[j // k].bool()]
            c = cids[j][cmask[j].bool()]
            ids[j, :len(p) + len(c)] = torch.cat([p, c])
            mask[j, :len(p) + len(c)] = 1
        hidden = body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        index = (plen[:, None] - 1 + torch.arange(cids.shape[1], device=cids.device)[None, :]
                 ).clamp(max=width - 1)
        pred = hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))
    sel = lmask.bool()
    logp = _token_logps(head, pred[sel], cids[sel])
    row = torch.arange(rows, device=cids.device)[:, None].expand_as(lmask)[sel]
    sums = torch.zeros(rows, dtype=logp.dtype, device=logp.device).index_add(0, row, logp)
    if per_token:
        return sums, lmask.sum(1), logp, pred[:, 0] if share_prefix else None
    return sums, lmask.sum(1)


@torch.no_grad()
def reference_logps(model: Any, examples: list[PolicyExample], pad_id: int,
                    batch_size: int = 8, share_prefix: bool = True,
                    progress: bool = True, autocast: torch.dtype | None = None,
                    on_batch: Callable[[list[int], list[tuple[float, float]]], None]
                    | None = None) -> list[tuple[float, float]]:
    """(chosen, rejected) reply log-probs of every example under `model` (no grad;
    under `autocast` to that dtype when training runs in mixed precision).
    `on_batch(indices, values)` is called after each batch (e.g. to save it)."""
    import contextlib

    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: examples[i].tokens)
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(examples)
    was_training = model.training
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc="reference log-probs",
                      disable=not progress):
        idx = order[start:start + batch_size]
        batch = collate_policy([examples[i] for i in idx], pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        with (torch.autocast(device.type, dtype=autocast) if autocast is not None
              else contextlib.nullcontext()):
            sums, _ = reply_logps(model, batch, share_prefix)
        pairs = [(c, r) for c, r in sums.view(-1, 2).tolist()]
        for i, value in zip(idx, pairs, strict=True):
            out[i] = value
        if on_batch is not None:
            on_batch(idx, pairs)
    model.train(was_training)
    return out
