"""Settings of the end-to-end experiments (``preflab experiment NAME --config FILE``;
each run's ``OUT/config.toml`` reproduces it). The training settings are nested
tables (``[dpo]``, ``[policy]``, ``[rahf]``). Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from preflab.settings import FromFile
from preflab.train.config import PolicyConfig, RAHFConfig, RewardConfig, RLConfig

RAHF_METHODS = ("sft", "preferred-sft", "hir", "dpo", "rahf-scit", "rahf-dual", "steering")


@dataclass
class CleanVsOriginalConfig(FromFile):
    """Everything that defines a clean-vs-original experiment but the data."""

    committee: str = "cpu"  # audit committee: a preset or a TOML file
    method: str = "sac"  # cleaning method
    dpo: PolicyConfig = field(default_factory=lambda: PolicyConfig(lora=True))
    judge: str = "smollm2-135m-instruct"  # win-rate judge: a model or a URL
    task: str = "harmless"  # the judge's task
    reward: str | None = None  # reward model for mean reward scores; None: none
    eval_fraction: float = 0.2  # pairs held out for evaluation
    train_sample: int | None = None  # train on a seeded random sample of N pairs
    eval_limit: int | None = 100  # the first N evaluation prompts; None: all
    max_new_tokens: int = 96
    temperature: float = 0.7
    seed: int = 0  # of every stage (the DPO runs' too)


@dataclass
class RAHFCompareConfig(FromFile):
    """Everything that defines a RAHF-vs-baselines experiment but the data."""

    reward: str = ""  # reward model for mean reward scores (required)
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(
        lora=True, max_length=512, batch_size=4))  # every method's start and settings
    rahf: RAHFConfig = field(default_factory=RAHFConfig)  # base, seed, lengths: policy's
    dual_lr: float | None = None  # RAHF-Dual step-2 lr; None: 9e-6
    steer_coeff: float = 1.0
    judge: str = "smollm2-135m-instruct"  # win-rate judge: a model or a URL
    task: str = "harmless"
    eval_fraction: float = 0.2
    train_sample: int | None = None  # train on a seeded random sample of N pairs
    eval_limit: int | None = 100  # the first N evaluation prompts; None: all
    perplexity_pairs: int = 100
    temperatures: list[float] = field(default_factory=lambda: [0.7, 1.0])
    max_new_tokens: int = 96
    methods: list[str] = field(default_factory=lambda: list(RAHF_METHODS))
    seed: int = 0

    def __post_init__(self) -> None:
        self.temperatures = [float(t) for t in self.temperatures]
        self.methods = list(self.methods)


@dataclass
class OverOptimizationConfig(FromFile):
    """Everything that defines a reward over-optimisation experiment but the data."""

    policy: str = "smollm2-135m-instruct"  # the policy optimised (best-of-N, RL)
    # both PMs' settings; one epoch each (train-rm's default is 2): the two PMs are
    # most of the run's time, about 20 min each on 2 CPU cores at one epoch
    rm: RewardConfig = field(default_factory=lambda: RewardConfig(epochs=1.0))
    n: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])  # best-of-N
    rl_steps: int = 0  # RL steps against the train PM; 0: no RL
    rl_checkpoints: int = 4  # RL checkpoints scored (every rl_steps / rl_checkpoints)
    rl: RLConfig = field(default_factory=RLConfig)  # policy, reward, steps: set here
    eval_fraction: float = 0.2  # pairs held out; their prompts are optimised on
    train_sample: int | None = None  # PMs train on halves of a seeded sample of N pairs
    prompts: int = 40  # held-out prompts optimised on
    temperature: float = 1.0
    max_new_tokens: int = 48
    batch_size: int = 8  # replies sampled at once
    n_boot: int = 2000  # bootstrap resamples of the prompts
    seed: int = 0
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        self.n = sorted({int(k) for k in self.n})
