"""The over-optimisation experiment: its stages in order, each resumable, and the
summary (``summary.json``, ``curve.csv``, ``curve.png``, ``report.md``)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from preflab.experiment.config import OverOptimizationConfig
from preflab.experiment.overoptimization.bon import sample_bon, score_bon
from preflab.experiment.overoptimization.figure import plot_curve
from preflab.experiment.overoptimization.pms import Run, pm_heldout, split_halves, train_pm
from preflab.experiment.overoptimization.report import report_markdown, write_csv
from preflab.experiment.overoptimization.rl_curve import rl_curve
from preflab.experiment.overoptimization.stats import PMS, curve_points
from preflab.experiment.stages import ExperimentRun, merge_timings, start_run
from preflab.models.reward_folder import SUMMARY


def overoptimization(data: str | Path, out: str | Path = "overoptimization",
                     config: OverOptimizationConfig | None = None, **settings: Any
                     ) -> dict[str, Any]:
    """Run the experiment; returns (and writes) the summary. `settings` (fields of
    :class:`OverOptimizationConfig`) override `config`. Writes ``summary.json``,
    ``curve.csv``, ``curve.png`` and ``report.md`` into `out`."""
    started = time.perf_counter()
    config = replace(config or OverOptimizationConfig(), **settings)
    check(config)
    run = start_run(ExperimentRun(Path(out), config), data)
    halves = run.stage(run.out / "split" / "halves.json", "halves", lambda: split_halves(run))
    trained = {pm: run.stage(run.out / f"pm-{pm}" / SUMMARY, f"pm-{pm}",
                             lambda pm=pm: train_pm(run, pm)) for pm in PMS}
    heldout = run.stage(run.out / "pm-heldout.json", "pm-heldout", lambda: pm_heldout(run))
    run.stage(run.out / "bon" / "samples.json", "bon-sample", lambda: sample_bon(run))
    run.stage(run.out / "bon" / "scores.json", "bon-score", lambda: score_bon(run))
    rl = (run.stage(run.out / "rl" / "summary.json", "rl", lambda: rl_curve(run))
          if config.rl_steps else None)
    summary = curve(run, data, halves, trained, heldout, rl, time.perf_counter() - started)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (run.out / "report.md").write_text(report_markdown(summary))
    return summary


def check(config: OverOptimizationConfig) -> None:
    if not config.n or min(config.n) < 1:
        raise ValueError(f"--n: every N must be at least 1, got {config.n}")
    if config.prompts < 2:
        raise ValueError(f"--prompts must be at least 2, got {config.prompts}")
    if config.rl_steps < 0 or config.rl_checkpoints < 1:
        raise ValueError("--rl-steps must be >= 0 and --rl-checkpoints >= 1")
    if config.rl_steps and config.rl_steps < config.rl_checkpoints:
        raise ValueError(f"--rl-steps {config.rl_steps} is fewer than --rl-checkpoints "
                         f"{config.rl_checkpoints}")


def curve(run: Run, data: str | Path, halves: dict[str, Any], trained: dict[str, Any],
          heldout: dict[str, Any], rl: dict[str, Any] | None, seconds: float
          ) -> dict[str, Any]:
    """The curve's points (``curve.csv``, ``curve.png``) and the summary."""
    c = run.config
    scores = {pm: np.array(v) for pm, v in json.loads(
        (run.out / "bon" / "scores.json").read_text()).items()}
    table, center = curve_points(scores, (rl or {}).get("points", []), c.n, c.seed,
                                 c.n_boot)
    write_csv(table, run.out / "curve.csv")
    plot_curve(table, run.out / "curve.png")
    samples = json.loads((run.out / "bon" / "samples.json").read_text())
    return {
        "data": str(data), "policy": c.policy, "pm_base": c.rm.base, "seed": c.seed,
        "n_prompts": samples["n_prompts"], "n": c.n, "temperature": c.temperature,
        "max_new_tokens": c.max_new_tokens, "rl_steps": c.rl_steps, **halves,
        "pm_training": {pm: {"pairs": t["stages"][-1]["n_pairs"],
                             "train_loss": t["stages"][-1]["train_loss"],
                             "seconds": t["stages"][-1]["seconds"]}
                        for pm, t in trained.items()},
        "pm_heldout": heldout, "samples": samples,
        "standardisation": {pm: {"mean": round(m, 4), "std": round(s, 4)}
                            for pm, (m, s) in center.items()},
        "curve": table, "config": asdict(c),
        "stage_seconds": run.timings,
        "all_stage_seconds": merge_timings(run.out / "stage_seconds.json", run.timings),
        "seconds": round(seconds, 1)}
