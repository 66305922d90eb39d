"""Settings of the end-to-end experiments (``preflab experiment NAME --config FILE``;
each run's ``OUT/config.toml`` reproduces it). The training settings are nested
tables (``[dpo]``, ``[policy]``, ``[rahf]``, ``[rm]``, ``[rl]``); every field is a
:func:`~preflab.settings.setting` that the commands' options are generated from.
Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preflab.clean.methods import METHODS as CLEAN_METHODS
from preflab.engine.label_prompt import TASKS
from preflab.eval.config import judge_setting
from preflab.settings import FromFile, device_setting, seed_setting, setting, threads_setting
from preflab.train.config import PolicyConfig, RAHFConfig, RewardConfig, RLConfig

RAHF_METHODS = ("sft", "preferred-sft", "hir", "dpo", "rahf-scit", "rahf-dual", "steering")


def eval_fraction_setting() -> Any:
    return setting(0.2, "Share of the pairs held out for evaluation.", gt=0, max=1)


def train_sample_setting() -> Any:
    return setting(None, "Train on a seeded random sample of N of the training pairs.",
                   min=1, shown="all")


def eval_limit_setting() -> Any:
    return setting(100, "Use the first N evaluation prompts (\"none\" in a settings file: "
                        "all).", min=1)


@dataclass
class CleanVsOriginalConfig(FromFile):
    """Everything that defines a clean-vs-original experiment but the data."""

    committee: str = setting("cpu", "Audit committee: preset or TOML.")
    method: str = setting("sac", "Cleaning method.", choices=tuple(CLEAN_METHODS))
    dpo: PolicyConfig = setting(factory=lambda: PolicyConfig(lora=True),
                                help="Both DPO runs' settings ([dpo] table; the seed is "
                                     "the experiment's).")
    judge: str = judge_setting("Win-rate judge: a model or a URL.")
    task: str = setting("harmless", "The judge's task.", choices=TASKS)
    reward: str | None = setting(None, "Reward model for mean reward scores.", shown="none")
    eval_fraction: float = eval_fraction_setting()
    train_sample: int | None = train_sample_setting()
    eval_limit: int | None = eval_limit_setting()
    max_new_tokens: int = setting(96, "Reply length limit.", min=1)
    temperature: float = setting(0.7, "Sampling temperature of the evaluation replies.",
                                 min=0)
    seed: int = seed_setting("Seed of every stage (the DPO runs' too).")


@dataclass
class RAHFCompareConfig(FromFile):
    """Everything that defines a RAHF-vs-baselines experiment but the data."""

    reward: str | None = setting(None, "Reward model for mean reward scores. Required "
                                       "(here or in --config).")
    policy: PolicyConfig = setting(
        factory=lambda: PolicyConfig(lora=True, max_length=512, batch_size=4),
        help="Every method's start and training settings ([policy] table).")
    rahf: RAHFConfig = setting(factory=RAHFConfig, help="RAHF's own settings ([rahf] "
                               "table; base, seed, lengths and device are the policy's).")
    dual_lr: float | None = setting(None, "RAHF-Dual step-2 learning rate.", gt=0,
                                    shown="9e-6")
    steer_coeff: float = setting(1.0, "Steering coefficient.")
    judge: str = judge_setting("Win-rate judge: a model or a URL.")
    task: str = setting("harmless", "The judge's task.", choices=TASKS)
    eval_fraction: float = eval_fraction_setting()
    train_sample: int | None = train_sample_setting()
    eval_limit: int | None = eval_limit_setting()
    perplexity_pairs: int = setting(100, "Held-out pairs of the perplexity.", min=1)
    temperatures: list[float] = setting(factory=lambda: [0.7, 1.0],
                                        help="Sampling temperatures.")
    max_new_tokens: int = setting(96, "Reply length limit.", min=1)
    methods: list[str] = setting(factory=lambda: list(RAHF_METHODS),
                                 help="Methods to run (sft, the reference, among them).")
    seed: int = seed_setting("Seed of every stage.")

    def __post_init__(self) -> None:
        self.temperatures = [float(t) for t in self.temperatures]
        self.methods = list(self.methods)
        unknown = sorted(set(self.methods) - set(RAHF_METHODS))
        if unknown or "sft" not in self.methods:
            raise ValueError(f"methods (--methods) must include 'sft' and come from "
                             f"{', '.join(RAHF_METHODS)}; unknown: {unknown}")
        if not self.temperatures or min(self.temperatures) < 0:
            raise ValueError(f"temperatures (--temperatures) must be 0 or more, got "
                             f"{self.temperatures}")
        super().__post_init__()


@dataclass
class OverOptimizationConfig(FromFile):
    """Everything that defines a reward over-optimisation experiment but the data."""

    policy: str = setting("smollm2-135m-instruct", "The policy optimised against the train "
                                                   "PM (best-of-N, RL).")
    # both PMs' settings; one epoch each (train-rm's default is 2): the two PMs are
    # most of the run's time, about 20 min each on 2 CPU cores at one epoch
    rm: RewardConfig = setting(factory=lambda: RewardConfig(epochs=1.0),
                               help="Both PMs' train-rm settings ([rm] table; the seed, "
                                    "device and threads are the experiment's).")
    n: list[int] = setting(factory=lambda: [1, 2, 4, 8, 16, 32, 64],
                           help="Best-of-N values.")
    rl_steps: int = setting(0, "RL steps against the train PM (0: none).", min=0)
    rl_checkpoints: int = setting(4, "RL checkpoints scored (every rl_steps / "
                                     "rl_checkpoints).", min=1)
    rl: RLConfig = setting(factory=RLConfig, help="The RL recipe's settings ([rl] table; "
                                                  "policy, reward and steps are set here).")
    eval_fraction: float = setting(0.2, "Share of the pairs held out; their prompts are "
                                        "optimised on.", gt=0, max=1)
    train_sample: int | None = setting(None, "The PMs train on halves of a seeded random "
                                             "sample of N pairs.", min=1, shown="all")
    prompts: int = setting(40, "Held-out prompts optimised on.", min=2)
    temperature: float = setting(1.0, "Sampling temperature of best-of-N.", min=0)
    max_new_tokens: int = setting(48, "Reply length limit.", min=1)
    batch_size: int = setting(8, "Replies sampled at once.", min=1)
    n_boot: int = setting(2000, "Bootstrap resamples of the prompts.", min=1)
    seed: int = seed_setting("Seed of every stage.")
    device: str = device_setting()
    threads: int | None = threads_setting()

    def __post_init__(self) -> None:
        n = [int(k) for k in self.n]
        if not n or min(n) < 1:
            raise ValueError(f"n (--n): every N must be at least 1, got {self.n}")
        self.n = sorted(set(n))
        super().__post_init__()
