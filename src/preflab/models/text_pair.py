"""How an encoder reads (context, reply) as a text pair: [CLS] context [SEP] reply [SEP],
the reply told apart by segment ids (token types)."""

from __future__ import annotations

from typing import Any

import torch


def type_separator(tokenizer: Any, model_config: Any) -> int | None:
    """The [SEP] id when an encoder reads (context, reply) with segment ids, else None."""
    if ("token_type_ids" in getattr(tokenizer, "model_input_names", ())
            and getattr(model_config, "type_vocab_size", 0) > 1):
        return tokenizer.sep_token_id
    return None


def token_types(ids: torch.Tensor, sep_id: int) -> torch.Tensor:
    """Segment ids of padded [CLS] context [SEP] reply [SEP] rows: 1 after the first
    [SEP], as a tokenizer's text-pair encoding gives (padding is masked anyway)."""
    is_sep = (ids == sep_id).long()
    return ((torch.cumsum(is_sep, dim=1) - is_sep) > 0).long()


def marks_pairs(tokenizer: Any) -> bool:
    """True when a text pair is written [CLS] a [SEP] b [SEP] with segment ids 0 then 1,
    which is how preflab's encoder batches find where the reply starts."""
    sep = tokenizer.sep_token_id
    try:
        enc = tokenizer("a", "b", return_token_type_ids=True)
    except (TypeError, ValueError, KeyError):
        return False
    if sep is None or sep not in enc["input_ids"]:
        return False
    found = token_types(torch.tensor([enc["input_ids"]]), sep)[0].tolist()
    return found == list(enc["token_type_ids"]) and 1 in found
