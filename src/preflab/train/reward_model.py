"""Recipe: train a scalar reward model on preference pairs.

setup -> (optional preference-model pretraining on a second comparison set) ->
fine-tune -> save a standard ``AutoModelForSequenceClassification`` folder.

The base is a causal LM (reward read at the last token, as in Anthropic's PMs) or
an encoder: a [CLS] cross-encoder head, or for a mean-pooled sentence encoder (the
minilm-l6 preset) a bi-encoder cosine head that starts from the zero-shot cosine
(``models/bi_encoder.py``). Fully fine-tuned, partly frozen
(`train_layers`) or with LoRA adapters merged at the end. The loop is the
transformers ``Trainer`` (checkpoints, resume, progress, seeding); only the loss is
ours, since TRL's ``RewardTrainer`` has neither soft labels nor per-pair weights.

A decoder base runs each pair's prompt once: the tokens chosen and rejected share
run left-padded and fill the KV cache, both replies run against copies of it with
gradients through the cache (as DPO does), sorted by length into chunks with
little padding, and the head reads only each reply's last token. The saved model is
a standard one, scored the same by a plain forward (``config.share_prefix`` off:
whole rows; ``benchmarks/rm_throughput.py`` measures it against TRL).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainingArguments

from preflab.data.pair import PreferencePair
from preflab.engine.reward import token_types, type_separator
from preflab.models.batching import plan_batches
from preflab.models.bi_encoder import MODEL_TYPE as BI_ENCODER
from preflab.models.bi_encoder import register as register_bi_encoder
from preflab.models.forward import select_rows
from preflab.models.reward_folder import SUMMARY
from preflab.models.runtime import Runtime, is_encoder
from preflab.settings import write_config
from preflab.train.config import RewardConfig
from preflab.train.losses import reward_loss
from preflab.train.rm_data import PairCollator, RewardExample, build_examples

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


def load_base(config: RewardConfig) -> tuple[Any, Any, bool]:
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


def marks_pairs(tokenizer: Any) -> bool:
    """True when a text pair is written [CLS] a [SEP] b [SEP] with segment ids 0 then 1,
    which is how preflab's encoder batches find where the reply starts."""
    sep = tokenizer.sep_token_id
    try:
        enc = tokenizer("a", "b", return_token_type_ids=True)
    except (TypeError, ValueError, KeyError):
        return False
    if sep is None or sep not in enc["input_ids"]:
        return False
    found = token_types(torch.tensor([enc["input_ids"]]), sep)[0].tolist()
    return found == list(enc["token_type_ids"]) and 1 in found


def encoder_head(config: RewardConfig, path: str, base_config: Any, tokenizer: Any) -> str:
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


def prepare_trainable(model: Any, config: RewardConfig) -> Any:
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


def reward_body_and_head(model: Any) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(transformer body, scalar head) of a decoder sequence-classification model
    (through a peft wrapper), or None when it has no such plain layout."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if is_encoder(inner.config) or inner.config.model_type == BI_ENCODER:
        return None
    head = getattr(inner, "score", None)
    body = getattr(inner, "base_model", None)
    if head is None or body is None or body is inner:
        return None
    return body, head


