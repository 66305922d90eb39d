"""What SFT and DPO share: the run's settings, loading the policy (LoRA via peft),
the transformers Trainer they both extend, and saving a standard model folder."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from preflab.models.examples import PolicyExample
from preflab.models.runtime import Runtime
from preflab.train.config import PolicyConfig

__all__ = ["CHECKPOINTS", "SUMMARY", "PolicyConfig", "PolicyTrainer", "examples_tokens",
           "last_checkpoint", "mixed_precision", "run_trainer", "training_args",
           "write_summary"]

CHECKPOINTS = "checkpoints"
SUMMARY = "preflab-train.json"
log = logging.getLogger(__name__)


def mixed_precision(config: PolicyConfig) -> torch.dtype | None:
    """The autocast dtype training runs under (bf16 / fp16 on a GPU), else None."""
    if Runtime(device=config.device).torch_device().type != "cuda":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)


def training_args(out: Path, config: PolicyConfig, stage: str) -> TrainingArguments:
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


class PolicyTrainer(Trainer):
    """A transformers Trainer over :class:`PolicyExample` lists: length-grouped (or
    sequential, ``order="sequential"``) batches, extra per-step statistics (see
    :meth:`record`) averaged into its logs. Subclasses define ``compute_loss``."""

    order = "length"

    def __init__(self, *args: Any, order: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if order is not None:
            self.order = order
        self.loss_is_scaled_for_ga = False  # compute_loss returns a batch mean
        self.stats: dict[str, list[float]] = {}

    def record(self, **values: float) -> None:
        """Statistics of this step, averaged over the steps of the next log line."""
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
