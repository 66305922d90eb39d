"""The committee against people: on the pairs people reviewed (``preflab review export``,
their consensus from :func:`preflab.data.reviews.decide_pairs`), how often each member,
the committee and the original label agree with people's consensus, beside how often
they agree with the labels, and whether the committee's doubt predicts where people
reverse the label or split. Pure functions over tables, no model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from preflab.audit.stats import member_names, vote_matrix

Z95 = 1.959964  # the standard normal's 97.5% quantile
N_BOOT = 1000  # bootstrap resamples of an AUC interval
SAID = ("chosen", "rejected")  # the consensus that says which reply is better


def wilson(k: int, n: int, z: float = Z95) -> list[float] | None:
    """Wilson score interval of `k` successes in `n` trials (95% by default):
    (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = k/n; None when n = 0."""
    if n == 0:
        return None
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [round(float(max(0.0, centre - half)), 4), round(float(min(1.0, centre + half)), 4)]


def _aucs(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of `score` [draws, n] against the 0/1 row of `y` [draws, n]
    (Mann-Whitney: mean rank of the positives, ties half); NaN where a class is absent."""
    ranks = rankdata(score, axis=1)
    pos = y.sum(axis=1)
    neg = y.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)


def bootstrap_auc(y: np.ndarray, score: np.ndarray, seed: int = 0, n_boot: int = N_BOOT
                  ) -> dict[str, Any]:
    """ROC-AUC of `score` against the 0/1 `y`, with a 95% percentile bootstrap interval
    over `n_boot` resamples of the items (seeded; a resample that lacks a class is left
    out); auc and ci95 None when one class is absent."""
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    n, n_pos = len(y), int(y.sum())
    result: dict[str, Any] = {"n": n, "n_positive": n_pos, "auc": None, "ci95": None}
    if n_pos in (0, n):
        return result
    result["auc"] = round(float(_aucs(y[None], score[None])[0]), 4)
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boot = _aucs(y[draws], score[draws])
    boot = boot[np.isfinite(boot)]
    result["ci95"] = [round(float(v), 4) for v in np.percentile(boot, [2.5, 97.5])]
    return result


def _agreement(says: np.ndarray, people: np.ndarray, labels: np.ndarray | None = None
               ) -> dict[str, Any]:
    """Agreement of one judge's verdicts `says` (1: chosen better, 0: rejected, NaN: no
    opinion) with people's (`people`: 1/0) and with the labels (share of 1), on the pairs
    where it has an opinion."""
    seen = ~np.isnan(says)
    n = int(seen.sum())
    k = int((says[seen] == people[seen]).sum())
    return {"n": n, "with_people": round(k / n, 4) if n else None, "ci95": wilson(k, n),
            "with_labels": round(float(says[seen].mean()), 4) if n else None}


def _joined(table: pd.DataFrame, decided: pd.DataFrame) -> pd.DataFrame:
    """`decided` with each pair's row of `table` beside it; a ValueError naming the first
    reviewed pair the table lacks."""
    for frame, what, needed in ((table, "audit table", ("id", "p_chosen")),
                                (decided, "reviews", ("pair_id", "consensus", "support",
                                                      "n_votes"))):
        lacking = [c for c in needed if c not in frame]
        if lacking:
            raise ValueError(f"the {what} lacks column(s) {', '.join(lacking)}")
    rows = table.assign(id=table["id"].astype(str)).drop_duplicates("id").set_index("id")
    ids = decided["pair_id"].astype(str)
    missing = ~ids.isin(rows.index)
    if missing.any():
        more = int(missing.sum()) - 1
        raise ValueError(f"reviewed pair {ids[missing].iloc[0]!r}"
                         + (f" (and {more} more)" if more else "")
                         + " is not in the audit table: the review was made on other data "
                         "or with another --limit")
    return rows.loc[ids.to_numpy()].reset_index().assign(
        consensus=decided["consensus"].fillna("").to_numpy(),
        support=decided["support"].to_numpy(), n_votes=decided["n_votes"].to_numpy())


def against_people(table: pd.DataFrame, decided: pd.DataFrame, seed: int = 0
                   ) -> dict[str, Any]:
    """The audit against people's consensus (JSON-ready): on the pairs where people say
    which reply is better (consensus chosen or rejected), each member's, the committee's
    (P(chosen) > 0.5; 0.5 is no opinion) and the original label's agreement with people,
    with a 95% Wilson interval and beside its agreement with the labels; and the ROC-AUC,
    with a seeded bootstrap 95% interval, of the committee's doubt (1 - P(chosen))
    against people reversing the label (decided pairs) and against people splitting
    (support < votes, over reviewed pairs with at least two votes)."""
    joined = _joined(table, decided)
    said = joined[joined["consensus"].isin(SAID)]
    people = (said["consensus"] == "chosen").to_numpy(dtype=float)
    names = member_names(table)
    votes = vote_matrix(said, [f"vote.{n}" for n in names])
    p = said["p_chosen"].to_numpy(dtype=float)
    committee = np.where(np.isnan(p) | (p == 0.5), np.nan, (p > 0.5).astype(float))
    label = _agreement(np.ones(len(said)), people)
    plural = joined[(joined["n_votes"] >= 2) & joined["p_chosen"].notna()]
    scored = said[said["p_chosen"].notna()]
    return {
        "n_reviewed": len(joined),
        "n_decided": len(said),
        "members": {n: _agreement(votes[:, k], people) for k, n in enumerate(names)},
        "committee": _agreement(committee, people),
        "label": label,
        "doubt_vs_reversal": bootstrap_auc((scored["consensus"] == "rejected").to_numpy(),
                                           1 - scored["p_chosen"].to_numpy(dtype=float), seed),
        "doubt_vs_split": bootstrap_auc((plural["support"] < plural["n_votes"]).to_numpy(),
                                        1 - plural["p_chosen"].to_numpy(dtype=float), seed),
    }


def _percent(x: float | None, ci: list[float] | None = None, n: int | None = None) -> str:
    if x is None:
        return "-"
    text = f"{x:.1%}"
    if ci is not None:
        text += f" [{ci[0]:.1%}-{ci[1]:.1%}]"
    return text + ("" if n is None else f" (n={n})")


def people_rows(people: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(who, agreement with people [95% CI] (n), agreement with the labels) for each
    member, the committee and the original label, as text (the console and the report)."""
    rows = [(name, d) for name, d in people["members"].items()]
    rows += [("committee", people["committee"]), ("original label", people["label"])]
    return [(who, _percent(d["with_people"], d["ci95"], d["n"]), _percent(d["with_labels"]))
            for who, d in rows]


def people_auc_lines(people: dict[str, Any]) -> list[str]:
    """Whether the committee's doubt predicts people reversing the label and people
    splitting, one sentence each."""
    lines = []
    for key, what, pairs, positive in (
            ("doubt_vs_reversal", "people reversing the label", "decided pairs", "reversed"),
            ("doubt_vs_split", "people splitting", "pairs with two votes or more", "split")):
        d = people[key]
        head = f"Committee doubt (1 - P(chosen)) against {what}: "
        if d["auc"] is None:
            lines.append(head + f"not defined ({d['n_positive']} of {d['n']} {pairs} "
                                f"{positive}: one class is absent).")
        else:
            lines.append(head + f"ROC-AUC {d['auc']:.3f} [95% CI {d['ci95'][0]:.3f}-"
                                f"{d['ci95'][1]:.3f}] over {d['n']} {pairs} "
                                f"({d['n_positive']} {positive}).")
    return lines
