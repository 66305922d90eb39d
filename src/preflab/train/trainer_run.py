"""One transformers-``Trainer`` run, shared by every recipe built on it (SFT, DPO, SCIT,
RAHF, the reward model): its arguments, resuming from the last checkpoint, and the
end of the run (LoRA merged, a standard model folder saved, the checkpoints removed,
``preflab-train.json`` written)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from preflab.models.reward_folder import SUMMARY
from preflab.models.runtime import Runtime

if TYPE_CHECKING:
    from transformers import TrainingArguments

CHECKPOINTS = "checkpoints"


class TrainerSettings(Protocol):
    """What the Trainer's arguments read from a training config (``PolicyConfig``,
    ``RewardConfig``)."""

    batch_size: int
    grad_accum: int
    warmup_ratio: float
    weight_decay: float
    save_steps: int
    seed: int
    device: str
    precision: str


def trainer_arguments(out: Path, config: TrainerSettings, learning_rate: float,
                      epochs: float, logging_steps: int) -> TrainingArguments:
    """The Trainer's arguments: checkpoints in ``out/checkpoints`` (the last one kept),
    a linear schedule, mixed precision only on a GPU."""
    from transformers import TrainingArguments

    gpu = Runtime(device=config.device).torch_device().type == "cuda"
    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS), num_train_epochs=epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum, learning_rate=learning_rate,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        lr_scheduler_type="linear", logging_steps=logging_steps, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=1, seed=config.seed,
        data_seed=config.seed, report_to="none", remove_unused_columns=False, label_names=[],
        use_cpu=not gpu, bf16=gpu and config.precision == "bf16",
        fp16=gpu and config.precision == "fp16", dataloader_num_workers=0,
        disable_tqdm=False)


def last_checkpoint(out: Path) -> str | None:
    """The latest checkpoint of an interrupted run into `out`, else None."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


@dataclass
class TrainedRun:
    """What a finished run did."""

    steps: int
    train_loss: float
    seconds: float
    resumed_from: str | None  # the checkpoint it resumed from
    trainable_parameters: int
    log: list[dict[str, Any]]  # the Trainer's log lines with a loss


def train_and_save(trainer: Any, out: Path, resume: bool, lora: bool,
                   save: Callable[[Any], None]) -> TrainedRun:
    """Train (resuming from the last checkpoint unless `resume` is off), merge LoRA
    adapters, `save` the model into `out`, and remove the checkpoints."""
    checkpoint = last_checkpoint(out) if resume else None
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    model = trainer.model
    if lora:
        model = model.merge_and_unload()
    save(model)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # the run finished: not needed
    return TrainedRun(steps=result.global_step, train_loss=result.training_loss,
                      seconds=round(seconds, 1), resumed_from=checkpoint,
                      trainable_parameters=trainable,
                      log=[h for h in trainer.state.log_history if "loss" in h])


def save_summary(out: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``preflab-train.json`` beside the model (its config reproduces the run)."""
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    return summary
