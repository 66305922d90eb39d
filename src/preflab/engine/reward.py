"""Reward-model scorers: r(x, y) from a sequence-classification model.

Decoder reward models (Llama-, Gemma-, Qwen-style; ``causal-rm`` and most
``seq-rm`` members) share the prompt: the chat-templated context runs once per
group and its KV cache serves every reply. Encoder reward models (DeBERTa-style)
take (context, reply) as a text pair. Training (:mod:`preflab.train.reward_model`)
builds its inputs with the same :func:`reward_input`, so a trained model scores here
exactly as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from preflab.data.messages import Messages
from preflab.engine.units import Unit
from preflab.models.chat import chat_ids, plain_context
from preflab.models.forward import PrefixSharing, Shared, last_hidden_states, split_shared_prefix
from preflab.models.runtime import (
    Runtime,
    fingerprint,
    is_encoder,
    model_fingerprint,
    within_context,
)
from preflab.models.text_pair import token_types, type_separator

# How a reward model's input is shortened (left truncation, as reward models are trained):
# decoders keep their last tokens, encoders drop the context's oldest tokens first.
TRUNCATION = ("left: the context loses its oldest tokens first; the reply is cut at its end "
              "only when it alone is longer than the model reads")


@dataclass(frozen=True)
class RewardInput:
    """Token ids of one (context, reply) and what truncation cut from them."""

    ids: list[int]
    context_cut: int  # context tokens removed (from the start: the latest turns stay)
    reply_cut: int  # reply tokens removed: the reply no longer fits `max_length`


def reward_input(tokenizer: Any, encoder: bool, context: Messages, reply: str,
                 max_length: int) -> RewardInput:
    """The ids a reward model reads for `reply` after `context`, at most `max_length`.

    Decoders read the chat-templated conversation and score its last token;
    truncation keeps the last `max_length` tokens. Encoders read the pair
    [CLS] context [SEP] reply [SEP] (token types left at 0); the context loses its
    oldest tokens first. Either way the reply is cut only when it alone is too long.
    """
    if encoder:
        enc = tokenizer(plain_context(context), reply, verbose=False)
        ids, seq = enc["input_ids"], enc.sequence_ids()
        n_ctx, n_rep = seq.count(0), seq.count(1)
        budget = max_length - (len(ids) - n_ctx - n_rep)  # room left by the special tokens
        reply_cut = max(0, n_rep - budget)
        context_cut = min(n_ctx, max(0, n_ctx + n_rep - budget))
        ctx_pos = [i for i, s in enumerate(seq) if s == 0][:context_cut]
        rep_pos = [i for i, s in enumerate(seq) if s == 1][n_rep - reply_cut:]
        drop = set(ctx_pos) | set(rep_pos)
        return RewardInput([t for i, t in enumerate(ids) if i not in drop], context_cut,
                           reply_cut)
    ids = chat_ids(tokenizer, context, reply)
    cut = max(0, len(ids) - max_length)
    if not cut:
        return RewardInput(ids, 0, 0)
    head = chat_ids(tokenizer, context, None)
    n_context = next((i for i, (a, b) in enumerate(zip(head, ids, strict=False)) if a != b),
                     min(len(head), len(ids)))
    return RewardInput(ids[cut:], min(cut, n_context), max(0, cut - n_context))


def clip_ids(ids: list[int], max_length: int, sep_id: int | None = None
             ) -> tuple[list[int], int]:
    """Rendered reward-model input ids at most `max_length` long by the rule of
    :func:`reward_input`, and how many tokens were removed: a decoder's sequence keeps
    its last tokens; an encoder's ``[CLS] context [SEP] reply [SEP]`` (`sep_id` given)
    drops the context's oldest tokens, then the reply's last ones (its special tokens
    stay). For ids that arrive rendered (a served model's requests)."""
    cut = len(ids) - max_length
    if cut <= 0:
        return ids, 0
    if sep_id is None or sep_id not in ids[1:] or max_length < 3:
        return ids[cut:], cut
    first = ids.index(sep_id, 1)  # the end of the context
    drop = min(cut, first - 1)
    out = ids[:1] + ids[1 + drop:]
    rest = cut - drop  # the reply's last tokens, before its closing token
    if rest:
        out = out[:len(out) - 1 - rest] + out[-1:]
    return out, cut


def _head(model: Any) -> torch.nn.Module | None:
    """The scalar head of a standard sequence-classification model, if it has one."""
    for name in ("score", "classifier", "v_head"):
        if isinstance(getattr(model, name, None), torch.nn.Linear):
            return getattr(model, name)
    return None


def load_class(path: str) -> Any:
    """The class named by ``module:Name`` (a class a model card defines, in a module on
    the Python path); ValueError naming it when it cannot be imported."""
    import importlib

    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"class {path!r} cannot be imported ({e}): put the class the model "
                         "card defines in a module on the Python path") from None


