"""Settings of the evaluation stages (``preflab winrate|eval-policy --config FILE``;
each run's ``OUT/config.toml`` reproduces it). Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from preflab.settings import FromFile


@dataclass
class WinrateConfig(FromFile):
    """Everything that defines a win-rate run but the two policies and the prompts."""

    judge: str = "smollm2-135m-instruct"  # a causal LM or an OpenAI-compatible URL
    task: str = "helpful"  # helpful | harmless | summary
    preamble: str = "detailed"  # base | detailed
    temperature: float = 0.7  # sampling temperature of the policies' replies
    max_new_tokens: int = 128
    limit: int | None = None  # the first N prompts; None: all
    seed: int = 0
    batch_size: int = 8  # replies sampled at once
    max_context_tokens: int | None = 256  # the judge's context budget; None: all
    device: str = "auto"
    threads: int | None = None


@dataclass
class EvalPolicyConfig(FromFile):
    """Everything that defines a policy evaluation but the model and its data."""

    reward: str | None = None  # reward model scoring the replies (needs prompts)
    temperatures: list[float] = field(default_factory=lambda: [0.7, 1.0])
    max_new_tokens: int = 128
    limit: int | None = None  # the first N prompts; None: all
    instruction: str | None = None  # good, bad or a text before the last user turn (HIR)
    steer: str | None = None  # a steering vector file
    coeff: float = 1.0  # the steering vector's coefficient
    harmless_judge: str | None = None  # judge of the harmless rate (a model or a URL)
    seed: int = 0
    batch_size: int = 8
    device: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        self.temperatures = [float(t) for t in self.temperatures]
        if self.steer is not None:
            self.steer = str(self.steer)
