"""The training stages' settings: policy (SFT, DPO), reward model, RAHF, RL, best-of-N.

Read and written through :mod:`preflab.settings` (TOML, YAML or JSON; ``OUT/config.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from preflab.settings import FromFile


@dataclass
class PolicyConfig(FromFile):
    """Everything that defines an SFT or DPO run (``preflab sft|dpo --config FILE``;
    ``OUT/config.toml`` or a model's preflab-train.json reproduces it)."""

    policy: str = "smollm2-135m-instruct"
    reference: str | None = None  # DPO reference model; None: the policy before training
    loss: str = "sigmoid"  # DPO: sigmoid | cdpo | robust | ipo | soft
    beta: float = 0.1
    eps: float = 0.1  # cdpo label smoothing / robust flip rate
    max_length: int = 1024
    epochs: float = 1.0
    learning_rate: float | None = None  # None: see lr()
    batch_size: int = 8  # pairs (DPO) or replies (SFT) per step
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] | None = None  # None: every linear layer of the blocks
    lora_layers: list[int] | None = None  # 0-based blocks with adapters; None: all
    share_prefix: bool = True  # run each pair's prompt once (DPO)
    gradient_checkpointing: bool = False
    order: str = "length"  # length: batches of similar length, shuffled | sequential
    seed: int = 0
    save_steps: int = 50
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision on a GPU)
    threads: int | None = None

    def lr(self, stage: str) -> float:
        """Default learning rates: SFT 2e-5 (LoRA 2e-4), DPO 5e-6 (LoRA 5e-5)."""
        if self.learning_rate is not None:
            return self.learning_rate
        base = 2e-5 if stage == "sft" else 5e-6
        return base * 10 if self.lora else base


@dataclass
class RewardConfig(FromFile):
    """Everything that defines a reward-model run (``preflab train-rm --config FILE``;
    ``OUT/config.toml`` or the model's preflab-train.json reproduces it)."""

    base: str = "minilm-l6"
    labels: str = "auto"  # auto | hard | soft
    # encoders: "cls" (a [CLS] cross-encoder head), "bi-encoder" (context and reply
    # encoded alone, mean-pooled, a cosine head; see models/bi_encoder.py) or "auto":
    # bi-encoder for a sentence-transformers base trained with mean pooling, else cls
    head: str = "auto"
    cosine_scale: float = 10.0  # bi-encoder: the learnt s of s cos(u, v) starts here
    max_length: int = 512
    margin: float = 0.0  # Bradley-Terry margin (per pair: meta.margin)
    weight_key: str = "weight"  # per-pair loss weight read from meta
    subset_weights: dict[str, float] = field(default_factory=dict)  # e.g. lambda for harmless
    epochs: float = 2.0
    # None: 2e-5 bi-encoders, 1e-4 other encoders, 1e-5 decoders, 2e-4 LoRA
    learning_rate: float | None = None
    batch_size: int = 8  # pairs per step
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    train_layers: int | None = None  # train only the top N layers and the head
    share_prefix: bool = True  # decoders: each pair's prompt runs once for both replies
    pad_token: str | None = None  # needed when the tokenizer has none ("eos" or a token)
    pmp: str | None = None  # preference-model pretraining data, trained on first
    pmp_epochs: float = 1.0
    limit: int | None = None  # train on the first N pairs of the data (not of --pmp's)
    sample: int | None = None  # a seeded sample (seed) of N pairs (of the first limit)
    seed: int = 0
    save_steps: int = 50
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (mixed precision on a GPU)
    threads: int | None = None

    def lr(self, encoder: bool, bi_encoder: bool = False) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        if self.lora:
            return 2e-4
        # a sentence encoder is fine-tuned gently (the sentence-transformers default)
        return 2e-5 if bi_encoder else 1e-4 if encoder else 1e-5


RAHF_VARIANTS = ("scit", "dual")


@dataclass
class RAHFConfig(FromFile):
    """Everything that defines a RAHF run (``preflab rahf --config FILE``;
    ``OUT/config.toml`` reproduces it)."""

    variant: str = "scit"
    base: str = "smollm2-135m-instruct"
    layers: list[int] | None = None  # None: the paper's, scaled to the model's depth
    alpha: float = 5.0
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float | None = None  # step 2; None: 3e-4 (SCIT) / 9e-6 (Dual)
    epochs: float = 1.0
    step1_learning_rate: float | None = None  # None: the SFT default with LoRA, 2e-4
    step1_epochs: float = 1.0
    scit_eps: float = 0.2
    scit_model: str | None = None  # an existing step-1 model: skips that training
    good_model: str | None = None
    bad_model: str | None = None
    max_length: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    seed: int = 0
    save_steps: int = 50
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.variant not in RAHF_VARIANTS:
            raise ValueError(f"variant must be one of {RAHF_VARIANTS}, got {self.variant!r}")

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

    policy: str = "smollm2-135m-instruct"
    reward: str = ""  # a reward model, or with direct=True a judge model
    direct: bool = False
    task: str = "helpful"  # the direct judge's task
    beta: float = 0.05
    steps: int = 30
    batch_size: int = 8  # prompts per step
    samples_per_prompt: int = 1
    baseline: str = "value"  # value (A2C) | loo (leave-one-out mean of the other samples)
    whiten: bool = False
    max_new_tokens: int = 48
    max_prompt_tokens: int = 256
    learning_rate: float = 1e-4
    value_learning_rate: float = 1e-3
    lora_r: int = 16
    lora_alpha: int = 32
    limit: int | None = None  # the first N prompts; None: all
    seed: int = 0
    save_steps: int = 10
    device: str = "auto"
    threads: int | None = None


@dataclass
class BestOfNConfig(FromFile):
    """Everything that defines a best-of-N run (``preflab bon --config FILE``;
    ``OUT/config.toml`` reproduces it)."""

    policy: str = "smollm2-135m-instruct"
    reward: str = ""  # a reward model or a committee (preset name or TOML file)
    n: int = 16  # samples per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 128
    limit: int | None = None  # the first N prompts; None: all
    seed: int = 0
    batch_size: int = 8  # replies sampled at once
    device: str = "auto"
    threads: int | None = None
