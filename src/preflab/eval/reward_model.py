"""Evaluate a reward model on held-out pairs: accuracy, calibration, score distributions,
and the split-halves robustness study.

Scoring goes through the engine (batched, cached) as a ``seq-rm`` committee member
would; the metrics are the pure functions of :mod:`preflab.eval.metrics`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.committee.spec import MemberSpec
from preflab.data.pair import PreferencePair
from preflab.engine import Engine
from preflab.engine.core import EngineOptions
from preflab.eval.config import RewardEvalConfig
from preflab.eval.metrics import hard_margins, reward_metrics
from preflab.models.reward_folder import check_model, trained_max_length
from preflab.settings import write_config


def score_pairs(model: str | Path, pairs: list[PreferencePair], max_length: int | None = None,
                engine_options: EngineOptions | None = None, device: str = "auto",
                threads: int | None = None) -> pd.DataFrame:
    """Per pair: id, subset, human label, r_chosen, r_rejected, margin."""
    from preflab.committee.members import score_reward_model

    check_model(model)
    max_length = max_length or trained_max_length(model)
    spec = MemberSpec(name=f"rm:{Path(str(model)).name}", kind="seq-rm",
                      options={"model": str(model), "max_length": max_length,
                               "device": device, "threads": threads})
    scores = score_reward_model(spec, pairs, Engine(engine_options or EngineOptions()))
    return pd.DataFrame({
        "id": [p.id for p in pairs], "subset": [p.subset for p in pairs],
        "p_chosen_label": [p.p_chosen for p in pairs],
        "r_chosen": scores.r_chosen, "r_rejected": scores.r_rejected,
        "margin": scores.margin,
    })




def distribution(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"mean": round(float(x.mean()), 4), "std": round(float(x.std()), 4),
            **{f"q{int(k * 100):02d}": round(float(v), 4)
               for k, v in zip((0.05, 0.25, 0.5, 0.75, 0.95), q, strict=True)}}


def summarize_scores(table: pd.DataFrame, bins: int = 10) -> dict[str, Any]:
    """Overall and per-subset metrics of a scored table."""
    margin = hard_margins(table)
    out = reward_metrics(margin, bins)
    out["per_subset"] = {
        str(s): {k: v for k, v in reward_metrics(margin[(table["subset"] == s).to_numpy()],
                                                 bins).items() if k != "reliability"}
        for s in sorted(table["subset"].dropna().unique())}
    out["scores"] = {"r_chosen": distribution(table["r_chosen"].to_numpy()),
                     "r_rejected": distribution(table["r_rejected"].to_numpy()),
                     "margin": distribution(margin)}
    return out


def eval_rm(model: str | Path, data: str | Path, out: str | Path | None = None,
            config: RewardEvalConfig | None = None,
            engine_options: EngineOptions | None = None) -> dict[str, Any]:
    """Score every pair of `data` with the reward model and summarise.

    Writes (with `out`) ``summary.json`` (``accuracy``, ``ece``, log loss, reliability
    bins, per-subset figures, score distributions), ``scores.parquet`` (per pair),
    ``report.html`` and ``config.toml``.
    """
    from preflab.data.read import iter_pairs, load_pairs

    config = config or RewardEvalConfig()
    started = time.perf_counter()
    pairs = list(iter_pairs(load_pairs(data)))
    if not pairs:
        raise ValueError(f"{data}: no pairs to evaluate")
    check_model(model)
    max_length = config.max_length or trained_max_length(model)
    table = score_pairs(model, pairs, max_length, engine_options, config.device,
                        config.threads)
    summary = {"model": str(model), "data": str(data), "max_length": max_length,
               **summarize_scores(table, config.bins),
               "seconds": round(time.perf_counter() - started, 1)}
    if out is not None:
        write_eval(Path(out), summary, table)
        write_config(config, out)
    return summary


def write_eval(out: Path, summary: dict[str, Any], table: pd.DataFrame) -> None:
    from preflab.eval.report import render_eval_report

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table.to_parquet(out / "scores.parquet", index=False)
    (out / "report.html").write_text(render_eval_report(summary, table), encoding="utf-8")
