"""What the policy recipes (SFT, DPO, SCIT, RAHF) share: the transformers Trainer they
extend, its arguments, running it to a standard model folder
(:mod:`preflab.train.trainer_run`) and their ``preflab-train.json``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from preflab.models.examples import PolicyExample
from preflab.models.runtime import Runtime
from preflab.train.config import PolicyConfig
from preflab.train.trainer_run import save_summary, train_and_save, trainer_arguments

__all__ = ["PolicyConfig", "PolicyTrainer", "examples_tokens", "mixed_precision",
           "run_trainer", "training_args", "write_summary"]


def mixed_precision(config: PolicyConfig) -> torch.dtype | None:
    """The autocast dtype training runs under (bf16 / fp16 on a GPU), else None."""
    if Runtime(device=config.device).torch_device().type != "cuda":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision)


def training_args(out: Path, config: PolicyConfig, stage: str) -> TrainingArguments:
    return trainer_arguments(out, config, config.lr(stage), config.epochs, logging_steps=1)


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


def run_trainer(trainer: Any, out: Path, tokenizer: Any, config: PolicyConfig,
                resume: bool) -> dict[str, Any]:
    """Train (resuming from the last checkpoint), save a standard model folder (LoRA
    merged), and return what happened."""

    def save(model: Any) -> None:
        if config.gradient_checkpointing:
            model.gradient_checkpointing_disable()
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    run = train_and_save(trainer, out, resume, config.lora, save)
    return {"steps": run.steps, "train_loss": round(run.train_loss, 6),
            "seconds": run.seconds, "resumed_from": run.resumed_from,
            "trainable_parameters": run.trainable_parameters, "log": run.log}


def write_summary(out: Path, data: str, config: PolicyConfig, stage: str,
                  report: Any, result: dict[str, Any], **extra: Any) -> dict[str, Any]:
    summary = {"stage": stage, "model": str(out), "data": data, "config": asdict(config),
               "tokens": report if isinstance(report, dict) else asdict(report), **extra,
               **result}
    return save_summary(out, summary)


def examples_tokens(examples: list[PolicyExample], rejected: bool = True) -> int:
    """Tokens of one epoch counted as separate prompt+reply sequences."""
    if rejected:
        return sum(e.tokens for e in examples)
    return sum(len(e.prefix) + len(e.chosen_ids) for e in examples)