def reward_field(output: Any, field: str) -> torch.Tensor:
    """The output of a model's forward that holds the reward, as [batch, outputs]:
    `field` names it (``logits``, ``score``, ``rewards``...; a number indexes a tuple)."""
    try:
        value = output[int(field)] if field.isdigit() else (
            output[field] if isinstance(output, dict) else getattr(output, field))
    except (KeyError, AttributeError, IndexError, TypeError):
        raise ValueError(f"the model's output has no {field!r} (reward_output); it has "
                         f"{list(output.keys()) if hasattr(output, 'keys') else type(output)}"
                         ) from None
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"the model's output {field!r} is not a tensor (reward_output)")
    return value if value.dim() == 2 else value.reshape(value.shape[0], -1)


def strip_pad(ids: list[int], pad_id: int | None) -> list[int]:
    """`ids` without trailing pad tokens (at least one kept): a sequence-classification
    model reads its reward at the last token that is not padding, so a sequence that
    ends in the pad token is read one token earlier, here as in the model's own class."""
    if pad_id is None:
        return ids
    n = len(ids)
    while n > 1 and ids[n - 1] == pad_id:
        n -= 1
    return ids[:n]


@dataclass(frozen=True)
class RewardModelOptions:
    """How a reward model loads and where its reward is read: its card's conventions
    (the committee file's keys of a ``seq-rm``/``causal-rm`` member, ``class`` as
    `model_class`) and, on GPUs, how it is placed.

    Args:
        model_class: ``module:Name`` of the class to load (one a model card defines);
            default ``AutoModelForSequenceClassification``.
        reward_output: the output field that holds the reward (``logits``, ``score``...).
        pad_token: the pad token (a token of the vocabulary); default the model config's,
            else the tokenizer's. A model with neither runs one sequence at a time where
            it runs whole, as its card's snippet does.
        tokenizer: a tokenizer other than the model's own.
        trust_remote_code: load a model or tokenizer that needs its own code.
        head_seed: the seed of a new scalar head (a causal LM folder gets one).
        attn_implementation, device_map: passed to ``from_pretrained`` (GPU runs:
            ``flash_attention_2``, ``auto`` for a model larger than one GPU).
    """

    model_class: str | None = None
    reward_output: str = "logits"
    pad_token: str | None = None
    tokenizer: str | None = None
    trust_remote_code: bool = False
    head_seed: int = 0
    attn_implementation: str | None = None
    device_map: str | None = None


