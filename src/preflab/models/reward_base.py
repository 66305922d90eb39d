"""Building a reward model: a base with a one-output head, made trainable (LoRA or
frozen layers), saved as a standard folder.

The base is a causal LM (reward read at the last token, as in Anthropic's PMs) or an
encoder: a [CLS] cross-encoder head, or for a mean-pooled sentence encoder (the
minilm-l6 preset) a bi-encoder cosine head that starts from the zero-shot cosine
(:mod:`preflab.models.bi_encoder`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Protocol

import torch

from preflab.models.bi_encoder import MODEL_TYPE as BI_ENCODER
from preflab.models.bi_encoder import register as register_bi_encoder
from preflab.models.runtime import is_encoder
from preflab.models.text_pair import marks_pairs


class RewardBaseSettings(Protocol):
    """What building a reward model reads from its settings (``RewardConfig``)."""

    base: str
    head: str
    cosine_scale: float
    pad_token: str | None
    seed: int
    lora: bool
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    train_layers: int | None


def load_base(config: RewardBaseSettings) -> tuple[Any, Any, bool]:
    """(model with a one-output head, tokenizer with a pad token, is_encoder)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from preflab.models.offline import load_pretrained, load_tokenizer, resolve

    tokenizer = load_tokenizer(config.base)
    if config.pad_token is not None:
        pad = tokenizer.eos_token if config.pad_token == "eos" else config.pad_token
        if pad is None or pad not in tokenizer.get_vocab():
            raise ValueError(f"--pad-token {config.pad_token!r} is not a token of "
                             f"{config.base}'s vocabulary")
        tokenizer.pad_token = pad
    if tokenizer.pad_token is None:
        raise ValueError(
            f"{config.base}: the tokenizer has no pad token, so batches cannot be padded and "
            "a sequence-classification model cannot find each sequence's last token. Pass "
            f"--pad-token TOKEN (e.g. --pad-token eos for {tokenizer.eos_token!r}).")
    path = resolve(config.base)
    register_bi_encoder()
    base_config = load_pretrained(AutoConfig, path)
    labels = getattr(base_config, "num_labels", 1)
    archs = base_config.architectures or []
    if any("SequenceClassification" in a for a in archs) and labels != 1:
        raise ValueError(f"{config.base} has a {labels}-output classification head; a reward "
                         "model needs one output")
    torch.manual_seed(config.seed)  # the new head is seeded
    if encoder_head(config, path, base_config, tokenizer) == "bi-encoder":
        model = load_bi_encoder(path, base_config, config.cosine_scale)
    else:
        model = load_pretrained(AutoModelForSequenceClassification, path, num_labels=1,
                                dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer, is_encoder(model.config)


def mean_pooled_sentence_encoder(path: str | Path) -> bool:
    """True for a sentence-transformers folder whose embedding is the mean of its tokens."""
    folder = Path(path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        pooling = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
        settings = json.loads((folder / pooling / "config.json").read_text())
    except (OSError, StopIteration, KeyError, ValueError):
        return False
    return bool(settings.get("pooling_mode_mean_tokens"))


def encoder_head(config: RewardBaseSettings, path: str, base_config: Any,
                 tokenizer: Any) -> str:
    """The head `config.head` asks for on this base ("cls" or "bi-encoder")."""
    if config.head not in ("auto", "cls", "bi-encoder"):
        raise ValueError(f"--head must be auto, cls or bi-encoder, got {config.head!r}")
    bi = base_config.model_type == BI_ENCODER  # a preflab bi-encoder (e.g. after --pmp)
    bert = (base_config.model_type == "bert"
            and "token_type_ids" in getattr(tokenizer, "model_input_names", ()))
    if config.head == "auto":
        return ("bi-encoder" if bi or (bert and mean_pooled_sentence_encoder(path)
                                       and marks_pairs(tokenizer)) else "cls")
    if config.head == "bi-encoder":
        if not (bi or bert):
            raise ValueError(f"--head bi-encoder needs a BERT encoder with segment ids; "
                             f"{config.base} is a {base_config.model_type}")
        if not bi and any("SequenceClassification" in a
                          for a in base_config.architectures or []):
            raise ValueError(f"{config.base} is already a [CLS] reward model; a bi-encoder "
                             "starts from a plain encoder")
        if not marks_pairs(tokenizer):
            raise ValueError(f"--head bi-encoder: {config.base}'s tokenizer does not mark the "
                             "two texts of a pair with segment ids, so context and reply "
                             "cannot be told apart")
    if config.head == "cls" and bi:
        raise ValueError(f"{config.base} is a bi-encoder reward model; use --head bi-encoder")
    return config.head


def load_bi_encoder(path: str, base_config: Any, cosine_scale: float = 10.0) -> Any:
    """A bi-encoder reward model from a BERT encoder (or a bi-encoder folder)."""
    from preflab.models.bi_encoder import (
        BiEncoderForSequenceClassification,
        BiEncoderRewardConfig,
    )

    if base_config.model_type == BI_ENCODER:
        return BiEncoderForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    dropped = ("model_type", "architectures", "transformers_version", "id2label", "label2id")
    settings = {k: v for k, v in base_config.to_dict().items() if k not in dropped}
    bi_config = BiEncoderRewardConfig(**{**settings, "num_labels": 1,
                                         "cosine_scale": cosine_scale})
    return BiEncoderForSequenceClassification.from_pretrained(path, config=bi_config,
                                                              dtype=torch.float32)


def save_reward_model(model: Any, tokenizer: Any, out: Path) -> None:
    """Save a standard folder; a bi-encoder also gets its code (``trust_remote_code``)."""
    from preflab.models import bi_encoder

    if model.config.model_type == bi_encoder.MODEL_TYPE:
        name = "modeling_preflab_bi_encoder"
        model.config.auto_map = {
            "AutoConfig": f"{name}.BiEncoderRewardConfig",
            "AutoModelForSequenceClassification": f"{name}.BiEncoderForSequenceClassification"}
        shutil.copyfile(bi_encoder.__file__, out / f"{name}.py")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _layers(model: Any) -> torch.nn.ModuleList:
    backbone = model.base_model
    for path in ("layers", "encoder.layer", "h", "transformer.h"):
        obj = backbone
        for name in path.split("."):
            obj = getattr(obj, name, None)
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the transformer layers of {type(model).__name__} to "
                     "freeze; leave --train-layers unset")


def _heads(model: Any) -> dict[str, torch.nn.Module]:
    """The scalar head (and an encoder's pooler) by name: trained even when frozen."""
    found = {}
    for name in ("score", "classifier", "pooler"):
        module = getattr(model, name, None) or getattr(model.base_model, name, None)
        if module is not None:
            found[name] = module
    return found


def prepare_trainable(model: Any, config: RewardBaseSettings) -> Any:
    """Apply LoRA or layer freezing; returns the model to train."""
    if config.lora and config.train_layers is not None:
        raise ValueError("choose --lora or --train-layers, not both")
    if config.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        # peft knows BERT's attention names, not our model type's: the same ones
        targets = ["query", "value"] if model.config.model_type == BI_ENCODER else None
        lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r,
                          lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          modules_to_save=list(_heads(model)), target_modules=targets)
        return get_peft_model(model, lora)
    if config.train_layers is not None:
        layers = _layers(model)
        if not 0 <= config.train_layers <= len(layers):
            raise ValueError(f"--train-layers must be in [0, {len(layers)}], got "
                             f"{config.train_layers}")
        keep = {id(p) for layer in layers[len(layers) - config.train_layers:]
                for p in layer.parameters()}
        keep |= {id(p) for h in _heads(model).values() for p in h.parameters()}
        norm = getattr(model.base_model, "norm", None)  # final norm of decoders
        if norm is not None and config.train_layers > 0:
            keep |= {id(p) for p in norm.parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    return model
