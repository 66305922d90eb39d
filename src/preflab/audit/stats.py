"""Summary statistics of an audit table (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.combine import COLLINEAR, correlations, sign_test_z
from preflab.audit.table import BIN_NAMES

CHANCE_Z = 2.0  # |sign-test z| below which a member's agreement with the labels is chance


def member_names(table: pd.DataFrame) -> list[str]:
    return [c.split(".", 1)[1] for c in table.columns if c.startswith("vote.")]


def fleiss_kappa(votes: np.ndarray) -> float:
    """Fleiss' kappa of M raters over 2 categories (agree / disagree with the label)."""
    n, m = votes.shape
    if m < 2 or n == 0:
        return float("nan")
    counts = np.stack([votes.sum(axis=1), m - votes.sum(axis=1)], axis=1).astype(float)
    p_j = counts.sum(axis=0) / (n * m)
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def bin_counts(table: pd.DataFrame) -> dict[str, Any]:
    """Counts and fractions per bin, overall and per subset."""
    def counts(frame: pd.DataFrame) -> dict[str, Any]:
        c = frame["bin"].value_counts()
        return {b: {"count": int(c.get(b, 0)), "fraction": round(float(c.get(b, 0)) / len(frame),
                                                                 4)}
                for b in BIN_NAMES}

    return {"overall": counts(table),
            "by_subset": {s: counts(f) for s, f in table.groupby("subset", sort=True)}}


def flip_detection_auc(table: pd.DataFrame) -> dict[str, float] | None:
    """ROC-AUC of each member's and the committee's suspicion against known flips."""
    if "flipped" not in table or table["flipped"].nunique() < 2:
        return None
    from sklearn.metrics import roc_auc_score

    y = table["flipped"].to_numpy()
    aucs = {"committee": float(roc_auc_score(y, 1 - table["p_chosen"]))}
    for name in member_names(table):
        aucs[name] = float(roc_auc_score(y, -np.nan_to_num(table[f"margin.{name}"])))
    return aucs


def member_diagnostics(table: pd.DataFrame, weights: dict[str, float] | None = None,
                       threshold: float = COLLINEAR) -> tuple[dict[str, Any], list[str]]:
    """Per member: agreement with the labels and its sign-test z (agreements minus
    disagreements over the square root of their sum; ties left out), estimated
    accuracy under the committee (expected agreement with the committee's
    P(chosen better), ties half), normalised weight, correlation with every other
    member; a warning for each pair of members that correlate above `threshold` (they
    count as one), and one for each weighted member whose agreement with the labels
    is within chance (|z| < :data:`CHANCE_Z`): the labels give no evidence that it is
    accurate, so its weight may follow their noise."""
    names = member_names(table)
    margins = table[[f"margin.{n}" for n in names]].to_numpy(dtype=float)
    r = correlations(margins)
    z = sign_test_z(margins)
    q = table["p_chosen"].to_numpy(dtype=float)
    rows: dict[str, Any] = {}
    chance: list[str] = []
    for k, name in enumerate(names):
        x = margins[:, k]
        seen = ~np.isnan(x)
        right = np.where(x > 0, q, np.where(x < 0, 1 - q, 0.5))[seen]
        agreement = float((x[seen] > 0).mean()) if seen.any() else None
        z_k = round(float(z[k]), 2) if (x[seen] != 0).any() else None
        weight = None if weights is None else weights.get(name)
        rows[name] = {
            "agreement_with_labels": None if agreement is None else round(agreement, 4),
            "sign_test_z": z_k,
            "estimated_accuracy": round(float(right.mean()), 4) if seen.any() else None,
            "weight": weight,
            "correlation": {o: round(float(r[k, j]), 3) for j, o in enumerate(names) if j != k},
        }
        if z_k is not None and abs(z_k) < CHANCE_Z and (weight or 0) > 0:
            chance.append(f"{name}: agrees with the labels on {agreement:.1%} of {seen.sum()} "
                          f"pairs, within chance (sign test z = {z_k:+.2f}, |z| < "
                          f"{CHANCE_Z:g}); the labels give no evidence that it is accurate, "
                          f"so its weight ({weight:.3f}) may follow their noise")
    warnings = [f"{a} and {b} correlate {r[i, j]:+.2f} (|r| >= {threshold}): these two count "
                f"as one" for i, a in enumerate(names) for j, b in enumerate(names)
                if i < j and abs(r[i, j]) >= threshold]
    return rows, warnings + chance


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """The headline figures of an audit."""
    names = member_names(table)
    votes = table[[f"vote.{n}" for n in names]].to_numpy()
    bins = bin_counts(table)
    overall = bins["overall"]
    agreement_matrix = {a: {b: round(float(np.mean(votes[:, i] == votes[:, j])), 4)
                            for j, b in enumerate(names)} for i, a in enumerate(names)}
    summary: dict[str, Any] = {
        "n_pairs": len(table),
        "members": names,
        "bins": bins,
        "low_or_no_agreement_fraction": round(overall["none"]["fraction"]
                                              + overall["low"]["fraction"], 4),
        "member_agreement_with_labels": {n: round(float(votes[:, i].mean()), 4)
                                         for i, n in enumerate(names)},
        "committee_agreement_with_labels": round(float((table["p_chosen"] > 0.5).mean()), 4),
        "member_agreement_matrix": agreement_matrix,
        "fleiss_kappa": round(fleiss_kappa(votes), 4),
    }
    aucs = flip_detection_auc(table)
    if aucs is not None:
        summary["flip_detection_auc"] = {k: round(v, 4) for k, v in aucs.items()}
        summary["n_flipped"] = int(table["flipped"].sum())
    return summary
