"""Supervised fine-tuning on the chosen replies: the initial policy and DPO's reference.

Loss: the mean negative log-likelihood of the reply tokens (the chat template's
end-of-turn tokens included); prompt tokens are context only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from preflab.data.pair import PreferencePair
from preflab.models.causal_lm import fit_max_length, load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.logps import collate_policy, reply_logps
from preflab.settings import write_config
from preflab.train.recipe import (
    PolicyConfig,
    PolicyTrainer,
    examples_tokens,
    run_trainer,
    training_args,
    write_summary,
)


class PreflabSFTTrainer(PolicyTrainer):
    """Trainer whose loss is the mean negative log-likelihood of the reply tokens (the
    prompt is context only). Not TRL's ``SFTTrainer``."""

    def compute_loss(self, model: Any, inputs: dict[str, torch.Tensor],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        inputs.pop("p_chosen")
        # gradient checkpointing runs without a KV cache: no prefix sharing then
        sums, n = reply_logps(model, inputs, not self.args.gradient_checkpointing)
        loss = -sums.sum() / n.sum()
        return (loss, {}) if return_outputs else loss


def train_sft(data: str | Path | list[PreferencePair], out: str | Path,
              config: PolicyConfig | None = None, resume: bool = True,
              callbacks: list[Any] | None = None, side: str | None = None,
              source: str | None = None, lines: list[int] | None = None) -> dict[str, Any]:
    """Fine-tune ``config.policy`` on the chosen reply of every pair in `data` (a pair
    file, prompt/chosen data of any format the readers take, or pairs in memory);
    ``config.side = "rejected"`` (or `side`, which sets it) trains on the rejected
    replies instead (RAHF's dispreferred model). `lines`: each in-memory pair's line
    in `source`, for error messages."""
    from preflab.data.read import iter_pairs, load_pairs

    config = config or PolicyConfig()
    if side is not None:
        config = replace(config, side=side)
    side = config.side
    out = Path(out)
    write_config(config, out)
    if isinstance(data, list):
        pairs, source = data, source or "<pairs>"
    else:
        pairs, source = list(iter_pairs(load_pairs(data))), source or str(data)
    if side == "rejected":
        pairs = [p.swapped() for p in pairs]
    model, tokenizer = load_policy(config.policy, config)
    max_length = fit_max_length(model, config.max_length)
    examples, report = build_policy_examples(pairs, tokenizer, max_length, source,
                                             with_rejected=False, lines=lines)
    trainer = PreflabSFTTrainer(
        model=model, args=training_args(out, config, "sft"), train_dataset=examples,
        data_collator=lambda b: collate_policy(b, tokenizer.pad_token_id, rejected=False),
        callbacks=callbacks, order=config.order)
    result = run_trainer(trainer, out, tokenizer, config, resume)
    tokens = examples_tokens(examples, rejected=False) * config.epochs
    return write_summary(out, source, config, "sft", report, result, side=side,
                         tokens_per_s=round(tokens / max(result["seconds"], 1e-9), 1))
