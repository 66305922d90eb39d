"""Hidden states of a causal LM over the reply tokens of prompt+reply sequences.

Layer numbering follows ``output_hidden_states``: layer ``l`` is the output of
decoder block ``l`` (1-based), layer 0 the embeddings. A reply's tokens are the
last ``chosen_n`` tokens of a :class:`~preflab.models.examples.PolicyExample`
built for SFT (``with_rejected=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from preflab.models.examples import PolicyExample


def decoder_layers(model: Any) -> torch.nn.ModuleList:
    """The decoder blocks of a causal LM, through a peft wrapper if any."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = inner.base_model
    for name in ("layers", "h", "blocks"):
        layers = getattr(body, name, None)
        if isinstance(layers, torch.nn.ModuleList):
            return layers
    raise ValueError(f"{type(inner).__name__}: cannot find its decoder layers")


def check_layers(model: Any, layers: Sequence[int], last: bool = True) -> list[int]:
    """`layers` validated against the model's depth (1..number of blocks). With
    ``last=False`` the last block is refused: its recorded state is after the final
    norm, so a vector measured there would be added in another space (steering, RAHF)."""
    depth = len(decoder_layers(model))
    top = depth if last else depth - 1
    bad = [layer for layer in layers if not 1 <= layer <= top]
    if bad or not layers:
        raise ValueError(f"layers must be in 1..{top} for this model, got {list(layers)}")
    return sorted(set(layers))


def collate_rows(batch: Sequence[PolicyExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded prefix+reply rows and a mask of their reply tokens."""
    rows = [e.prefix + e.chosen_ids for e in batch]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    reply = torch.zeros_like(ids)
    for i, (row, e) in enumerate(zip(rows, batch, strict=True)):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        reply[i, len(row) - e.chosen_n:len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask, "reply_mask": reply}


def reply_hidden(model: Any, batch: dict[str, torch.Tensor], layers: Sequence[int]
                 ) -> list[torch.Tensor]:
    """Per layer, the hidden states of every reply token of the batch, flat [tokens, H]
    in row order (with gradients when enabled)."""
    from preflab.models.logps import backbone_and_head

    body, _ = backbone_and_head(model)
    out = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
               output_hidden_states=True, use_cache=False)
    sel = batch["reply_mask"].bool()
    return [out.hidden_states[layer][sel] for layer in layers]


@torch.no_grad()
def mean_reply_hidden(model: Any, examples: Sequence[PolicyExample], layers: Sequence[int],
                      pad_id: int, batch_size: int = 8, desc: str = "hidden states",
                      progress: bool = True) -> np.ndarray:
    """The mean hidden state over each example's reply tokens: [examples, layers, H]."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].prefix)
                   + len(examples[i].chosen_ids))
    out: np.ndarray | None = None
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate_rows([examples[i] for i in idx],
                                                           pad_id).items()}
        counts = batch["reply_mask"].sum(1)
        row = torch.repeat_interleave(torch.arange(len(idx), device=device), counts)
        for j, h in enumerate(reply_hidden(model, batch, layers)):
            sums = torch.zeros(len(idx), h.shape[-1], device=device,
                               dtype=torch.float32).index_add(0, row, h.float())
            means = (sums / counts[:, None]).cpu().numpy()
            if out is None:
                out = np.zeros((len(examples), len(layers), h.shape[-1]), dtype=np.float32)
            out[idx, j] = means
    if out is None:
        raise ValueError("no examples to collect hidden states from")
    return out


# RAHF's public code on Llama-2-7B (32 blocks): target layers of step 2
PAPER_DEPTH = 32
PAPER_LAYERS = {"scit": (10, 12, 14, 16, 18), "dual": (10, 12, 14, 16, 18, 20)}


def rahf_layers(depth: int, variant: str = "scit") -> list[int]:
    """The paper's target layers scaled to a model of `depth` blocks:
    ``round(l * depth / 32)``, deduplicated, at least 1 (SmolLM2-135M, 30 blocks:
    SCIT 9, 11, 13, 15, 17; Dual adds 19)."""
    if variant not in PAPER_LAYERS:
        raise ValueError(f"variant must be one of {sorted(PAPER_LAYERS)}, got {variant!r}")
    return sorted({max(1, min(depth - 1, round(layer * depth / PAPER_DEPTH)))
                   for layer in PAPER_LAYERS[variant]})
