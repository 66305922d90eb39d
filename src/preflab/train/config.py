"""The training stages' settings: policy (SFT, DPO, HIR), reward model, RAHF, RL,
best-of-N and steering vectors. Each field is a :func:`preflab.settings.setting`: its
default, help text, range and flag, from which the commands' options are generated.

Read and written through :mod:`preflab.settings` (TOML, YAML or JSON; ``OUT/config.toml``).
Light: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preflab.settings import (
    FromFile,
    device_setting,
    limit_setting,
    seed_setting,
    setting,
    threads_setting,
)

DPO_LOSSES = ("sigmoid", "cdpo", "robust", "ipo", "soft")
PRECISIONS = ("fp32", "bf16", "fp16")
RAHF_VARIANTS = ("scit", "dual")
STIMULI = ("instruction", "reply")  # preflab.models.steering.STIMULI
DEFAULT_POLICY = "smollm2-135m-instruct"


# ---- settings some training stages share (the others: preflab.settings) ----------------


def precision_setting() -> Any:
    return setting("fp32", "fp32, or bf16 / fp16 mixed precision on a GPU.",
                   choices=PRECISIONS)


def epochs_setting(default: float, help: str = "Epochs.") -> Any:
    return setting(default, help, gt=0)


def positive(default: Any, help: str, **kw: Any) -> Any:
    return setting(default, help, min=1, **kw)


def fraction(default: float, help: str) -> Any:
    return setting(default, help, min=0, max=1)


LORA_HELP = ("LoRA adapters on every linear layer (merged into the saved model) or full "
             "fine-tuning.")
MAX_LENGTH_HELP = ("Tokens per prompt+reply; the context loses its oldest tokens first, a "
                   "reply that does not fit alone is cut (counted).")


@dataclass
class PolicyConfig(FromFile):
    """Everything that defines an SFT, DPO or HIR run (``preflab sft|dpo|hir --config
    FILE``; ``OUT/config.toml`` or a model's preflab-train.json reproduces it)."""

    policy: str = setting(DEFAULT_POLICY, "Causal LM to train: a preset, folder or hub id "
                                          "(DPO: e.g. a `preflab sft` folder).")
    reference: str | None = setting(None, "DPO: the reference model.",
                                    shown="the policy before training")
    loss: str = setting("sigmoid", "DPO: sigmoid (DPO), cdpo (label smoothing --eps), robust "
                                   "(flip rate --eps), ipo, or soft (each pair's p_chosen as "
                                   "the target).", choices=DPO_LOSSES)
    beta: float = setting(0.1, "DPO: beta (IPO: tau).", gt=0)
    eps: float = setting(0.1, "DPO: cdpo's label smoothing; robust's assumed flip rate.",
                         min=0, max=0.5)
    side: str = setting("chosen", "SFT: train on the chosen replies, or on the rejected ones "
                                  "(RAHF's dispreferred model).", choices=("chosen", "rejected"))
    max_length: int = positive(1024, MAX_LENGTH_HELP)
    epochs: float = epochs_setting(1.0)
    learning_rate: float | None = setting(None, "Learning rate.", flag="--lr", gt=0,
                                          shown="SFT 2e-5, DPO 5e-6; x10 with LoRA")
    batch_size: int = positive(8, "Pairs (DPO) or replies (SFT) per step.")
    grad_accum: int = positive(1, "Gradient accumulation steps.")
    warmup_ratio: float = fraction(0.1, "Share of the steps the learning rate warms up over.")
    weight_decay: float = setting(0.0, "AdamW weight decay.", min=0)
    lora: bool = setting(False, LORA_HELP, flag="--lora/--full")
    lora_r: int = positive(16, "LoRA rank.")
    lora_alpha: int = positive(32, "LoRA alpha (the adapters' scale is alpha / r).")
    lora_targets: list[str] | None = setting(None, "LoRA: the modules with adapters.",
                                             shown="every linear layer of the blocks")
    lora_layers: list[int] | None = setting(None, "LoRA: the 0-based blocks with adapters.",
                                            shown="all")
    share_prefix: bool = setting(True, "DPO: run each pair's prompt once for both replies.")
    gradient_checkpointing: bool = setting(False, "Recompute activations in the backward "
                                                  "pass.")
    order: str = setting("length", "Batches: length (of similar length, shuffled) or "
                                   "sequential.", choices=("length", "sequential"))
    seed: int = seed_setting("Seed (order, LoRA init).")
    save_steps: int = positive(50, "Checkpoint every N steps (an interrupted run resumes).")
    device: str = device_setting()
    precision: str = precision_setting()
    threads: int | None = threads_setting()

    def lr(self, stage: str) -> float:
        """Default learning rates: SFT 2e-5 (LoRA 2e-4), DPO 5e-6 (LoRA 5e-5)."""
        if self.learning_rate is not None:
            return self.learning_rate
        base = 2e-5 if stage == "sft" else 5e-6
        return base * 10 if self.lora else base


SFT_SKIP = ("reference", "loss", "beta", "eps", "share_prefix")  # DPO's own settings
DPO_SKIP = ("side",)


@dataclass
class RewardConfig(FromFile):
    """Everything that defines a reward-model run (``preflab train-rm --config FILE``;
    ``OUT/config.toml`` or the model's preflab-train.json reproduces it)."""

    base: str = setting("minilm-l6", "Base model: a causal LM (reward at the last token) or "
                                     "an encoder; preset, folder or hub id.")
    labels: str = setting("auto", "hard (Bradley-Terry on chosen > rejected), soft "
                                  "(cross-entropy against p_chosen, e.g. AI labels) or auto "
                                  "(soft if any p_chosen < 1).", choices=("auto", "hard", "soft"))
    head: str = setting(
        "auto", "Encoders: cls (a [CLS] cross-encoder), bi-encoder (context and reply encoded "
        "alone, cosine head starting from the zero-shot cosine; loads elsewhere with "
        "trust_remote_code) or auto: bi-encoder for a BERT sentence-transformers folder "
        "pooled by the mean (the minilm-l6 preset; hub ids are not inspected), else cls.",
        choices=("auto", "cls", "bi-encoder"))
    cosine_scale: float = setting(10.0, "Bi-encoder: the learnt s of s cos(u, v) starts "
                                        "here.", gt=0)
    max_length: int = positive(512, "Tokens per (context, reply); contexts lose their oldest "
                                    "tokens first, a reply that does not fit is cut "
                                    "(counted).")
    margin: float = setting(0.0, "Bradley-Terry margin m: -log sigmoid(r_c - r_r - m) (per "
                                 "pair: meta.margin).", min=0)
    weight_key: str = setting("weight", "The pair's meta field holding its loss weight.")
    subset_weights: dict[str, float] = setting(
        help="SUBSET=W: loss weight of a subset, e.g. harmless-base=0.5 for "
             "L = L_help + 0.5 L_harm (repeatable).", factory=dict, flag="--subset-weight")
    epochs: float = epochs_setting(2.0)
    learning_rate: float | None = setting(
        None, "Learning rate.", flag="--lr", gt=0,
        shown="per head: 2e-5 bi-encoder, 1e-4 cls encoder, 1e-5 decoder (last token), "
              "2e-4 with LoRA")
    batch_size: int = positive(8, "Pairs per step.")
    grad_accum: int = positive(1, "Gradient accumulation steps.")
    warmup_ratio: float = fraction(0.1, "Share of the steps the learning rate warms up over.")
    weight_decay: float = setting(0.0, "AdamW weight decay.", min=0)
    lora: bool = setting(False, "LoRA adapters (merged into the saved model) or full "
                                "fine-tuning.", flag="--lora/--full")
    lora_r: int = positive(16, "LoRA rank.")
    lora_alpha: int = positive(32, "LoRA alpha (the adapters' scale is alpha / r).")
    lora_dropout: float = fraction(0.05, "LoRA dropout.")
    train_layers: int | None = setting(None, "Train only the top N transformer layers and "
                                             "the head.", min=1, shown="all")
    share_prefix: bool = setting(True, "Decoders: run each pair's prompt once for both "
                                       "replies.")
    pad_token: str | None = setting(None, "Pad token for a tokenizer that has none ('eos' "
                                          "or a token).")
    pmp: str | None = setting(None, "Preference-model pretraining: train on this comparison "
                                    "set first, then fine-tune on DATA.")
    pmp_epochs: float = epochs_setting(1.0, "Epochs of --pmp.")
    limit: int | None = limit_setting("pairs (of DATA, not of --pmp)")
    sample: int | None = setting(None, "A seeded random sample of N pairs (of the first "
                                       "--limit, in input order).", min=1, shown="all")
    seed: int = seed_setting("Seed (head, order, sample).")
    save_steps: int = positive(50, "Checkpoint every N steps (an interrupted run resumes).")
    device: str = device_setting()
    precision: str = precision_setting()
    threads: int | None = threads_setting()

    def lr(self, encoder: bool, bi_encoder: bool = False) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return 2e-4
        # a sentence encoder is fine-tuned gently (the sentence-transformers default)
        return 2e-5 if bi_encoder else 1e-4 if encoder else 1e-5


@dataclass
class RAHFConfig(FromFile):
    """Everything that defines a RAHF run (``preflab rahf --config FILE``;
    ``OUT/config.toml`` reproduces it)."""

    variant: str = setting("scit", "scit (one model, contrastive instruction tuning) or dual "
                                   "(preferred + dispreferred models).", choices=RAHF_VARIANTS)
    base: str = setting(DEFAULT_POLICY, "Model to align.")
    layers: list[int] | None = setting(None, "Target layers (1 = output of the first block).",
                                       shown="RAHF's, scaled to the model's depth")
    alpha: float = setting(5.0, "Shift: base + alpha * v.", gt=0)
    lora_r: int = positive(8, "Step-2 LoRA rank.")
    lora_alpha: int = positive(16, "Step-2 LoRA alpha.")
    lora_targets: list[str] = setting(help="Step-2 LoRA modules.",
                                      factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float | None = setting(None, "Step-2 learning rate.", flag="--lr", gt=0,
                                          shown="3e-4 SCIT, 9e-6 Dual")
    epochs: float = epochs_setting(1.0, "Step-2 epochs.")
    step1_learning_rate: float | None = setting(None, "Step-1 learning rate (LoRA).",
                                                flag="--step1-lr", gt=0, shown="2e-4")
    step1_epochs: float = epochs_setting(1.0, "Step-1 epochs.")
    scit_eps: float = setting(0.2, "SCIT: label smoothing of the instruction contrast.",
                              min=0, max=0.5)
    scit_model: str | None = setting(None, "An existing SCIT model (skips step 1).")
    good_model: str | None = setting(None, "Dual: an existing preferred model, e.g. a "
                                           "`preflab sft` one.")
    bad_model: str | None = setting(None, "Dual: an existing dispreferred model.")
    max_length: int = positive(512, MAX_LENGTH_HELP)
    batch_size: int = positive(4, "Pairs per step.")
    grad_accum: int = positive(1, "Gradient accumulation steps.")
    seed: int = seed_setting("Seed (order, LoRA init).")
    save_steps: int = positive(50, "Checkpoint every N steps (an interrupted run resumes).")
    device: str = device_setting()
    precision: str = precision_setting()
    threads: int | None = threads_setting()

    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 3e-4 if self.variant == "scit" else 9e-6

    def _common(self) -> dict[str, Any]:
        return {"policy": self.base, "max_length": self.max_length,
                "batch_size": self.batch_size, "grad_accum": self.grad_accum,
                "seed": self.seed, "save_steps": self.save_steps, "device": self.device,
                "precision": self.precision}

    def step1(self) -> PolicyConfig:
        """Settings of step 1 (SCIT or the two SFTs): LoRA on every linear layer."""
        return PolicyConfig(lora=True, learning_rate=self.step1_learning_rate,
                            epochs=self.step1_epochs, **self._common())

    def step2(self, layers: list[int]) -> PolicyConfig:
        return PolicyConfig(lora=True, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
                            lora_targets=list(self.lora_targets),
                            lora_layers=list(range(max(layers))), learning_rate=self.lr(),
                            epochs=self.epochs, **self._common())


@dataclass
class RLConfig(FromFile):
    """Everything that defines an RL run (``preflab rl --config FILE``;
    ``OUT/config.toml`` reproduces it)."""

    policy: str = setting(DEFAULT_POLICY, "Starting (SFT) policy; also the KL reference.")
    reward: str | None = setting(None, "Reward model, or the judge with --direct. Required.")
    direct: bool = setting(False, "Direct RLAIF: the judge's 1-10 rating, rescaled to "
                                  "[-1, 1], is the reward.")
    task: str = setting("helpful", "The direct judge's task.")
    beta: float = setting(0.05, "KL weight: reward (1-beta) r - beta KL.", min=0, max=1)
    steps: int = positive(30, "Policy-gradient steps.")
    batch_size: int = positive(8, "Prompts per step.")
    samples_per_prompt: int = positive(1, "Replies sampled per prompt each step (they share "
                                          "its KV cache).")
    baseline: str = setting("value", "value (A2C: a learned value head) or loo (mean return "
                                     "of the prompt's other samples, RLOO; needs 2+ samples "
                                     "per prompt).", choices=("value", "loo"))
    whiten: bool = setting(False, "Scale each batch's advantages to mean 0, std 1.")
    max_new_tokens: int = positive(48, "Reply length limit.")
    max_prompt_tokens: int = positive(256, "Longest prompt (its last tokens kept).")
    learning_rate: float = setting(1e-4, "LoRA learning rate.", flag="--lr", gt=0)
    value_learning_rate: float = setting(1e-3, "Value head learning rate.", flag="--value-lr",
                                         gt=0)
    lora_r: int = positive(16, "LoRA rank.")
    lora_alpha: int = positive(32, "LoRA alpha (the adapters' scale is alpha / r).")
    limit: int | None = limit_setting("prompts")
    seed: int = seed_setting("Random seed.")
    save_steps: int = positive(10, "Checkpoint every N steps (an interrupted run resumes).")
    device: str = device_setting()
    threads: int | None = threads_setting()


@dataclass
class BestOfNConfig(FromFile):
    """Everything that defines a best-of-N run (``preflab bon --config FILE``;
    ``OUT/config.toml`` reproduces it)."""

    policy: str = setting(DEFAULT_POLICY, "Policy to sample from.")
    reward: str | None = setting(None, "Reward model (e.g. a `preflab train-rm` folder) or a "
                                       "committee (a preset name or a TOML file of pointwise "
                                       "members: their standardised rewards are averaged; "
                                       "members take device and threads from the file). "
                                       "Required.")
    n: int = setting(16, "Samples per prompt.", min=2, flag="--n")
    temperature: float = setting(1.0, "Sampling temperature.", min=0)
    top_p: float = setting(1.0, "Nucleus sampling.", gt=0, max=1)
    max_new_tokens: int = positive(128, "Reply length limit.")
    limit: int | None = limit_setting("prompts")
    seed: int = seed_setting("Random seed.")
    batch_size: int = positive(8, "Replies sampled at once.")
    device: str = device_setting()
    threads: int | None = threads_setting()


@dataclass
class SteerConfig(FromFile):
    """Everything that defines a steering vector (``preflab steer extract --config FILE``;
    the ``.config.toml`` written beside the vector reproduces it)."""

    model: str = setting(DEFAULT_POLICY, "Model to steer.")
    layers: list[int] | None = setting(None, "Layers (1 = output of the first block).",
                                       shown="RAHF's SCIT layers, scaled to the model's depth")
    stimulus: str = setting("instruction", "instruction (chosen reply after the good vs the "
                                           "bad instruction) or reply (chosen vs rejected "
                                           "reply).", choices=STIMULI)
    limit: int | None = limit_setting("pairs")
    sample: int | None = setting(None, "A seeded random sample of N pairs (of the first "
                                       "--limit).", min=1, shown="all")
    max_length: int = positive(512, "Tokens per prompt+reply.")
    batch_size: int = positive(8, "Sequences per forward pass.")
    seed: int = seed_setting("Seed of the sample.")
    device: str = device_setting()
    threads: int | None = threads_setting()
