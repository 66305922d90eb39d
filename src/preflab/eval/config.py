"""Settings of the evaluation stages (``preflab eval-rm|winrate|eval-policy|eval-harmless|
probe|steer generate --config FILE``; each run's ``OUT/config.toml`` reproduces it).
Every field is a :func:`~preflab.settings.setting`: its default, help text and range
are written here once, and the commands' options are generated from them. Light: no
torch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from preflab.engine.label_prompt import PREAMBLES, TASKS
from preflab.settings import (
    FromFile,
    device_setting,
    limit_setting,
    seed_setting,
    setting,
    threads_setting,
)
from preflab.train.config import RewardConfig

POLICY = "smollm2-135m-instruct"


def judge_setting(help: str = "Judge: a causal LM or an OpenAI-compatible URL.") -> Any:
    return setting(POLICY, help)


def context_setting() -> Any:
    return setting(256, "The judge's tokens of conversation before the replies (oldest "
                        "cut first); \"none\" in a settings file: all.", min=1)


@dataclass
class RewardEvalConfig(FromFile):
    """Everything that defines a reward-model evaluation (``preflab eval-rm``) but the
    model and the pairs; with `split_halves`, the study that trains two models (each
    with the `rm` settings) on halves of the pairs and compares them."""

    max_length: int | None = setting(
        None, "Tokens per (context, reply); with --split-halves the two models' training "
              "length.", min=1,
        shown="the model's training length; --split-halves: the [rm] table's, 512")
    bins: int = setting(10, "Calibration bins.", min=1)
    split_halves: bool = setting(
        False, "Train two models on disjoint halves of DATA and compare them on held-out "
               "pairs (agreement, rank correlation, divergence).")
    test_fraction: float = setting(0.2, "--split-halves: share of DATA held out for the "
                                        "comparison.", gt=0, max=1)
    rm: RewardConfig = setting(factory=RewardConfig, help="--split-halves: the two models' "
                               "train-rm settings ([rm] table; the seed, device and threads "
                               "are this run's).")
    seed: int = seed_setting("Seed (the split, each model's head and order).")
    device: str = device_setting()
    threads: int | None = threads_setting()

    def trainer(self) -> RewardConfig:
        """The settings each --split-halves model trains with: `rm`, with this run's
        length, seed, device and threads."""
        return replace(self.rm, max_length=self.max_length or self.rm.max_length,
                       seed=self.seed, device=self.device, threads=self.threads)


@dataclass
class WinrateConfig(FromFile):
    """Everything that defines a win-rate run but the two policies and the prompts."""

    judge: str = judge_setting()
    task: str = setting("helpful", "The judge's task.", choices=TASKS)
    preamble: str = setting("detailed", "The judge's preamble.", choices=PREAMBLES)
    temperature: float = setting(0.7, "Sampling temperature of the policies' replies.",
                                 min=0)
    max_new_tokens: int = setting(128, "Reply length limit.", min=1)
    limit: int | None = limit_setting("prompts")
    seed: int = seed_setting()
    batch_size: int = setting(8, "Replies sampled at once.", min=1)
    max_context_tokens: int | None = context_setting()
    device: str = device_setting()
    threads: int | None = threads_setting()


@dataclass
class EvalPolicyConfig(FromFile):
    """Everything that defines a policy evaluation but the model and its data."""

    reward: str | None = setting(None, "Reward model scoring the replies (needs --prompts).")
    temperatures: list[float] = setting(factory=lambda: [0.7, 1.0],
                                        help="Sampling temperatures.")
    max_new_tokens: int = setting(128, "Reply length limit.", min=1)
    limit: int | None = limit_setting("prompts")
    instruction: str | None = setting(None, "good, bad or a text written before each "
                                            "prompt's last user turn (HIR).")
    steer: str | None = setting(None, "A steering vector file to apply.")
    coeff: float = setting(1.0, "The steering vector's coefficient.")
    harmless_judge: str | None = setting(None, "Judge of the harmless rate (a model or an "
                                               "OpenAI-compatible URL).")
    seed: int = seed_setting()
    batch_size: int = setting(8, "Replies sampled at once.", min=1)
    device: str = device_setting()
    threads: int | None = threads_setting()

    def __post_init__(self) -> None:
        self.temperatures = [float(t) for t in self.temperatures]
        if self.steer is not None:
            self.steer = str(self.steer)
        if any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures (--temperatures) must be 0 or more, got "
                             f"{self.temperatures}")
        super().__post_init__()


@dataclass
class HarmlessEvalConfig(FromFile):
    """Everything that defines a check of a harmless-rate judge on labelled pairs
    (``preflab eval-harmless``) but the pairs."""

    judge: str = judge_setting()
    limit: int | None = setting(200, "The first N pairs (\"none\" in a settings file: "
                                     "all).", min=1)
    preamble: str = setting("detailed", "The judge's preamble.", choices=PREAMBLES)
    template: str | None = setting(None, "A TOML file overriding keys of the harmless-rate "
                                         "template.")
    max_context_tokens: int | None = context_setting()
    seed: int = seed_setting("Seed of the bootstrap intervals.")
    device: str = device_setting()
    threads: int | None = threads_setting()


@dataclass
class ProbeConfig(FromFile):
    """Everything that defines a linear probe (``preflab probe``) but its two sets of
    pairs."""

    model: str = setting(POLICY, "Model whose activations are probed.")
    layers: list[int] | None = setting(None, "Layers to try (1 = output of the first "
                                             "block).", shown="all")
    train_sample: int | None = setting(None, "Fit on a seeded random sample of N train "
                                             "pairs.", min=1, shown="all")
    heldout_sample: int | None = setting(None, "Report on a seeded random sample of N "
                                               "held-out pairs.", min=1, shown="all")
    max_length: int = setting(512, "Tokens per prompt+reply.", min=1)
    batch_size: int = setting(8, "Replies per forward pass.", min=1)
    folds: int = setting(3, "Cross-validation folds that choose the layer.", min=2)
    seed: int = seed_setting("Seed (the samples, the probe).")
    device: str = device_setting()


@dataclass
class SteerGenerateConfig(FromFile):
    """Everything that defines steered generation (``preflab steer generate``) but the
    prompts and the vector."""

    model: str = setting(POLICY, "The model the vector was extracted from.")
    coeff: float = setting(1.0, "Coefficient (1 = one typical good-minus-bad difference; "
                                "negative steers away).")
    temperature: float = setting(0.7, "Sampling temperature.", min=0)
    max_new_tokens: int = setting(128, "Reply length limit.", min=1)
    limit: int | None = limit_setting("prompts")
    seed: int = seed_setting("Seed of every sample.")
    device: str = device_setting()
