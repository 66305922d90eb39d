"""Direct preference optimisation and its noise-robust and soft-label variants.

The recipe: tokenize pairs with the prompt shared (:mod:`preflab.models.examples`),
compute the reference log-probs once and cache them on disk, then train with a
transformers Trainer whose loss runs each pair's prompt once for both replies
(:func:`preflab.models.logps.reply_logps`) and applies a loss of
:func:`preflab.train.losses.dpo_loss`. ``soft`` uses each pair's ``p_chosen`` as
its target, which none of TRL's losses does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from preflab.data.messages import text_hash
from preflab.models.causal_lm import fit_max_length, load_policy
from preflab.models.examples import PolicyExample, build_policy_examples
from preflab.models.logps import collate_policy, reference_logps, reply_logps
from preflab.models.runtime import fingerprint, model_fingerprint
from preflab.settings import write_config
from preflab.train.losses import dpo_loss
from preflab.train.recipe import (
    PolicyConfig,
    PolicyTrainer,
    examples_tokens,
    mixed_precision,
    run_trainer,
    training_args,
    write_summary,
)

log = logging.getLogger(__name__)


REF_CACHE = "ref-logps.sqlite"


def ref_fingerprint(reference: str, precision: str = "fp32") -> str:
    """The reference model's weights and precision: the namespace of its cached values."""
    from preflab.models.offline import resolve

    return fingerprint("dpo-ref-v2", model_fingerprint(reference, resolve(reference)),
                       precision)


def ref_key(prefix: list[int], first: list[int], first_n: int, second: list[int],
            second_n: int) -> str:
    """One pair's token ids, its first reply before its second."""
    return text_hash("dpo-ref", prefix, first, first_n, second, second_n)


def check_same_vocabulary(reference_tokenizer: Any, policy: str) -> None:
    """The reference reads the policy's token ids: their vocabularies must agree."""
    from preflab.models.offline import load_tokenizer

    if reference_tokenizer.get_vocab() != load_tokenizer(policy).get_vocab():
        raise ValueError(f"the reference model's tokenizer differs from the policy's "
                         f"({policy}); DPO needs both to read the same token ids")


def attach_reference(examples: list[PolicyExample], reference: str, config: PolicyConfig,
                     model: Any = None, pad_id: int = 0) -> dict[str, Any]:
    """Fill ``ref_chosen`` / ``ref_rejected`` of every pair, computing only the pairs
    the disk cache lacks (with `model` when given, the policy before training).

    The cache (``$PREFLAB_CACHE/ref-logps.sqlite``) is keyed per pair by the
    reference's weights and precision and the pair's token ids; a pair whose label
    was flipped reads the entry of its unflipped self, so DPO on a cleaned copy of a
    data set reuses the original's reference pass. Each batch is saved as it
    finishes: an interrupted pass resumes where it stopped."""
    from preflab.engine.cache import ScoreCache
    from preflab.models.offline import cache_dir

    dtype = mixed_precision(config)
    fp = ref_fingerprint(reference, str(dtype or "fp32"))
    path = cache_dir() / REF_CACHE
    cache = ScoreCache(path)
    keys = [ref_key(e.prefix, e.chosen_ids, e.chosen_n, e.rejected_ids, e.rejected_n)
            for e in examples]
    swapped = [ref_key(e.prefix, e.rejected_ids, e.rejected_n, e.chosen_ids, e.chosen_n)
               for e in examples]
    found = cache.get_texts(fp, keys + swapped)
    missing = []
    for i, e in enumerate(examples):
        if keys[i] in found:
            e.ref_chosen, e.ref_rejected = json.loads(found[keys[i]])
        elif swapped[i] in found:
            e.ref_rejected, e.ref_chosen = json.loads(found[swapped[i]])
        else:
            missing.append(i)
    try:
        if missing:
            compute_missing(examples, missing, keys, cache, fp, reference, config, model,
                            pad_id, dtype)
    finally:
        cache.close()
    return {"reference": reference, "cache": str(path),
            "from_cache": len(examples) - len(missing), "computed": len(missing)}


def compute_missing(examples: list[PolicyExample], missing: list[int], keys: list[str],
                    cache: Any, fp: str, reference: str, config: PolicyConfig, model: Any,
                    pad_id: int, dtype: Any) -> None:
    """Compute the reference log-probs of ``examples[i] for i in missing``, saving each
    batch to `cache` as it finishes."""
    if model is None:  # a separate reference model, loaded for this pass only
        model, tok = load_policy(reference, config, trainable=False)
        check_same_vocabulary(tok, config.policy)
        pad_id = tok.pad_token_id

    def save(idx: list[int], values: list[tuple[float, float]]) -> None:
        for j, (c, r) in zip(idx, values, strict=True):
            examples[missing[j]].ref_chosen, examples[missing[j]].ref_rejected = c, r
        cache.put_texts(fp, [(keys[missing[j]], json.dumps([c, r]))
                             for j, (c, r) in zip(idx, values, strict=True)])

    reference_logps(model, [examples[i] for i in missing], pad_id,
                    batch_size=config.batch_size, share_prefix=config.share_prefix,
                    autocast=dtype, on_batch=save)


