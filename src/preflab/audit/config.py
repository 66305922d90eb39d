"""Settings of ``preflab audit`` (``--config FILE``; each run's ``OUT/config.toml``
reproduces it). Light: no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preflab.settings import FromFile, limit_setting, setting, threads_setting

COMBINATIONS = ("stacked", "stacked-free", "selected", "latent", "factor", "mean")
EXECUTORS = ("local", "ray")


@dataclass
class AuditConfig(FromFile):
    """Everything that defines an audit but the data."""

    committee: str = setting("cpu", "Committee: a preset (tiny, cpu-fast, cpu, gpu, ...) or "
                                    "a TOML file.")
    limit: int | None = limit_setting("pairs")
    combine: str = setting(
        "stacked", "Committee probability (near-collinear members merged first): stacked "
        "(weights >= 0 fitted on the other folds' labels, cross-fitted), stacked-free "
        "(weights of either sign), selected (the same after forward selection), latent "
        "(latent-truth model, no labels), factor (one-factor model) or mean.",
        choices=COMBINATIONS)
    seed: int = setting(0, "Seed for folds and stacking.", min=0)
    review: Path | None = setting(
        None, "A review export folder (preflab review export): fit the committee's weights "
              "and orient its voters on people's verdicts instead of the audited labels, and "
              "measure every member against people (combine stacked or stacked-free).")
    review_min_pairs: int = setting(
        20, "Reviewed pairs with a consensus naming the better reply needed to fit on "
            "people; with fewer the weights stay fitted on the labels.", min=1)
    on_error: str = setting("fail", "fail: stop at the first bad record; skip: record it "
                                    "and go on.", choices=("fail", "skip"))
    max_tokens: int = setting(4096, "Padded tokens per batch.", min=1)
    cache: Path | None = setting(None, "Score cache (SQLite).",
                                 shown="$PREFLAB_CACHE/scores.sqlite")
    threads: int | None = threads_setting()
    executor: str | None = setting(
        None, "Where batches run: local (this process) or ray (a pool of Ray actors, each "
              "holding its own copy of the model; needs preflab[ray]).",
        choices=EXECUTORS, shown="a committee file's [engine] executor, else local")
    ray_address: str | None = setting(None, "Ray: join this cluster (e.g. auto or "
                                            "ray://head:10001) instead of starting a local one.")
    actors: int | None = setting(None, "Ray: actors, each with its own copy of the model.",
                                 min=1, shown="the committee file's, else 2")
    actor_cpus: float | None = setting(None, "Ray: CPUs reserved per actor (also its torch "
                                             "threads).", min=0, shown="1")
    actor_gpus: float | None = setting(None, "Ray: GPUs per actor (1: one GPU each).", min=0,
                                       shown="0")
