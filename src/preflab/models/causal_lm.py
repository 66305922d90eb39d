"""Loading a causal LM as a policy (LoRA via peft, dropout off) and fitting lengths to it."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import torch

from preflab.models.runtime import Runtime

log = logging.getLogger(__name__)


class PolicySettings(Protocol):
    """What loading a policy reads from a training config (e.g. ``PolicyConfig``)."""

    device: str
    lora: bool
    lora_r: int
    lora_alpha: int
    lora_targets: list[str] | None
    lora_layers: list[int] | None
    gradient_checkpointing: bool
    seed: int


def load_policy(name: str, config: PolicySettings, trainable: bool = True) -> tuple[Any, Any]:
    """(causal LM in fp32 with dropout off, tokenizer with a pad token)."""
    from preflab.models.offline import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is always masked here
    model = load_causal_lm(name, dtype=torch.float32)
    device = Runtime(device=config.device).torch_device()
    model.to(device)
    if trainable and config.lora:
        model = add_lora(model, config)
    for module in model.modules():  # as TRL: dropout would make the log-ratios noisy
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    if trainable and config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.lora:
            model.enable_input_require_grads()
    return model, tokenizer


def add_lora(model: Any, config: PolicySettings) -> Any:
    """`model` wrapped with seeded LoRA adapters (peft) as `config` sets them."""
    from peft import LoraConfig, TaskType, get_peft_model

    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=config.lora_r,
                      lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=config.lora_targets or "all-linear",
                      layers_to_transform=config.lora_layers)
    torch.manual_seed(config.seed)  # the adapters' initialisation
    return get_peft_model(model, lora)


def fit_max_length(model: Any, max_length: int) -> int:
    """`max_length` capped at the positions the model has (absolute position
    embeddings fail past them)."""
    config = getattr(model, "config", None)
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions",
                                                                          None)
    if limit and max_length > limit:
        log.info("max length %d capped at the model's %d positions", max_length, limit)
        return int(limit)
    return max_length
