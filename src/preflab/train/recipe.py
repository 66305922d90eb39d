"""What SFT and DPO share: the run's settings, loading the policy (LoRA via peft),
the transformers Trainer they both extend, and saving a standard model folder."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from preflab.models.examples import PolicyExample
from preflab.models.runtime import Runtime
from preflab.train.config import config_from_file

CHECKPOINTS = "checkpoints"
SUMMARY = "preflab-train.json"
log = logging.getLogger(__name__)


@dataclass
class PolicyConfig:
    """Everything that defines an SFT or DPO run (``--config FILE``, TOML or JSON, or
    a model's preflab-train.json, reproduces it)."""

    policy: str = "smollm2-135m-instruct"
    reference: str | None = None  # DPO reference model; None: the policy before training
    loss: str = "sigmoid"  # DPO: sigmoid | cdpo | robust | ipo | soft
    beta: float = 0.1
    eps: float = 0.1  # cdpo label smoothing / robust flip rate
    max_length: int = 1024
    epochs: float = 1.0
    learning_rate: float | None = None  # None: see lr()
    batch_size: int = 8  # pairs (DPO) or replies (SFT) per step
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] | None = None  # None: every linear layer of the blocks
    lora_layers: list[int] | None = None  # 0-based blocks with adapters; None: all
    share_prefix: bool = True  # run each pair's prompt once (DPO)
    gradient_checkpointing: bool = False
    order: str = "length"  # length: batches of similar length, shuffled | sequential
    seed: int = 0
    save_steps: int = 50
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision on a GPU)
    threads: int | None = None

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> PolicyConfig:
        return config_from_file(cls, path, **overrides)

    def lr(self, stage: str) -> float:
        """Default learning rates: SFT 2e-5 (LoRA 2e-4), DPO 5e-6 (LoRA 5e-5)."""
        if self.learning_rate is not None:
            return self.learning_rate
        base = 2e-5 if stage == "sft" else 5e-6
        return base * 10 if self.lora else base






def mixed_precision(config: PolicyConfig) -> torch.dtype | None:
    """The autocast dtype training runs under (bf16 / fp16 on a GPU), else None."""
    if Runtime(device=config.device).torch_device().type != "cuda":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)




def training_args(out: Path, config: PolicyConfig, stage: str) -> Any:
    from transformers import TrainingArguments

    gpu = Runtime(device=config.device).torch_device().type == "cuda"
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=config.lr(stage),
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        lr_scheduler_type="linear", logging_steps=1, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=1, seed=config.seed,
        data_seed=config.seed, report_to="none", remove_unused_columns=False, label_names=[],
        use_cpu=not gpu, bf16=gpu and config.precision == "bf16",
        fp16=gpu and config.precision == "fp16", dataloader_num_workers=0,
        disable_tqdm=False)


def policy_trainer_class() -> type:
    """A transformers Trainer over :class:`PolicyExample` lists: length-grouped (or
    sequential) batches, extra per-step statistics in its logs."""
    from transformers import Trainer

    class PolicyTrainer(Trainer):
        order = "length"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.loss_is_scaled_for_ga = False  # compute_loss returns a batch mean
            self.stats: dict[str, list[float]] = {}

        def record(self, **values: float) -> None:
            for k, v in values.items():
                self.stats.setdefault(k, []).append(float(v))

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            for k, v in self.stats.items():
                if v:
                    logs[k] = round(sum(v) / len(v), 6)
            self.stats = {}
            super().log(logs, start_time)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            from torch.utils.data import SequentialSampler
            from transformers.trainer_pt_utils import LengthGroupedSampler

            data = train_dataset if train_dataset is not None else self.train_dataset
            if self.order == "sequential":
                return SequentialSampler(data)
            size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(size, lengths=[e.tokens for e in data])

    return PolicyTrainer


def last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def run_trainer(trainer: Any, out: Path, tokenizer: Any, config: PolicyConfig,
                resume: bool) -> dict[str, Any]:
    """Train (resuming from the last checkpoint), save a standard model folder (LoRA
    merged), and return what happened."""
    checkpoint = last_checkpoint(out) if resume else None
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_disable()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {"steps": result.global_step, "train_loss": round(result.training_loss, 6),
            "seconds": round(seconds, 1), "resumed_from": checkpoint,
            "trainable_parameters": trainable,
            "log": history}


def write_summary(out: Path, data: str, config: PolicyConfig, stage: str,
                  report: Any, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    summary = {"stage": stage, "model": str(out), "data": data, "config": asdict(config),
               "tokens": report if isinstance(report, dict) else asdict(report), **extra,
               **result}
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    return summary


def examples_tokens(examples: list[PolicyExample], rejected: bool = True) -> int:
    """Tokens of one epoch counted as separate prompt+reply sequences."""
    if rejected:
        return sum(e.tokens for e in examples)
    return sum(len(e.prefix) + len(e.chosen_ids) for e in examples)
