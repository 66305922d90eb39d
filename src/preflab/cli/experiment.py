"""End-to-end experiments, one command each.

Each experiment's settings are the fields of its config dataclass
(:mod:`preflab.experiment.config`); the options that set its training settings are
generated from the nested tables' fields (``--lr`` is the ``[dpo]`` table's
``learning_rate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli.console import out, print_json, user_errors
from preflab.cli.from_config import options_from
from preflab.cli.options import JsonOpt, PairsArg
from preflab.experiment.config import (
    CleanVsOriginalConfig,
    OverOptimizationConfig,
    RAHFCompareConfig,
)

OutDir = Annotated[Path, typer.Option("--out", help="Output folder (a rerun resumes).")]

TRAINING = ("policy", "epochs", "max_length", "batch_size", "grad_accum", "device", "threads")
DPO_OPTIONS = {name: name for name in (*TRAINING, "loss", "beta", "lora")} | {
    "lr": "learning_rate"}
POLICY_OPTIONS = {name: name for name in TRAINING}
RAHF_OPTIONS = {"alpha": "alpha", "scit_lr": "learning_rate"}
RM_OPTIONS = {"base": "base", "rm_epochs": "epochs", "rm_max_length": "max_length"}
RL_OPTIONS = {"rl_batch_size": "batch_size", "rl_beta": "beta"}


@user_errors
@options_from(CleanVsOriginalConfig, nested={"dpo": DPO_OPTIONS})
def clean_vs_original_cmd(
    data: PairsArg,
    config: CleanVsOriginalConfig,
    out_dir: OutDir = Path("clean-vs-original"),
    as_json: JsonOpt = False,
) -> None:
    """Split, audit, clean, DPO on the original and on the cleaned data (same seed and
    settings), then win rate and reward score of one against the other. OUT/config.toml
    holds the settings (`--config` it to rerun; DPO settings in its [dpo] table).

    Example: `preflab experiment clean-vs-original hh.jsonl.gz --reward rm --out cvo`
    """
    from preflab.experiment.clean_vs_original import clean_vs_original

    print_experiment(clean_vs_original(data, out_dir, config), out_dir, as_json)


@user_errors
@options_from(RAHFCompareConfig, nested={"policy": POLICY_OPTIONS, "rahf": RAHF_OPTIONS})
def rahf_experiment_cmd(
    data: PairsArg,
    config: RAHFCompareConfig,
    out_dir: OutDir = Path("rahf-compare"),
    as_json: JsonOpt = False,
) -> None:
    """RAHF-SCIT, RAHF-Dual and steering against SFT, Preferred-SFT, HIR and DPO: same
    split, settings and seed; reward scores, win rates vs SFT, a probe; one report.
    OUT/config.toml holds the settings (`--config` it to rerun; training settings in
    its [policy] and [rahf] tables).

    Example: `preflab experiment rahf hh.jsonl.gz --reward rm --train-sample 200 --out rahf`
    """
    from preflab.experiment.rahf_compare import rahf_compare

    print_experiment(rahf_compare(data, out=out_dir, config=config), out_dir, as_json)


@user_errors
@options_from(OverOptimizationConfig, nested={"rm": RM_OPTIONS, "rl": RL_OPTIONS})
def overoptimization_cmd(
    data: PairsArg,
    config: OverOptimizationConfig,
    out_dir: OutDir = Path("overoptimization"),
    as_json: JsonOpt = False,
) -> None:
    """Reward over-optimisation (Bai et al. 2022): a train PM and a test PM on the two
    halves of the data (split by prompt), best-of-N (and with --rl-steps, RL) against
    the train PM on held-out prompts, both PMs' scores against KL. Writes summary.json,
    curve.csv, curve.png and report.md; a rerun resumes. OUT/config.toml holds the
    settings (`--config` it to rerun; PM settings in its [rm] table, RL's in [rl]).

    Example: `preflab experiment overoptimization hh.jsonl.gz --n 1,2,4,8,16 --out oo`
    """
    from preflab.experiment.overoptimization.run import overoptimization

    print_experiment(overoptimization(data, out_dir, config), out_dir, as_json)


def print_experiment(summary: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    """An experiment's report.md, its time, and with --json its summary."""
    out.print((out_dir / "report.md").read_text())
    out.print(f"{summary['seconds']:.0f} s")
    if as_json:
        print_json(summary)
