"""Settings of ``preflab clean`` and ``preflab bench noise`` (``--config FILE``; each
run's ``OUT/config.toml`` reproduces it). Light: no pandas, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflab.settings import FromFile, setting

TARGETS = ("jsonl", "parquet", "trl", "hh")
UNCERTAIN = ("keep", "remove")
ON_ERROR = ("fail", "skip")


@dataclass
class CleanConfig(FromFile):
    """Everything that defines a cleaning run but the data and its audit."""

    method: str = setting(
        "sac", "sac, or a baseline: random, vote-all, vote-maj, reward-gap, judge, "
               "confident-learning, loss, ifd-gap; or a named variant such as vote-all-flip, "
               "sac-remove, sac-soft, sac-keep.")
    params: dict[str, Any] = setting(
        factory=dict, flag="--param/-p",
        help="A method parameter as key=value (repeatable), e.g. -p flip_p=0.1 -p "
             "action=flip; --show-params lists them.")
    to: str | None = setting(None, "Output format.", choices=TARGETS, shown="the input's")
    on_error: str = setting("fail", "fail: stop at the first bad record; skip: record it "
                                    "and go on (as the audit did).", choices=ON_ERROR)
    review: Path | None = setting(
        None, "Folder written by `preflab review export`: where people reached a consensus "
              "it overrides the method (reason 'human review').")
    uncertain: str = setting("keep", "With --review: keep or remove the pairs people judged "
                                     "uncertain.", choices=UNCERTAIN)
    min_votes: int | None = setting(
        None, "With --review: votes a pair needs before people's verdict counts (the "
              "export's own default: a strict majority of the reviewers assigned to the "
              "pair, 2 of 3).", min=1, shown="the quorum the export was made with")
    limit: int | None = setting(
        None, "Clean only the first N pairs, as `preflab audit --limit N` audited them (an "
              "audit made with --limit is cleaned that way without it; OUT/config.toml "
              "records the N used).", min=1, shown="the audit's")


@dataclass
class NoiseBenchConfig(FromFile):
    """The noise benchmark's settings: the injected flip rates, the methods scored, the
    committee that audits the noisy data."""

    rates: list[float] = setting(factory=lambda: [0.1, 0.25], flag="--rate",
                                 help="Flip rates, comma-separated.")
    methods: list[str] = setting(factory=lambda: ["all"],
                                 help="all, or comma-separated method variants.")
    committee: str = setting("cpu", "Committee: a preset (tiny, cpu-fast, cpu, gpu, ...) or "
                                    "a TOML file.")
    seed: int = setting(0, "Seed of the injected flips and the audit.", min=0)
    limit: int | None = setting(None, "Use only the first N pairs.", flag="--pairs", min=1,
                                shown="all")

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.methods, str):  # "all" or "sac,vote-all-flip", as typed
            self.methods = [m.strip() for m in self.methods.split(",") if m.strip()]
        self.rates = [float(r) for r in self.rates]
        bad = [r for r in self.rates if not 0 <= r <= 1]
        if bad or not self.rates:
            raise ValueError(f"rates (--rate) must be numbers in [0, 1], got {self.rates}")