def shared_prefix_rewards(model: Any, batch: dict[str, torch.Tensor],
                          max_waste: float = 1.3) -> torch.Tensor:
    """Rewards of the continuation rows of a :func:`~preflab.train.rm_data.shared_layout`
    batch (chosen, rejected of pair 0, then pair 1...).

    The prefixes run once, left-padded, and fill the KV cache. The replies, sorted by
    length, run in chunks whose padding stays within `max_waste`, each against the
    cache rows of its own prefix (gradients flow through the cache into the prefix).
    The head reads only each reply's last token, as
    ``AutoModelForSequenceClassification`` does on the whole sequence.
    """
    found = reward_body_and_head(model)
    if found is None:
        raise ValueError(f"{type(model).__name__}: not a decoder with a `score` head; "
                         "prefix sharing does not apply")
    body, head = found
    pids, pmask = batch["prefix_ids"], batch["prefix_mask"]
    cids, cmask = batch["cont_ids"], batch["cont_mask"]
    k = cids.shape[0] // pids.shape[0]
    positions = (pmask.cumsum(-1) - 1).clamp(min=0)
    cache = body(input_ids=pids, attention_mask=pmask, position_ids=positions,
                 use_cache=True).past_key_values
    if cache is None or cache.get_seq_length() == 0:
        raise RuntimeError("the model returned no KV cache (gradient checkpointing?); "
                           "set share_prefix = false")
    plen = pmask.sum(1)
    lengths = cmask.sum(1).tolist()
    chunks = plan_batches(lengths, sort_key=lambda n: (n,),
                          cost=lambda ns: (len(ns) * max(ns), sum(ns)),
                          max_tokens=2**62, max_rows=len(lengths), max_waste=max_waste)
    rewards, order = [], []
    for chunk in chunks:
        rows = torch.tensor(chunk, device=cids.device)
        owners = rows // k
        width = max(lengths[j] for j in chunk)
        ids, mask = cids[rows, :width], cmask[rows, :width]
        cpos = plen[owners][:, None] + (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = body(input_ids=ids, attention_mask=torch.cat([pmask[owners], mask], 1),
                      position_ids=cpos, past_key_values=select_rows(cache, owners),
                      use_cache=True).last_hidden_state
        last = hidden[torch.arange(len(chunk), device=ids.device), mask.sum(1) - 1]
        rewards.append(head(last)[:, 0].float())
        order += chunk
    out = torch.cat(rewards)
    return out[torch.argsort(torch.tensor(order, device=out.device))]


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


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def train_stage(pairs: list[PreferencePair], out: Path, config: RewardConfig,
                epochs: float, source: str, resume: bool = True,
                callbacks: list[Any] | None = None) -> dict[str, Any]:
    """One training run from `config.base` into `out` (a model folder); `callbacks` are
    ``transformers.TrainerCallback`` objects."""
    runtime = Runtime(device=config.device, threads=config.threads)
    runtime.apply_threads()
    model, tokenizer, encoder = load_base(config)
    bi_encoder = model.config.model_type == BI_ENCODER
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
    sep_id = type_separator(tokenizer, model.config) if encoder else None
    model = prepare_trainable(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    gpu = runtime.torch_device().type == "cuda"
    args = TrainingArguments(
        output_dir=str(out / CHECKPOINTS), num_train_epochs=epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr(encoder, bi_encoder),
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        lr_scheduler_type="linear", logging_steps=5, save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=1, seed=config.seed,
        data_seed=config.seed, report_to="none", remove_unused_columns=False,
        label_names=[], use_cpu=not gpu, bf16=gpu and config.precision == "bf16",
        fp16=gpu and config.precision == "fp16", dataloader_num_workers=0,
        disable_tqdm=False)
    share = config.share_prefix and reward_body_and_head(model) is not None
    trainer = PairwiseRewardTrainer(model=model, args=args, train_dataset=examples,
                                    data_collator=PairCollator(tokenizer.pad_token_id, sep_id,
                                                               share_prefix=share),
                                    callbacks=callbacks, soft=report.labels == "soft")
    checkpoint = _last_checkpoint(out / CHECKPOINTS) if resume else None
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - started
    model = trainer.model
    if config.lora:
        model = model.merge_and_unload()
    model.config.pad_token_id = tokenizer.pad_token_id
    save_reward_model(model, tokenizer, out)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # the run finished: not needed
    return {
        "data": source, "n_pairs": report.n_pairs, "labels": report.labels,
        "head": "bi-encoder" if bi_encoder else "cls" if encoder else "last-token",
        "share_prefix": share,
        "learning_rate": args.learning_rate,
        "epochs": epochs, "steps": result.global_step, "train_loss": round(result.training_loss, 4),
        "trainable_parameters": trainable, "seconds": round(seconds, 1),
        "resumed_from": checkpoint, "tokens": asdict(report),
        "loss_curve": [{"step": h["step"], "loss": h["loss"]}
                       for h in trainer.state.log_history if "loss" in h],
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
    summary = {"model": str(out), "data": data, "config": asdict(config), "stages": stages}
    (out / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    return summary