class RewardScorer(PrefixSharing):
    """Scores (context, reply) units with a sequence-classification reward model.

    Args:
        model: preset name, hub id or folder of an ``AutoModelForSequenceClassification``
            (a causal LM folder gets a new scalar head, initialised from
            ``options.head_seed``).
        output_index: which output of a multi-output head is the reward.
        max_length: the most tokens of an input, at most the model's context (its
            position embeddings); a longer input is shortened by :data:`TRUNCATION`
            (:func:`reward_input`), counted in ``self.truncated`` and its unit's key
            kept in ``self.truncated_keys``.
        options: how the model loads and where its reward is read
            (:class:`RewardModelOptions`; default its defaults).

    Built-in transformers classes read through the ``logits`` share each prompt's
    forward pass between its replies; other classes and outputs run whole sequences
    through the model's own forward, batched with right padding.
    """

    def __init__(self, model: str, name: str | None = None, output_index: int = 0,
                 max_length: int = 2048, runtime: Runtime | None = None,
                 prefix_sharing: bool = True, options: RewardModelOptions | None = None
                 ) -> None:
        from transformers import AutoModelForSequenceClassification

        from preflab.models.bi_encoder import register
        from preflab.models.offline import load_pretrained, load_tokenizer, resolve

        o = options or RewardModelOptions()
        register()  # preflab's bi-encoder reward models load without remote code
        self.runtime = runtime or Runtime()
        self.runtime.apply_threads()
        resolved = resolve(model)
        self.tokenizer = load_tokenizer(o.tokenizer or model,
                                        trust_remote_code=o.trust_remote_code)
        torch.manual_seed(o.head_seed)  # a new head (causal LM folder) is seeded
        extra: dict[str, Any] = {} if _has_head(resolved) else {"num_labels": output_index + 1}
        if o.attn_implementation:
            extra["attn_implementation"] = o.attn_implementation
        if o.device_map:
            extra["device_map"] = o.device_map
        cls = load_class(o.model_class) if o.model_class else AutoModelForSequenceClassification
        loaded = load_pretrained(cls, model, dtype=self.runtime.weight_dtype(),
                                 trust_remote_code=o.trust_remote_code, **extra)
        self.model = (loaded if o.device_map else loaded.to(self.runtime.torch_device())).eval()
        self.pad_id = self._pad_id(o.pad_token)
        self.model.config.pad_token_id = self.pad_id
        self.fill_id = self.pad_id if self.pad_id is not None else (
            self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = self.fill_id
        self.encoder = is_encoder(self.model.config)
        self.sep_id = type_separator(self.tokenizer, self.model.config) if self.encoder else None
        self.backbone = self.model.base_model
        self.head = _head(self.model)
        builtin = type(self.model).__module__.startswith("transformers.")
        # Custom reward models (remote code, a card's class, another output) run whole.
        self.prefix_sharing = (prefix_sharing and not self.encoder and self.head is not None
                               and builtin and o.reward_output == "logits")
        self.output_index = output_index
        self.reward_output = o.reward_output
        self.max_length = within_context(max_length, self.model, self.tokenizer)
        self.name = name or f"rm:{model}"
        self.truncated = 0
        self.truncated_keys: set[str] = set()
        self.truncation = f"{TRUNCATION} ({self.max_length} tokens)"
        conventions = [c for c in (o.model_class, None if o.reward_output == "logits" else
                                   o.reward_output, o.pad_token, o.tokenizer) if c]
        self.fingerprint = fingerprint("reward-v3", model_fingerprint(model, resolved),
                                       o.head_seed, output_index, self.max_length,
                                       self.runtime.precision,
                                       *([conventions] if conventions else []))

    def _pad_id(self, pad_token: str | None) -> int | None:
        """The pad id the model reads: `pad_token`, else the config's, else the tokenizer's."""
        if pad_token is not None:
            pad_id = self.tokenizer.convert_tokens_to_ids(pad_token)
            if pad_id is None or (pad_id == self.tokenizer.unk_token_id
                                  and pad_token != self.tokenizer.unk_token):
                raise ValueError(f"pad_token {pad_token!r} is not in the tokenizer's vocabulary")
            return int(pad_id)
        config_pad = getattr(self.model.config, "pad_token_id", None)
        if isinstance(config_pad, int):
            return config_pad
        return self.tokenizer.pad_token_id

    def _ids(self, unit: Unit) -> list[int]:
        context, reply = unit.payload
        x = reward_input(self.tokenizer, self.encoder, context, reply, self.max_length)
        if x.context_cut or x.reply_cut:
            self.truncated += 1
            self.truncated_keys.add(unit.key)
        return x.ids if self.encoder else strip_pad(x.ids, self.pad_id)

    def encode(self, units: list[Unit]) -> Shared:
        context = units[0].payload[0]
        full = [self._ids(u) for u in units]
        if not self.prefix_sharing:
            return Shared([], full)
        hint = chat_ids(self.tokenizer, context, None)
        prefix, suffixes = split_shared_prefix(full, hint)
        return Shared(prefix, suffixes)

    def outputs(self, seqs: list[list[int]]) -> torch.Tensor:
        """The reward output (all its columns) of whole token sequences through the
        model's own forward: right padding, or one at a time for a model without a pad
        token. Shape [n, outputs]."""
        if self.pad_id is None and len(seqs) > 1:
            return torch.cat([self.outputs([s]) for s in seqs])
        width = max(len(s) for s in seqs)
        dev = self.model.device
        ids = torch.full((len(seqs), width), self.fill_id, dtype=torch.long, device=dev)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        extra = {} if self.sep_id is None else {
            "token_type_ids": token_types(ids, self.sep_id)}
        return reward_field(self.model(input_ids=ids, attention_mask=mask, **extra),
                            self.reward_output)

    @torch.inference_mode()
    def run(self, items: list[Shared]) -> list[np.ndarray]:
        with self.runtime.autocast():
            if not self.prefix_sharing:  # whole sequences through the model's own forward
                scores = self.outputs([i.prefix + s for i in items
                                       for s in i.suffixes])[:, self.output_index]
            else:
                hidden = last_hidden_states(self.backbone, [(i.prefix, i.suffixes)
                                                            for i in items], self.fill_id)
                scores = self.head(hidden)[:, self.output_index]
        return list(scores.float().cpu().numpy()[:, None])


def _has_head(path: str) -> bool:
    """True when a folder's config names a sequence-classification architecture."""
    import json
    from pathlib import Path

    config = Path(path) / "config.json"
    if not config.exists():
        return True  # hub id: let transformers decide
    archs = json.loads(config.read_text()).get("architectures") or []
    return any("SequenceClassification" in a for a in archs)
