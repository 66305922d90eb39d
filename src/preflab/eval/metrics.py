"""Reward-model metrics: pure functions over per-pair margins r(chosen) - r(rejected)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit


def pairwise_accuracy(margin: np.ndarray) -> float:
    """Share of pairs whose chosen reply gets the higher reward (a tie counts half)."""
    margin = np.asarray(margin, dtype=np.float64)
    return float(np.mean((margin > 0) + 0.5 * (margin == 0)))


def reliability_bins(p_chosen: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Top-label reliability of P(chosen better) = sigmoid(margin) against the human label.

    Each pair's confidence is max(p, 1 - p), and it is right when p > 0.5 (a pair at
    exactly 0.5 is half right). Bins of equal width on [0.5, 1]; empty bins are kept
    with count 0 so every diagram has the same axis.
    """
    p = np.asarray(p_chosen, dtype=np.float64)
    conf = np.maximum(p, 1 - p)
    right = (p > 0.5) + 0.5 * (p == 0.5)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else None,
                    "accuracy": float(right[m].mean()) if m.any() else None})
    return out


def expected_calibration_error(p_chosen: np.ndarray, bins: int = 10) -> float:
    """ECE = sum_b |B_b| / n * |accuracy(B_b) - confidence(B_b)| over top-label bins."""
    n = len(p_chosen)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(p_chosen, bins) if b["count"]))


def log_loss(p_chosen: np.ndarray) -> float:
    """Mean -log P(chosen better): the cross-entropy of the human labels."""
    p = np.clip(np.asarray(p_chosen, dtype=np.float64), 1e-12, 1.0)
    return float(-np.log(p).mean())


def bernoulli_js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per pair: Jensen-Shannon divergence (nats) between Bernoulli(p) and Bernoulli(q)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    q = np.clip(np.asarray(q, dtype=np.float64), 1e-12, 1 - 1e-12)
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))

    return (kl(p, m) + kl(q, m)) / 2


def bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per pair: KL(Bernoulli(p) || Bernoulli(q)) in nats."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1 - 1e-12)
    q = np.clip(np.asarray(q, dtype=np.float64), 1e-12, 1 - 1e-12)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def reward_metrics(margin: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Accuracy, ECE, log loss and the reliability table of one set of margins."""
    p = expit(np.asarray(margin, dtype=np.float64))
    return {"n_pairs": len(p), "accuracy": round(pairwise_accuracy(margin), 4),
            "ece": round(expected_calibration_error(p, bins), 4),
            "log_loss": round(log_loss(p), 4),
            "mean_abs_margin": round(float(np.abs(margin).mean()), 4),
            "reliability": reliability_bins(p, bins)}


def agreement(margin_a: np.ndarray, margin_b: np.ndarray) -> dict[str, float]:
    """How far two reward models agree on the same pairs (the train-PM / test-PM study):
    share preferring the same reply, Spearman rank correlation of their margins, and the
    mean JS and KL divergence between their P(chosen better)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(margin_a, np.float64), np.asarray(margin_b, np.float64)
    pa, pb = expit(a), expit(b)
    return {"agreement": round(float(np.mean(np.sign(a) == np.sign(b))), 4),
            "spearman_margin": round(float(spearmanr(a, b).statistic), 4),
            "js_divergence": round(float(bernoulli_js(pa, pb).mean()), 5),
            "kl_divergence_ab": round(float(bernoulli_kl(pa, pb).mean()), 5)}


def classification_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (threshold 0.5), AUC-ROC and cross-entropy of
    probabilities `p` of the positive class against 0/1 labels `y`."""
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )
    from sklearn.metrics import log_loss as _log_loss

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    if len(y) != len(p) or len(set(y.tolist())) != 2:
        raise ValueError("need labels of both classes and one probability per label")
    pred = (p > 0.5).astype(int)
    return {"accuracy": float(accuracy_score(y, pred)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "f1": float(f1_score(y, pred, zero_division=0)),
            "auc": float(roc_auc_score(y, p)),
            "cross_entropy": float(_log_loss(y, np.clip(p, 1e-12, 1 - 1e-12), labels=[0, 1]))}


def hard_margins(table: pd.DataFrame) -> np.ndarray:
    """Margins oriented to the label: a pair whose p_chosen < 0.5 says rejected is better."""
    sign = np.where(table["p_chosen_label"].to_numpy() >= 0.5, 1.0, -1.0)
    return table["margin"].to_numpy() * sign
