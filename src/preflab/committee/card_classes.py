"""Reward-model classes that a model card defines (no remote code ships with the model),
for a ``seq-rm`` member's ``class = "module:Name"``.

:class:`INFORMForSequenceClassification` is the class the card of
``infly/INF-ORM-Llama3.1-70B`` defines, written here from its description: a Llama
backbone, a two-layer head (``Linear(h, h)``, ReLU, ``Linear(h, num_labels)``) on
every position, read at the token before the first pad token (the last token when
the sequence has none). The card loads it with ``num_labels=1`` and reads
``logits[0][0]``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutputWithPast


def last_before_pad(input_ids: torch.Tensor, pad_token_id: int | None) -> torch.Tensor:
    """Per row, the position before the first pad token (modulo the width: the last
    position when there is none), as the cards' classes read the reward."""
    if pad_token_id is None:
        if input_ids.shape[0] != 1:
            raise ValueError("cannot read a batch of more than one sequence without a "
                             "pad token")
        return torch.full((1,), input_ids.shape[1] - 1, device=input_ids.device)
    first = torch.eq(input_ids, pad_token_id).int().argmax(-1) - 1
    return first % input_ids.shape[-1]


class INFORMForSequenceClassification(LlamaPreTrainedModel):
    """INF-ORM's reward model: Llama backbone and a ReLU MLP head (see the module)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = LlamaModel(config)
        self.score = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size),
                                   nn.ReLU(), nn.Linear(config.hidden_size, self.num_labels))
        self.post_init()

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, **kwargs: Any
                ) -> SequenceClassifierOutputWithPast:
        assert input_ids is not None
        hidden = self.model(input_ids, attention_mask=attention_mask, **kwargs)[0]
        logits = self.score(hidden)
        rows = torch.arange(input_ids.shape[0], device=logits.device)
        pooled = logits[rows, last_before_pad(input_ids, self.config.pad_token_id)]
        return SequenceClassifierOutputWithPast(logits=pooled)
