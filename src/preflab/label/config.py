"""Settings of ``preflab label`` (``--config FILE``; each run's ``OUT/config.toml``
reproduces it). Each field carries its default, help text and range; the command's
options are generated from them. Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass, replace

from preflab.engine.executor import ExecutorOptions
from preflab.engine.label_prompt import PREAMBLES, TASKS
from preflab.settings import FromFile, setting


@dataclass
class LabelConfig(FromFile):
    """Everything that defines a labeling run but the data."""

    judge: str = setting("smollm2-135m-instruct", "The labeler: a causal-LM preset, folder "
                         "or hub id, or the URL of an OpenAI-compatible server (e.g. "
                         "`preflab serve`).")
    task: str = setting("helpful", "helpful, harmless (asks for the MORE harmful reply; the "
                                   "label is inverted) or summary.", choices=TASKS)
    preamble: str = setting("base", "base or detailed.", choices=PREAMBLES)
    shots: int = setting(0, "Exemplars (seeded, drawn from pairs that are not labelled).",
                         min=0)
    template: str | None = setting(None, "TOML file overriding template keys (base, "
                                         "detailed, sample, ending, cot_ending, invert).",
                                   shown="the task's")
    limit: int | None = setting(None, "Label the first N pairs.", min=1, shown="all")
    sample: int | None = setting(None, "Label a seeded random sample of N pairs (of the "
                                       "first --limit).", min=1, shown="all; --grid: 300")
    seed: int = setting(0, "Seed of the sample, the exemplars and sampled rationales.", min=0)
    on_error: str = setting("fail", "fail: stop at the first bad record; skip: record it "
                                    "and go on.", choices=("fail", "skip"))
    cot: bool = setting(False, "Chain of thought: the judge explains first (greedy), then "
                               "is scored.")
    sc: int = setting(1, "Self-consistency: sample K rationales (with --cot) and average "
                         "the distributions.", min=1)
    cot_tokens: int = setting(128, "Longest rationale, in tokens.", min=1)
    temperature: float = setting(1.0, "Temperature of the --sc rationales.", min=0)
    direct: bool = setting(False, "Rate each reply 1-10 on its own (expected score on "
                                  "[-1, 1]) instead of comparing.")
    max_length: int = setting(2048, "Tokens of a judge prompt.", min=1)
    max_context_tokens: int | None = setting(
        None, "Cap on the tokens of the conversation before the replies; it never gets more "
              "than --max-length leaves beside the template and the replies. A longer one "
              "keeps its first instruction (the first paragraph of the first user turn) and "
              "its most recent tokens, the middle replaced by [...].", min=1,
        shown="what --max-length leaves")
    write_data: bool = setting(False, "Also write labelled.jsonl with p_chosen = the AI "
                                      "label.")
    grid: bool = setting(False, "Run base/detailed x 0/1/2-shot x without/with CoT on the "
                                "same pairs and print the alignment table (Table 2 of the "
                                "paper).")
    grid_cot: bool = setting(True, "Include CoT in --grid.", flag="--grid-cot/--no-cot-grid")
    device: str = setting("auto", "A local judge's device: auto (cuda when present), cpu or "
                                  "cuda.")
    threads: int | None = setting(None, "A local judge's CPU threads for torch.", min=1,
                                  shown="torch's choice")
    # an HTTP judge's options (preflab.engine.http_client.HttpOptions and top_logprobs)
    tokenizer: str | None = setting(None, "HTTP judge: the tokenizer that renders its "
                                          "prompts.", shown="the served model's")
    concurrency: int = setting(4, "HTTP judge: requests in flight.", min=1)
    batch: int | None = setting(None, "HTTP judge: inputs per request.", min=1,
                                shown="the HTTP judge's own")
    timeout: float = setting(120.0, "HTTP judge: seconds per request.", gt=0)
    retries: int = setting(3, "HTTP judge: retries of a failed request.", min=0)
    backoff: float = setting(0.5, "HTTP judge: seconds before the first retry, doubled for "
                                  "each next one.", min=0)
    top_logprobs: int = setting(20, "HTTP judge: top log-probs asked for (the labels must "
                                    "be among them).", min=1)
    executor: ExecutorOptions = setting(
        factory=ExecutorOptions, help="Where the judge's scoring batches run (rationales are "
                                      "generated in this process).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.executor.kind == "local" and replace(self.executor, threads=None) != \
                ExecutorOptions():
            raise ValueError("ray_address, actors, actor_cpus and actor_gpus (--ray-address, "
                             "--actors, --actor-cpus, --actor-gpus) need executor ray "
                             "(--executor ray)")

    def http(self) -> dict[str, object]:
        """An HTTP judge's options, for :func:`~preflab.engine.make_judge.make_judge`."""
        return {"tokenizer": self.tokenizer, "concurrency": self.concurrency,
                "batch": self.batch, "timeout": self.timeout, "retries": self.retries,
                "backoff": self.backoff, "top_logprobs": self.top_logprobs}
