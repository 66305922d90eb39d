"""Recipe: train a scalar reward model on preference pairs.

setup -> (optional preference-model pretraining on a second comparison set) ->
fine-tune -> save a standard ``AutoModelForSequenceClassification`` folder.

The model is built by :mod:`preflab.models.reward_base` (a decoder read at the last
token, a [CLS] cross-encoder or a bi-encoder; fully fine-tuned, partly frozen
(`train_layers`) or with LoRA adapters merged at the end). The loop is the
transformers ``Trainer`` (checkpoints, resume, progress, seeding;
:mod:`preflab.train.trainer_run`); only the loss is ours, since TRL's
``RewardTrainer`` has neither soft labels nor per-pair weights.

A decoder base runs each pair's prompt once (:mod:`preflab.models.prefix_rewards`).
The saved model is a standard one, scored the same by a plain forward
(``config.share_prefix`` off: whole rows; ``benchmarks/rm_throughput.py`` measures it
against TRL).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer

from preflab.data.pair import PreferencePair
from preflab.models.bi_encoder import MODEL_TYPE as BI_ENCODER
from preflab.models.prefix_rewards import reward_body_and_head, shared_prefix_rewards
from preflab.models.reward_base import load_base, prepare_trainable, save_reward_model
from preflab.models.reward_folder import SUMMARY
from preflab.models.runtime import Runtime
from preflab.models.text_pair import type_separator
from preflab.settings import write_config
from preflab.train.config import RewardConfig
from preflab.train.losses import reward_loss
from preflab.train.rm_data import PairCollator, RewardExample, build_examples
from preflab.train.trainer_run import save_summary, train_and_save, trainer_arguments

log = logging.getLogger(__name__)


def check_last_tokens(examples: list[RewardExample], pad_id: int, encoder: bool,
                      source: str) -> None:
    """A decoder reads its reward at the last token that is not padding: a sequence that
    ends with the pad token would be read elsewhere by every standard loader."""
    if encoder:
        return
    bad = [e.id for e in examples if pad_id in (e.chosen_ids[-1], e.rejected_ids[-1])]
    if bad:
        raise ValueError(f"{source}: {len(bad)} sequences end with the pad token (first: pair "
                         f"{bad[0]}); AutoModelForSequenceClassification would read their "
                         "reward one token early. Choose another --pad-token.")


class PairwiseRewardTrainer(Trainer):
    """Trainer whose batches are B chosen rows then B rejected rows and whose loss is
    :func:`preflab.train.losses.reward_loss` (Bradley-Terry, or with `soft` the
    cross-entropy against each pair's p_chosen), per-pair weights and margins."""

    soft = False

    def __init__(self, *args: Any, soft: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if soft is not None:
            self.soft = soft

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        p, w, m = inputs.pop("p_chosen"), inputs.pop("weight"), inputs.pop("margin")
        if "prefix_ids" in inputs:  # the prompt once, both replies against its KV cache
            r = shared_prefix_rewards(model, inputs).view(-1, 2)
            r_c, r_r = r[:, 0], r[:, 1]
        else:
            r = model(**inputs).logits[:, 0].float()
            r_c, r_r = r[:len(p)], r[len(p):]
        loss = reward_loss(r_c, r_r, p if self.soft else None, w, m)
        return (loss, {"r_chosen": r_c, "r_rejected": r_r}) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """Batches of pairs of similar length (less padding), shuffled by the seeded
        global generator, which checkpoints save and resume restores."""
        from transformers.trainer_pt_utils import LengthGroupedSampler

        data = train_dataset if train_dataset is not None else self.train_dataset
        size = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return LengthGroupedSampler(size, lengths=[
            max(len(e.chosen_ids), len(e.rejected_ids)) for e in data])


def reward_examples(pairs: list[PreferencePair], tokenizer: Any, encoder: bool,
                    config: RewardConfig, source: str) -> tuple[list[RewardExample], Any]:
    """The pairs tokenized for training, checked (the last tokens, --margin's labels),
    and the tokenization report."""
    examples, report = build_examples(
        pairs, tokenizer, encoder, config.max_length, labels=config.labels,  # type: ignore[arg-type]
        source=source, subset_weights=config.subset_weights, weight_key=config.weight_key,
        margin=config.margin)
    check_last_tokens(examples, tokenizer.pad_token_id, encoder, source)
    if report.reply_truncated:
        log.warning("%s: %d replies are longer than --max-length %d on their own; the "
                    "model reads only part of them", source, report.reply_truncated,
                    config.max_length)
    if report.labels == "soft" and config.margin:
        raise ValueError("--margin applies to hard labels only")
    return examples, report


def train_stage(pairs: list[PreferencePair], out: Path, config: RewardConfig,
                epochs: float, source: str, resume: bool = True,
                callbacks: list[Any] | None = None) -> dict[str, Any]:
    """One training run from `config.base` into `out` (a model folder); `callbacks` are
    ``transformers.TrainerCallback`` objects."""
    Runtime(device=config.device, threads=config.threads).apply_threads()
    model, tokenizer, encoder = load_base(config)
    bi_encoder = model.config.model_type == BI_ENCODER
    examples, report = reward_examples(pairs, tokenizer, encoder, config, source)
    sep_id = type_separator(tokenizer, model.config) if encoder else None
    model = prepare_trainable(model, config)
    args = trainer_arguments(out, config, config.lr(encoder, bi_encoder), epochs,
                             logging_steps=5)
    share = config.share_prefix and reward_body_and_head(model) is not None
    trainer = PairwiseRewardTrainer(model=model, args=args, train_dataset=examples,
                                    data_collator=PairCollator(tokenizer.pad_token_id, sep_id,
                                                               share_prefix=share),
                                    callbacks=callbacks, soft=report.labels == "soft")

    def save(model: Any) -> None:
        model.config.pad_token_id = tokenizer.pad_token_id
        save_reward_model(model, tokenizer, out)

    run = train_and_save(trainer, out, resume, config.lora, save)
    return {
        "data": source, "n_pairs": report.n_pairs, "labels": report.labels,
        "head": "bi-encoder" if bi_encoder else "cls" if encoder else "last-token",
        "share_prefix": share, "learning_rate": args.learning_rate, "epochs": epochs,
        "steps": run.steps, "train_loss": round(run.train_loss, 4),
        "trainable_parameters": run.trainable_parameters, "seconds": run.seconds,
        "resumed_from": run.resumed_from, "tokens": asdict(report),
        "loss_curve": [{"step": h["step"], "loss": h["loss"]} for h in run.log],
    }


def train_rm(data: str | Path, out: str | Path, config: RewardConfig | None = None,
             resume: bool = True, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train a reward model on the pairs in `data` (the first ``config.limit``, a
    seeded sample of ``config.sample`` of them); the model lands in `out`.

    With ``config.pmp`` the model first trains ``config.pmp_epochs`` on that second
    comparison set (preference-model pretraining, saved in ``out/pmp``), then
    fine-tunes on `data`. An interrupted run resumes from its last checkpoint.
    Writes ``preflab-train.json`` (config, tokenization report, loss curve).
    """
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs

    config = config or RewardConfig()
    out = Path(out)
    write_config(config, out)
    pairs = list(iter_pairs(load_pairs(data)))
    pairs = sample_pairs(pairs[:config.limit] if config.limit is not None else pairs,
                         config.sample, config.seed)
    stages = []
    done = out / "pmp" / SUMMARY
    if config.pmp and resume and done.exists():  # an interrupted fine-tune keeps its PMP
        stages.append(json.loads(done.read_text())["stages"][0])
    elif config.pmp:
        pmp_config = replace(config, pmp=None, labels="auto")
        stage = {"stage": "pmp", **train_stage(list(iter_pairs(load_pairs(config.pmp))),
                                               out / "pmp", pmp_config, config.pmp_epochs,
                                               config.pmp, resume, callbacks)}
        write_train_summary(out / "pmp", config.pmp, pmp_config, [stage])
        stages.append(stage)
    tune = replace(config, base=str(out / "pmp")) if config.pmp else config
    stages.append({"stage": "fine-tune", **train_stage(pairs, out, tune, config.epochs,
                                                       str(data), resume, callbacks)})
    return write_train_summary(out, str(data), config, stages)


def write_train_summary(out: Path, data: str, config: RewardConfig,
                        stages: list[dict[str, Any]]) -> dict[str, Any]:
    """``preflab-train.json`` beside the model: its config (which reproduces the run)
    and what each training stage did."""
    return save_summary(out, {"model": str(out), "data": data, "config": asdict(config),
                              "stages": stages})

