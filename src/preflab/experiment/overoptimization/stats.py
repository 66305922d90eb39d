"""The over-optimisation curve's statistics: best-of-N's KL bound and picks, the
per-PM standardisation, the paired bootstrap over prompts. Pure numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

PMS = ("train", "test")


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || policy) in nats: log n - (n - 1) / n."""
    if n < 1:
        raise ValueError(f"best-of-n needs n >= 1, got {n}")
    return float(np.log(n) - (n - 1) / n)


def best_of_n_picks(by: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
    """For each k, the index (per prompt, a row of the [prompts, N] `by`) of the best of
    the first k candidates."""
    if max(ks) > by.shape[1]:
        raise ValueError(f"best-of-{max(ks)} asked for, but only {by.shape[1]} samples")
    return {k: by[:, :k].argmax(1) for k in ks}


def bootstrap_points(train: list[np.ndarray], test: list[np.ndarray], seed: int = 0,
                     n_boot: int = 2000) -> list[dict[str, Any]]:
    """Per point (a per-prompt array of each PM's score; every point on the same
    prompts), the mean of each PM and of the gap train - test, each with a 95%
    percentile bootstrap interval over prompts (the same resamples everywhere)."""
    n = len(train[0])
    if n < 2 or any(len(x) != n for x in [*train, *test]):
        raise ValueError("every point needs the same prompts, at least 2")
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    out = []
    for tr, te in zip(train, test, strict=True):
        row: dict[str, Any] = {}
        for name, x in (("train", tr), ("test", te), ("gap", tr - te)):
            boot = x[idx].mean(1)
            row[name] = round(float(x.mean()), 4)
            row[f"{name}_ci95"] = [round(float(v), 4)
                                   for v in np.percentile(boot, [2.5, 97.5])]
        out.append(row)
    return out


def curve_points(scores: dict[str, np.ndarray], rl_points: list[dict[str, Any]],
                 ks: list[int], seed: int, n_boot: int
                 ) -> tuple[list[dict[str, Any]], dict[str, tuple[float, float]]]:
    """(the curve's rows, each PM's (mean, std)): best-of-k for each k in `ks`, picked
    by the train PM from `scores` (each PM's [prompts, N] scores of the candidates),
    then the RL checkpoints; each PM standardised on the policy's own replies (every
    best-of-N candidate)."""
    center = {pm: (float(s.mean()), float(s.std()) or 1.0) for pm, s in scores.items()}
    labels: list[dict[str, Any]] = []
    per_point: list[dict[str, np.ndarray]] = []
    rows = np.arange(len(scores["train"]))
    for k, pick in best_of_n_picks(scores["train"], ks).items():
        labels.append({"method": "best-of-n", "n": k, "step": None, "kl": best_of_n_kl(k)})
        per_point.append({pm: scores[pm][rows, pick] for pm in PMS})
    for p in rl_points:
        labels.append({"method": "rl", "n": None, "step": p["step"],
                       "kl": float(np.mean(p["kl"]))})
        per_point.append({pm: np.array(p[pm]) for pm in PMS})
    z = {pm: [(x[pm] - center[pm][0]) / center[pm][1] for x in per_point] for pm in PMS}
    points = bootstrap_points(z["train"], z["test"], seed, n_boot)
    table = [{**lab, "kl": round(lab["kl"], 4), **pt,
              "train_raw": round(float(x["train"].mean()), 4),
              "test_raw": round(float(x["test"].mean()), 4)}
             for lab, pt, x in zip(labels, points, per_point, strict=True)]
    return table, center
