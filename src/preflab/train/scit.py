"""RAHF step 1, single model: supervised contrastive instruction tuning (SCIT).

Every pair is read twice: after the good instruction and after the bad one (in
front of the last user turn, :mod:`preflab.data.instructions`). The loss
(:func:`preflab.train.losses.scit_loss`) teaches the model to produce the chosen
reply after the good instruction and the rejected one after the bad instruction,
and to tell which instruction a reply matches. Each instructed prompt runs once for
both replies (prefix sharing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflab.data.instructions import BAD, GOOD, instructed_pair
from preflab.data.pair import PreferencePair
from preflab.errors import PairError
from preflab.models.causal_lm import fit_max_length, load_policy
from preflab.models.examples import PolicyExample, build_policy_examples
from preflab.models.logps import collate_policy, reply_logps
from preflab.train.losses import scit_loss
from preflab.train.recipe import (
    PolicyConfig,
    PolicyTrainer,
    run_trainer,
    training_args,
    write_summary,
)
from preflab.train.trainer_run import save_summary


@dataclass
class InstructedExample:
    """One pair under the good and under the bad instruction."""

    good: PolicyExample
    bad: PolicyExample

    @property
    def tokens(self) -> int:
        return self.good.tokens + self.bad.tokens


def instructed_examples(pairs: list[PreferencePair], tokenizer: Any, max_length: int,
                        source: str) -> tuple[list[InstructedExample], dict[str, Any]]:
    """Token ids of every pair under both instructions, and what tokenization did on
    each side (their contexts are the plain ones plus the instruction).

    Raises:
        PairError: a pair whose two instructed versions are the same tokens (the
            instruction was cut away: raise max_length).
    """
    from dataclasses import asdict

    good, good_report = build_policy_examples([instructed_pair(p, GOOD) for p in pairs],
                                              tokenizer, max_length, source)
    bad, bad_report = build_policy_examples([instructed_pair(p, BAD) for p in pairs],
                                            tokenizer, max_length, source)
    for i, (g, b) in enumerate(zip(good, bad, strict=True)):
        check_instructed(g, b, source, i + 1, max_length)
    return ([InstructedExample(g, b) for g, b in zip(good, bad, strict=True)],
            {"good": asdict(good_report), "bad": asdict(bad_report)})


def check_instructed(good: PolicyExample, bad: PolicyExample, source: str, line: int,
                     max_length: int) -> None:
    """Refuse a pair whose good- and bad-instruction inputs came out identical."""
    if good.prefix + good.chosen_ids == bad.prefix + bad.chosen_ids:
        raise PairError(source, line, "prompt", "the good and bad instructions were cut "
                        f"away by truncation to {max_length} tokens; raise --max-length",
                        unit="pair")


class SCITTrainer(PolicyTrainer):
    """Trainer whose batches hold each pair under the good and the bad instruction and
    whose loss is :func:`preflab.train.losses.scit_loss` (`eps`, `weight`)."""

    eps = 0.2
    weight = 1.0

    def __init__(self, *args: Any, eps: float | None = None, weight: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if eps is not None:
            self.eps = eps
        if weight is not None:
            self.weight = weight

    def compute_loss(self, model: Any, inputs: dict[str, Any],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        share = not self.args.gradient_checkpointing
        sides = []
        for name in ("good", "bad"):
            batch = {k: v for k, v in inputs[name].items() if k != "p_chosen"}
            sums, n = reply_logps(model, batch, share)
            sides += [sums.view(-1, 2), n.view(-1, 2)]
        loss, stats = scit_loss(*sides, eps=self.eps, weight=self.weight)
        self.record(**{k: float(v) for k, v in stats.items()})
        return (loss, {}) if return_outputs else loss


def collate_instructed(batch: list[InstructedExample], pad_id: int) -> dict[str, Any]:
    return {"good": collate_policy([e.good for e in batch], pad_id),
            "bad": collate_policy([e.bad for e in batch], pad_id)}


def train_scit(data: str | Path, out: str | Path, config: PolicyConfig | None = None,
               eps: float = 0.2, weight: float = 1.0, resume: bool = True,
               callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Contrastive instruction tuning of ``config.policy`` on the pairs of `data`
    (learning rate: the SFT default unless set)."""
    from preflab.data.read import iter_pairs, load_pairs

    config = config or PolicyConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = list(iter_pairs(load_pairs(data)))
    model, tokenizer = load_policy(config.policy, config)
    examples, reports = instructed_examples(pairs, tokenizer,
                                            fit_max_length(model, config.max_length),
                                            str(data))
    trainer = SCITTrainer(
        model=model, args=training_args(out, config, "sft"), train_dataset=examples,
        data_collator=lambda b: collate_instructed(b, tokenizer.pad_token_id),
        callbacks=callbacks, order=config.order, eps=eps, weight=weight)
    result = run_trainer(trainer, out, tokenizer, config, resume)
    tokens = sum(e.tokens for e in examples) * config.epochs
    return write_summary(out, str(data), config, "scit", reports["bad"], result,
                         instructed_tokens=reports,
                         scit={"eps": eps, "weight": weight, "good_instruction": GOOD,
                               "bad_instruction": BAD},
                         tokens_per_s=round(tokens / max(result["seconds"], 1e-9), 1))


def hir_pairs(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """Hindsight instruction relabelling: each chosen reply after the good instruction
    and each rejected reply after the bad one, as SFT examples (chosen side)."""
    out = []
    for p in pairs:
        out += [instructed_pair(p, GOOD), instructed_pair(p.swapped(), BAD)]
    return out


def train_hir(data: str | Path, out: str | Path, config: PolicyConfig | None = None,
              resume: bool = True, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """HIR baseline (Zhang et al. 2023, as RAHF compares it): supervised fine-tuning on
    hindsight-relabelled instructions; sample from it with the good instruction
    (``--instruction good``)."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.train.sft import train_sft

    pairs = list(iter_pairs(load_pairs(data)))
    lines = [i + 1 for i in range(len(pairs)) for _ in range(2)]
    summary = train_sft(hir_pairs(pairs), out, config, resume, callbacks, source=str(data),
                        lines=lines)
    summary.update(stage="hir", inference_instruction="good")
    return save_summary(Path(out), summary)
