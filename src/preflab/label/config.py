"""Settings of ``preflab label`` (``--config FILE``; each run's ``OUT/config.toml``
reproduces it). Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LabelConfig:
    """Everything that defines a labeling run but the data."""

    judge: str = "smollm2-135m-instruct"  # a causal LM, or an OpenAI-compatible URL
    task: str = "helpful"  # helpful | harmless (names the MORE harmful reply) | summary
    preamble: str = "base"  # base | detailed
    shots: int = 0  # exemplars, drawn (seeded) from pairs that are not labelled
    template: str | None = None  # TOML file overriding template keys
    limit: int | None = None  # label the first N pairs
    sample: int | None = None  # label a seeded random sample of N pairs
    seed: int = 0  # the sample, the exemplars, sampled rationales
    cot: bool = False  # chain of thought: a (greedy) rationale first, then the label
    sc: int = 1  # self-consistency: K sampled rationales (with cot), averaged
    cot_tokens: int = 128  # longest rationale
    temperature: float = 1.0  # of the sc rationales
    direct: bool = False  # rate each reply 1-10 on its own instead of comparing
    max_length: int = 2048  # tokens of a judge prompt
    max_context_tokens: int | None = None  # cap on the conversation's tokens; None: what
    # max_length leaves after the template, both replies and the ending (the task kept)
    write_data: bool = False  # also labelled.jsonl with p_chosen = the AI label
    grid: bool = False  # the paper's grid of prompts (command line only)
    grid_cot: bool = True  # the grid includes chain of thought
    device: str = "auto"  # a local judge's device
    threads: int | None = None  # a local judge's CPU threads
    # an HTTP judge's options
    tokenizer: str | None = None  # renders its prompts; None: the served model's
    concurrency: int = 4
    timeout: float = 120.0
    retries: int = 3
    top_logprobs: int = 20

    def http(self) -> dict[str, object]:
        return {"tokenizer": self.tokenizer, "concurrency": self.concurrency,
                "timeout": self.timeout, "retries": self.retries,
                "top_logprobs": self.top_logprobs}
