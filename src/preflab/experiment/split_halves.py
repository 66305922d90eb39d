"""The train-PM / test-PM study (Bai et al. 2022, section 4.3) on two halves of the data.

The pairs not held out are split in two halves by prompt, one reward model is trained
on each with the same settings (``train-rm``), and both are compared on the held-out
pairs: each one's accuracy and ECE, how often they prefer the same reply, the rank
correlation of their margins and the divergence between their preference
distributions. ``preflab eval-rm --split-halves`` runs the study alone
(:func:`split_halves`); the over-optimisation experiment runs the same steps
(:func:`write_halves`, ``train_rm``, :func:`compare_pms`) as resumable stages.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.data.pair import PreferencePair
from preflab.engine.core import EngineOptions
from preflab.train.config import RewardConfig


def half_file(folder: Path, name: str) -> Path:
    """Where :func:`write_halves` writes the half `name`."""
    return folder / f"half-{name}.jsonl"


def write_halves(pairs: list[PreferencePair], folder: Path, seed: int,
                 names: tuple[str, str]) -> dict[str, int]:
    """Split `pairs` into two halves by prompt (no prompt on both sides; seeded with
    ``seed + 1``, another draw than the held-out split's) and write them to
    ``folder/half-NAME.jsonl``, ``names[0]`` the first; returns each half's size."""
    from preflab.data.split import split_pairs
    from preflab.data.write import write_pairs

    halves = split_pairs(pairs, 0.5, seed + 1)
    for name, half in zip(names, halves, strict=True):
        write_pairs(half, half_file(folder, name))
    return {name: len(half) for name, half in zip(names, halves, strict=True)}


@dataclass
class Comparison:
    """Reward models compared on the same held-out pairs."""

    metrics: dict[str, dict[str, Any]]  # each model's accuracy, ECE, log loss
    agreement: dict[str, float]  # same reply preferred, Spearman, JS and KL divergence
    tables: dict[str, pd.DataFrame]  # each model's scores (eval.reward_model.score_pairs)


def compare_pms(models: dict[str, Path], held_out: list[PreferencePair], bins: int = 10,
                engine_options: EngineOptions | None = None, device: str = "auto",
                threads: int | None = None) -> Comparison:
    """Two reward models (by name) scored on `held_out` (at the length each was trained
    with): each one's metrics and how far they agree."""
    from preflab.eval.metrics import agreement, hard_margins, reward_metrics
    from preflab.eval.reward_model import score_pairs

    tables = {name: score_pairs(folder, held_out, None, engine_options, device, threads)
              for name, folder in models.items()}
    margins = {name: hard_margins(table) for name, table in tables.items()}
    metrics = {name: {k: v for k, v in reward_metrics(m, bins).items() if k != "reliability"}
               for name, m in margins.items()}
    return Comparison(metrics, agreement(*margins.values()), tables)


def split_halves(data: str | Path, out: str | Path, config: RewardConfig | None = None,
                 test_fraction: float = 0.2, seed: int = 0, bins: int = 10,
                 engine_options: EngineOptions | None = None) -> dict[str, Any]:
    """The study on `data`: hold out `test_fraction` of the pairs, write the two halves
    of the rest (``out/split``), train PM A and PM B on them with `config`
    (``out/pm-a``, ``out/pm-b``) and compare them on the held-out pairs. Writes
    ``summary.json``, ``scores.parquet`` and ``report.html``; returns the summary."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.split import split_pairs
    from preflab.eval.report import render_split_halves_report
    from preflab.train.reward_model import train_rm

    config = config or RewardConfig()
    out = Path(out)
    started = time.perf_counter()
    rest, held_out = split_pairs(list(iter_pairs(load_pairs(data))), test_fraction, seed)
    sizes = write_halves(rest, out / "split", seed, ("a", "b"))
    training = {name: train_rm(half_file(out / "split", name), out / f"pm-{name}",
                               config)["stages"][-1] for name in sizes}
    compared = compare_pms({name: out / f"pm-{name}" for name in sizes}, held_out, bins,
                           engine_options, config.device, config.threads)
    summary = {
        "data": str(data), "seed": seed, "test_fraction": test_fraction,
        "n_train_a": sizes["a"], "n_train_b": sizes["b"], "n_held_out": len(held_out),
        "config": asdict(config),
        "pm_a": compared.metrics["a"], "pm_b": compared.metrics["b"], **compared.agreement,
        "training_seconds": {k: v["seconds"] for k, v in training.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    joined = compared.tables["a"].merge(compared.tables["b"],
                                        on=["id", "subset", "p_chosen_label"],
                                        suffixes=("_a", "_b"))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    joined.to_parquet(out / "scores.parquet", index=False)
    (out / "report.html").write_text(render_split_halves_report(summary, joined),
                                     encoding="utf-8")
    return summary
