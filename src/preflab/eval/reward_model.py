"""Evaluate a reward model on held-out pairs: accuracy, calibration, score distributions,
and the split-halves robustness study.

Scoring goes through the engine (batched, cached) as a ``seq-rm`` committee member
would; the metrics are the pure functions of :mod:`preflab.eval.metrics`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.committee import MemberSpec
from preflab.data.pair import PreferencePair
from preflab.engine import Engine
from preflab.engine.core import EngineOptions
from preflab.eval.metrics import agreement, reward_metrics

DEFAULT_MAX_LENGTH = 512


def trained_max_length(model: str | Path) -> int:
    """The max_length a preflab-trained model was trained with (else 512)."""
    from preflab.train.reward_model import SUMMARY

    summary = Path(model) / SUMMARY
    if summary.exists():
        return int(json.loads(summary.read_text())["config"]["max_length"])
    return DEFAULT_MAX_LENGTH


def check_model(model: str | Path) -> None:
    """A reward model must be a preset, an existing folder or a hub id (org/name)."""
    from preflab.models.presets import PRESETS

    name = str(model)
    if name in PRESETS or Path(name).exists() or re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return
    raise FileNotFoundError(f"reward model {name}: no such folder (nor a preset or a hub id)")


def score_pairs(model: str | Path, pairs: list[PreferencePair], max_length: int | None = None,
                engine_options: EngineOptions | None = None, device: str = "auto",
                threads: int | None = None) -> pd.DataFrame:
    """Per pair: id, subset, human label, r_chosen, r_rejected, margin."""
    from preflab.audit.members import score_reward_model

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


def hard_margins(table: pd.DataFrame) -> np.ndarray:
    """Margins oriented to the label: a pair whose p_chosen < 0.5 says rejected is better."""
    sign = np.where(table["p_chosen_label"].to_numpy() >= 0.5, 1.0, -1.0)
    return table["margin"].to_numpy() * sign


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
            max_length: int | None = None, bins: int = 10,
            engine_options: EngineOptions | None = None, device: str = "auto",
            threads: int | None = None) -> dict[str, Any]:
    """Score every pair of `data` with the reward model and summarise.

    Writes (with `out`) ``summary.json`` (``accuracy``, ``ece``, log loss, reliability
    bins, per-subset figures, score distributions), ``scores.parquet`` (per pair) and
    ``report.html``.
    """
    from preflab.data.read import iter_pairs, load_pairs

    started = time.perf_counter()
    pairs = list(iter_pairs(load_pairs(data)))
    check_model(model)
    max_length = max_length or trained_max_length(model)
    table = score_pairs(model, pairs, max_length, engine_options, device, threads)
    summary = {"model": str(model), "data": str(data), "max_length": max_length,
               **summarize_scores(table, bins),
               "seconds": round(time.perf_counter() - started, 1)}
    if out is not None:
        write_eval(Path(out), summary, table)
    return summary


def write_eval(out: Path, summary: dict[str, Any], table: pd.DataFrame) -> None:
    from preflab.eval.report import render_eval_report

    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    table.to_parquet(out / "scores.parquet", index=False)
    (out / "report.html").write_text(render_eval_report(summary, table), encoding="utf-8")


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
