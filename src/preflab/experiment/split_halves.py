"""Anthropic's train-PM / test-PM study on two halves of the data."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from preflab.engine.core import EngineOptions
from preflab.eval.metrics import agreement, hard_margins, reward_metrics
from preflab.eval.reward_model import score_pairs


def split_halves(data: str | Path, out: str | Path, config: Any = None,
                 test_fraction: float = 0.2, seed: int = 0, bins: int = 10,
                 engine_options: EngineOptions | None = None) -> dict[str, Any]:
    """Anthropic's train-PM / test-PM study: hold out `test_fraction` of the pairs, split
    the rest into two disjoint halves, train one reward model on each (same config),
    and compare them on the held-out pairs: each one's accuracy and ECE, how often
    they prefer the same reply, the rank correlation of their margins, and the
    divergence between their preference distributions."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.split import split_pairs
    from preflab.train.reward_model import RewardConfig, train_stage, write_train_summary

    config = config or RewardConfig()
    out = Path(out)
    started = time.perf_counter()
    pairs = list(iter_pairs(load_pairs(data)))
    rest, held_out = split_pairs(pairs, test_fraction, seed)
    half_a, half_b = split_pairs(rest, 0.5, seed + 1)
    models, tables, training = {}, {}, {}
    for name, half in (("a", half_a), ("b", half_b)):
        folder = out / f"pm-{name}"
        training[name] = train_stage(half, folder, config, config.epochs,
                                     f"{data} (half {name})")
        write_train_summary(folder, str(data), config, [training[name]])
        models[name] = folder
        tables[name] = score_pairs(folder, held_out, config.max_length, engine_options,
                                   config.device, config.threads)
    margin_a, margin_b = hard_margins(tables["a"]), hard_margins(tables["b"])
    summary = {
        "data": str(data), "seed": seed, "test_fraction": test_fraction,
        "n_train_a": len(half_a), "n_train_b": len(half_b), "n_held_out": len(held_out),
        "config": asdict(config),
        "pm_a": {k: v for k, v in reward_metrics(margin_a, bins).items() if k != "reliability"},
        "pm_b": {k: v for k, v in reward_metrics(margin_b, bins).items() if k != "reliability"},
        **agreement(margin_a, margin_b),
        "training_seconds": {k: v["seconds"] for k, v in training.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    joined = tables["a"].merge(tables["b"], on=["id", "subset", "p_chosen_label"],
                               suffixes=("_a", "_b"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    joined.to_parquet(out / "scores.parquet", index=False)
    from preflab.eval.report import render_split_halves_report

    (out / "report.html").write_text(render_split_halves_report(summary, joined),
                                     encoding="utf-8")
    return summary
