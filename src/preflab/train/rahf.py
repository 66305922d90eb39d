"""RAHF (Liu et al. 2023): align a model by moving its hidden states toward the
preferred behaviour instead of optimising a reward.

Step 1 makes a preference-aware model: ``scit`` (one model, contrastive instruction
tuning, :mod:`preflab.train.scit`) or ``dual`` (a preferred model SFT'd on chosen
replies and a dispreferred one on rejected replies). Step 2 reads, over the reply
tokens of each pair's chosen reply, the difference v_l between the good and the bad
side's hidden states at the target layers (SCIT: the same model after the good vs
the bad instruction; Dual: the preferred vs the dispreferred model on the plain
input) and trains LoRA on the base so its states on the plain input match
h_base,l + alpha * v_l (L2). Every state is computed on the fly; the base's with the
adapters switched off.

Defaults are the public code's (Llama-2-7B): alpha 5, LoRA r 8 / alpha 16 on q_proj
and v_proj, lr 3e-4 (SCIT) / 9e-6 (Dual), target layers 10-18 (SCIT) or 10-20
(Dual) of 32 scaled to the model's depth (:func:`preflab.models.hidden.rahf_layers`).
Adapters go on the blocks up to the deepest target layer, as in the public code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from preflab.errors import PairError
from preflab.models.causal_lm import add_lora, fit_max_length, load_policy
from preflab.models.examples import PolicyExample, build_policy_examples
from preflab.models.hidden import check_layers, collate_rows, decoder_layers, rahf_layers
from preflab.models.hidden import reply_hidden as _reply_hidden
from preflab.models.reward_folder import SUMMARY
from preflab.settings import write_config
from preflab.train.config import RAHF_VARIANTS, RAHFConfig
from preflab.train.losses import representation_loss
from preflab.train.recipe import (
    PolicyConfig,
    PolicyTrainer,
    run_trainer,
    training_args,
    write_summary,
)

VARIANTS = RAHF_VARIANTS


@dataclass
class RepresentationExample:
    """A chosen reply on the plain input and, for SCIT, after each instruction."""

    plain: PolicyExample
    good: PolicyExample | None = None
    bad: PolicyExample | None = None

    @property
    def tokens(self) -> int:
        parts = [e for e in (self.plain, self.good, self.bad) if e is not None]
        return sum(len(e.prefix) + len(e.chosen_ids) for e in parts)


def representation_examples(pairs: list[Any], tokenizer: Any, max_length: int, source: str,
                            instructed: bool
                            ) -> tuple[list[RepresentationExample], dict[str, Any]]:
    """Examples for step 2 and what tokenization did on each input (plain, and for
    SCIT after each instruction)."""
    from preflab.data.instructions import BAD, GOOD, instructed_pair
    from preflab.train.scit import check_instructed

    plain, report = build_policy_examples(pairs, tokenizer, max_length, source,
                                          with_rejected=False)
    reports = {"plain": asdict(report)}
    if not instructed:
        return [RepresentationExample(e) for e in plain], reports
    good, good_report = build_policy_examples([instructed_pair(p, GOOD) for p in pairs],
                                              tokenizer, max_length, source,
                                              with_rejected=False)
    bad, bad_report = build_policy_examples([instructed_pair(p, BAD) for p in pairs],
                                            tokenizer, max_length, source,
                                            with_rejected=False)
    reports.update(good=asdict(good_report), bad=asdict(bad_report))
    for i, (p, g, b) in enumerate(zip(plain, good, bad, strict=True)):
        check_instructed(g, b, source, i + 1, max_length)
        if not p.chosen_n == g.chosen_n == b.chosen_n:  # the replies' states are aligned
            raise PairError(source, i + 1, "chosen", "the reply is cut differently with "
                            "and without the instructions; raise --max-length", unit="pair")
    return [RepresentationExample(*t) for t in zip(plain, good, bad, strict=True)], reports


def collate_representation(batch: list[RepresentationExample], pad_id: int
                           ) -> dict[str, Any]:
    out = {"plain": collate_rows([e.plain for e in batch], pad_id)}
    good = [e.good for e in batch if e.good is not None]
    bad = [e.bad for e in batch if e.bad is not None]
    if good:
        out["good"] = collate_rows(good, pad_id)
        out["bad"] = collate_rows(bad, pad_id)
    return out


class RepresentationTrainer(PolicyTrainer):
    """RAHF step 2: LoRA on the base trained so its hidden states at `layers` on the
    plain input match h_base + alpha * (h_good - h_bad) (:func:`representation_loss`);
    the good and bad states come from the `frozen` step-1 model(s): SCIT ``(model,)``
    (after the good vs the bad instruction), Dual ``(preferred, dispreferred)``."""

    layers: tuple[int, ...] = ()
    alpha = 5.0
    frozen: tuple[Any, ...] = ()

    def __init__(self, *args: Any, layers: Sequence[int] = (), alpha: float = 5.0,
                 frozen: Sequence[Any] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.layers, self.alpha, self.frozen = tuple(layers), alpha, tuple(frozen)

    def compute_loss(self, model: Any, inputs: dict[str, Any],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        plain = inputs["plain"]
        with torch.no_grad():
            with model.disable_adapter():
                base_h = _reply_hidden(model, plain, self.layers)
            if len(self.frozen) == 1:
                good = _reply_hidden(self.frozen[0], inputs["good"], self.layers)
                bad = _reply_hidden(self.frozen[0], inputs["bad"], self.layers)
            else:
                good = _reply_hidden(self.frozen[0], plain, self.layers)
                bad = _reply_hidden(self.frozen[1], plain, self.layers)
        hidden = _reply_hidden(model, plain, self.layers)
        loss, stats = representation_loss(hidden, base_h, good, bad, self.alpha)
        self.record(**{k: float(v) for k, v in stats.items()})
        return (loss, {}) if return_outputs else loss


def _step1(folder: Path, data: str, config: PolicyConfig, fn: Any) -> str:
    """Train a step-1 model into `folder` unless it is there already, trained on the
    same data with the same settings (else refuse: it would be used silently)."""
    path = folder / SUMMARY
    if path.exists():
        done = json.loads(path.read_text())
        if done.get("data") != data or done.get("config") != json.loads(
                json.dumps(asdict(config))):
            raise ValueError(f"{folder} holds a step-1 model trained on other data or with "
                             "other settings; delete it or use another --out")
    else:
        fn()
    return str(folder)


def train_rahf(data: str | Path, out: str | Path, config: RAHFConfig | None = None,
               resume: bool = True, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Both steps of RAHF on the pairs of `data`; the aligned model is saved in `out`
    (step-1 models in ``out/step1-*`` unless given). A rerun reuses finished step-1
    models and resumes step 2 from its last checkpoint."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.train.dpo import check_same_vocabulary
    from preflab.train.scit import train_scit
    from preflab.train.sft import train_sft

    config = config or RAHFConfig()
    out = Path(out)
    write_config(config, out)
    pairs = list(iter_pairs(load_pairs(data)))
    s1 = config.step1()
    bad = replace(s1, side="rejected")  # the dispreferred model learns the rejected replies
    if config.variant == "scit":
        frozen_names = [config.scit_model or _step1(
            out / "step1-scit", str(data), s1,
            lambda: train_scit(data, out / "step1-scit", s1, eps=config.scit_eps))]
    else:
        frozen_names = [
            config.good_model or _step1(out / "step1-good", str(data), s1, lambda: train_sft(
                pairs, out / "step1-good", s1, source=str(data))),
            config.bad_model or _step1(out / "step1-bad", str(data), bad, lambda: train_sft(
                pairs, out / "step1-bad", bad, source=str(data)))]

    probe = PolicyConfig(**{**asdict(PolicyConfig()), **config._common()})
    model, tokenizer = load_policy(config.base, probe, trainable=False)
    layers = check_layers(model, config.layers or rahf_layers(len(decoder_layers(model)),
                                                              config.variant), last=False)
    s2 = config.step2(layers)
    model = add_lora(model, s2)
    frozen = []
    for name in frozen_names:
        check_same_vocabulary(tokenizer, name)
        m, _ = load_policy(name, probe, trainable=False)
        frozen.append(m.eval().requires_grad_(False))
    examples, reports = representation_examples(
        pairs, tokenizer, fit_max_length(model, config.max_length), str(data),
        instructed=config.variant == "scit")
    trainer = RepresentationTrainer(
        model=model, args=training_args(out, s2, "rahf"), train_dataset=examples,
        data_collator=lambda b: collate_representation(b, tokenizer.pad_token_id),
        callbacks=callbacks, order=s2.order, layers=layers, alpha=config.alpha,
        frozen=frozen)
    result = run_trainer(trainer, out, tokenizer, s2, resume)
    tokens = sum(e.tokens for e in examples) * s2.epochs
    summary = write_summary(out, str(data), s2, "rahf", reports["plain"], result,
                            instructed_tokens={k: v for k, v in reports.items()
                                               if k != "plain"},
                            rahf={**asdict(config), "layers": layers},
                            step1_models=frozen_names,
                            tokens_per_s=round(tokens / max(result["seconds"], 1e-9), 1))
    return summary