class PreflabDPOTrainer(PolicyTrainer):
    """Trainer whose loss is one of the DPO family (``config.loss``) over shared-prefix
    log-probs; each example carries its reference log-probs (:func:`attach_reference`).
    Not TRL's ``DPOTrainer``: soft labels, noise-robust losses, one prompt pass."""

    config: PolicyConfig

    def __init__(self, *args: Any, config: PolicyConfig | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = config or PolicyConfig()

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        c = self.config
        ref, p = inputs.pop("ref_logps"), inputs.pop("p_chosen")
        share = c.share_prefix and not c.gradient_checkpointing
        sums, n = reply_logps(model, inputs, share)
        ratio = sums - ref
        rc, rr = ratio[0::2], ratio[1::2]
        per = dpo_loss(rc, rr, c.loss, c.beta, c.eps, p.float(), n[0::2], n[1::2])
        loss = per.mean()
        with torch.no_grad():
            self.record(**{"rewards/chosen": (c.beta * rc).mean(),
                           "rewards/rejected": (c.beta * rr).mean(),
                           "rewards/accuracy": (rc > rr).float().mean(),
                           "rewards/margin": (c.beta * (rc - rr)).mean(),
                           "logps/chosen": sums[0::2].mean(),
                           "logps/rejected": sums[1::2].mean()})
        return (loss, {"logratio_chosen": rc}) if return_outputs else loss


def make_dpo_trainer(pairs: list[Any], out: Path, config: PolicyConfig, source: str,
                     callbacks: list[Any] | None = None
                     ) -> tuple[PreflabDPOTrainer, Any, Any, dict[str, Any]]:
    """(trainer, tokenizer, tokenization report, reference info), reference attached."""
    if config.loss == "soft" and all(p.p_chosen == 1.0 for p in pairs):
        raise ValueError(f"{source}: --loss soft needs soft labels (p_chosen), but every pair "
                         "has p_chosen = 1; use --loss sigmoid, or label the pairs first "
                         "(preflab label --write-data, or an audit)")
    if config.loss != "soft" and any(p.p_chosen != 1.0 for p in pairs):
        n = sum(p.p_chosen != 1.0 for p in pairs)
        raise ValueError(f"{source}: {n} pairs carry soft labels (p_chosen != 1) that "
                         f"--loss {config.loss} would ignore; use --loss soft")
    model, tokenizer = load_policy(config.policy, config)
    max_length = fit_max_length(model, config.max_length)
    examples, report = build_policy_examples(pairs, tokenizer, max_length, source)
    if report.reply_truncated:
        log.warning("%s: %d replies do not fit --max-length %d and are cut at the end",
                    source, report.reply_truncated, config.max_length)
    reference = config.reference or config.policy
    ref_info = attach_reference(examples, reference, config,
                                None if config.reference else model, tokenizer.pad_token_id)
    trainer = PreflabDPOTrainer(
        model=model, args=training_args(out, config, "dpo"), train_dataset=examples,
        data_collator=lambda b: collate_policy(b, tokenizer.pad_token_id),
        callbacks=callbacks, config=config, order=config.order)
    return trainer, tokenizer, report, ref_info


def train_dpo(data: str | Path, out: str | Path, config: PolicyConfig | None = None,
              resume: bool = True, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """DPO (or a variant, ``config.loss``) of ``config.policy`` on the pairs in `data`;
    the aligned model lands in `out` with ``preflab-train.json``."""
    from preflab.data.read import iter_pairs, load_pairs

    config = config or PolicyConfig()
    if config.gradient_checkpointing and config.share_prefix:
        log.warning("gradient checkpointing runs without a KV cache: prefix sharing is off")
        config = replace(config, share_prefix=False)
    out = Path(out)
    write_config(config, out)
    pairs = list(iter_pairs(load_pairs(data)))
    trainer, tokenizer, report, ref_info = make_dpo_trainer(pairs, out, config, str(data),
                                                            callbacks)
    result = run_trainer(trainer, out, tokenizer, config, resume)
    tokens = examples_tokens(trainer.train_dataset) * config.epochs
    return write_summary(out, str(data), config, "dpo", report, result, reference=ref_info,
                         tokens_per_s=round(tokens / max(result["seconds"], 1e-9), 1))
