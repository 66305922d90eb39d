"""The train PM and the test PM: the split-halves study's steps
(:mod:`preflab.experiment.split_halves`) as the experiment's first stages, and the
two PMs as reward functions for the later ones."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from preflab.experiment.config import OverOptimizationConfig
from preflab.experiment.overoptimization.stats import PMS
from preflab.experiment.split_halves import compare_pms, half_file, write_halves
from preflab.experiment.stages import ExperimentRun

Run = ExperimentRun[OverOptimizationConfig]


def split_halves(run: Run) -> dict[str, Any]:
    """The training part into half A (train PM) and half B (test PM), by prompt."""
    from preflab.data.read import iter_pairs, load_pairs

    c = run.config
    folder = run.out / "split"
    # the first half trains the test PM, the second the train PM
    sizes = write_halves(list(iter_pairs(load_pairs(run.train_file))), folder, c.seed,
                         ("test-pm", "train-pm"))
    summary = {"train_pm_pairs": sizes["train-pm"], "test_pm_pairs": sizes["test-pm"],
               "heldout_pairs": sum(1 for _ in iter_pairs(load_pairs(run.eval_file)))}
    (folder / "halves.json").write_text(json.dumps(summary, indent=1))
    return summary


def train_pm(run: Run, pm: str) -> dict[str, Any]:
    """One PM on its half, with the shared settings."""
    from preflab.train.reward_model import train_rm

    c = run.config
    rm = replace(c.rm, seed=c.seed, device=c.device, threads=c.threads)
    return train_rm(half_file(run.out / "split", f"{pm}-pm"), run.out / f"pm-{pm}", rm)


def pm_heldout(run: Run) -> dict[str, Any]:
    """Both PMs on the held-out pairs: accuracy, calibration, agreement."""
    from preflab.data.read import iter_pairs, load_pairs

    c = run.config
    compared = compare_pms({pm: run.out / f"pm-{pm}" for pm in PMS},
                           list(iter_pairs(load_pairs(run.eval_file))),
                           device=c.device, threads=c.threads)
    summary = {**{f"{pm}_pm": m for pm, m in compared.metrics.items()},
               **compared.agreement}
    (run.out / "pm-heldout.json").write_text(json.dumps(summary, indent=1))
    return summary


def pm_scorers(run: Run) -> dict[str, Any]:
    """Both PMs as reward functions of (contexts, replies)."""
    from preflab.committee.rewards import RewardFunction

    c = run.config
    return {pm: RewardFunction(run.out / f"pm-{pm}", device=c.device, threads=c.threads)
            for pm in PMS}
