"""A bi-encoder reward model: r(x, y) = s * cos(u, v) + w . [u * v, v] + b, where u and v
are the mean-pooled, L2-normalised embeddings of the context and the reply, each encoded
alone, as a sentence-transformers model was trained to be used.

It reads the usual encoder text pair ``[CLS] context [SEP] reply [SEP]`` with its segment
ids and splits it in two, so the same inputs serve it and a [CLS] cross-encoder. With
w = 0 at the start the reward is the zero-shot cosine between context and reply, which
training then refines. `preflab train-rm` copies this file into the model folder; outside
preflab, load the folder with
``AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)``.
This module imports only torch and transformers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel, BertPreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

MODEL_TYPE = "preflab_bi_encoder"


class BiEncoderRewardConfig(BertConfig):
    model_type = MODEL_TYPE

    def __init__(self, cosine_scale: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cosine_scale = cosine_scale


class CosineHead(nn.Module):
    """s * cos(u, v) + w . [u * v, v] + b over normalised embeddings u, v."""

    def __init__(self, hidden: int, scale: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.weight = nn.Parameter(torch.zeros(2 * hidden))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Computed in float32 whatever the weights' dtype (u, v are float32)."""
        cos = (u * v).sum(-1)
        return (self.scale.float() * cos + torch.cat([u * v, v], -1) @ self.weight.float()
                + self.bias.float())


def _pack(ids: torch.Tensor, keep: torch.Tensor, pad: int, first: torch.Tensor | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept tokens of each row moved to its start (order kept), the column `first`
    in front."""
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    n = keep.sum(1)
    width = int(n.max()) if len(n) else 0
    packed = ids.gather(1, order)[:, :width]
    mask = torch.arange(width, device=ids.device)[None, :] < n[:, None]
    packed = packed.masked_fill(~mask, pad)
    if first is not None:
        packed = torch.cat([first, packed], 1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
    return packed, mask.long()


class BiEncoderForSequenceClassification(BertPreTrainedModel):
    """One reward per (context, reply) text pair; `token_type_ids` say which is which."""

    config_class = BiEncoderRewardConfig

    def __init__(self, config: BiEncoderRewardConfig) -> None:
        super().__init__(config)
        self.num_labels = 1
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = CosineHead(config.hidden_size, config.cosine_scale)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, CosineHead):  # the start is the zero-shot cosine
            with torch.no_grad():
                module.scale.fill_(self.config.cosine_scale)
                module.weight.zero_()
                module.bias.zero_()
        else:
            super()._init_weights(module)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return nn.functional.normalize(pooled.float(), dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                return_dict: bool | None = None, **_: Any) -> Any:
        if token_type_ids is None:
            raise ValueError("a bi-encoder reward model reads a (context, reply) text pair: "
                             "pass the tokenizer's token_type_ids")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        live = attention_mask.bool()
        pad = self.config.pad_token_id or 0
        ctx, ctx_mask = _pack(input_ids, live & (token_type_ids == 0), pad)
        # the reply segment is "reply [SEP]": encoded alone it starts with [CLS] again
        rep, rep_mask = _pack(input_ids, live & (token_type_ids == 1), pad,
                              first=input_ids[:, :1])
        logits = self.classifier(self.embed(ctx, ctx_mask), self.embed(rep, rep_mask))[:, None]
        loss = None
        if labels is not None:  # regression to a target reward, as the stock heads do
            loss = nn.functional.mse_loss(logits.squeeze(-1), labels.float())
        return SequenceClassifierOutput(loss=loss, logits=logits)


def register() -> None:
    """Let the Auto classes load a preflab bi-encoder folder without remote code."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    try:
        AutoConfig.register(MODEL_TYPE, BiEncoderRewardConfig)
        AutoModelForSequenceClassification.register(BiEncoderRewardConfig,
                                                    BiEncoderForSequenceClassification)
    except ValueError:  # already registered
        pass
