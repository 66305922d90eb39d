"""Sentence embeddings (mean pooling, L2-normalised) for embedding members."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from preflab.data.messages import text_hash
from preflab.engine.units import Unit
from preflab.models.runtime import Runtime, fingerprint, model_fingerprint, within_context


def embed_unit(text: str, keep: str = "start") -> Unit:
    """A text to embed; `keep="end"` truncates from the left (contexts end with what matters)."""
    key = text_hash("embed", keep, text)
    return Unit(key=key, group=key, payload=(text, keep))


@dataclass
class Encoded:
    ids: list[int]


class EmbedScorer:
    """Embeds texts with a sentence encoder (e.g. the minilm-l6 preset).

    A text reads at most `max_length` tokens (at most the model's context), special
    tokens included: a longer one keeps its first tokens, or its last with
    ``keep="end"`` (a context: its latest turns); its unit's key goes to
    ``truncated_keys``."""

    def __init__(self, model: str = "minilm-l6", max_length: int = 256,
                 runtime: Runtime | None = None) -> None:
        from transformers import AutoModel

        from preflab.models.offline import load_pretrained, load_tokenizer, resolve

        self.runtime = runtime or Runtime()
        self.runtime.apply_threads()
        resolved = resolve(model)
        self.tokenizer = load_tokenizer(model)
        self.model = load_pretrained(AutoModel, model).to(self.runtime.torch_device()).eval()
        self.max_length = within_context(max_length, self.model, self.tokenizer)
        self.truncated = 0
        self.truncated_keys: set[str] = set()
        self.truncation = (f"a context keeps its last {self.max_length} tokens, a reply its "
                           "first")
        self.name = f"embed:{model}"
        self.fingerprint = fingerprint("embed", model_fingerprint(model, resolved),
                                       self.max_length,
                                       self.runtime.precision)

    def encode(self, units: list[Unit]) -> Encoded:
        text, keep = units[0].payload
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        room = self.max_length - 2
        if len(ids) > room:
            self.truncated += 1
            self.truncated_keys.add(units[0].key)
            ids = ids[-room:] if keep == "end" else ids[:room]
        tok = self.tokenizer
        return Encoded([tok.cls_token_id, *ids, tok.sep_token_id])

    def sort_key(self, item: Encoded) -> tuple[int, ...]:
        return (len(item.ids),)

    def cost(self, items: list[Encoded]) -> tuple[int, int]:
        return len(items) * max(len(i.ids) for i in items), sum(len(i.ids) for i in items)

    @torch.inference_mode()
    def run(self, items: list[Encoded]) -> list[np.ndarray]:
        dev = self.runtime.torch_device()
        width = max(len(i.ids) for i in items)
        ids = torch.full((len(items), width), self.tokenizer.pad_token_id, dtype=torch.long,
                         device=dev)
        mask = torch.zeros_like(ids)
        for j, item in enumerate(items):
            ids[j, :len(item.ids)] = torch.tensor(item.ids)
            mask[j, :len(item.ids)] = 1
        with self.runtime.autocast():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return list(pooled.cpu().numpy())
