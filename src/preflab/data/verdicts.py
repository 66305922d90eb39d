"""People's judgements in the data's terms, their consensus and their agreement.

Pure functions. A reviewer chooses between reply A and reply B as shown; the order
shown (``CR``: chosen first, ``RC``: rejected first) maps a choice back to a
*verdict* about the data's label: ``chosen`` (the label stands), ``rejected`` (people
prefer the rejected reply: a reversal), ``both-good``, ``both-bad``, ``uncertain``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

VERDICTS = ("chosen", "rejected", "both-good", "both-bad", "uncertain")


def to_verdict(choice: str, shown_order: str) -> str:
    """A choice as shown ("A", "B", or a choice about both) -> the verdict."""
    if shown_order not in ("CR", "RC"):
        raise ValueError(f"shown order must be CR or RC, got {shown_order!r}")
    if choice in ("A", "B"):
        return "chosen" if (choice == "A") == (shown_order == "CR") else "rejected"
    if choice not in VERDICTS:
        raise ValueError(f"unknown choice {choice!r}")
    return choice


def consensus(verdicts: Sequence[str]) -> tuple[str, int]:
    """The verdict more than half of `verdicts` share, and how many share it;
    ("", count of the most common) when there is no majority."""
    if not verdicts:
        return "", 0
    top, n = Counter(verdicts).most_common(1)[0]
    return (top if 2 * n > len(verdicts) else ""), n


def quorum(assigned: int, min_votes: int | None = None) -> int:
    """The votes a pair needs before people's verdict on it counts: `min_votes` when
    given, else a strict majority of the reviewers assigned to it (2 of 3, 3 of 4)."""
    if min_votes is not None:
        if min_votes < 1:
            raise ValueError(f"--min-votes must be at least 1, got {min_votes}")
        return int(min_votes)
    return int(assigned) // 2 + 1


def quorum_words(min_votes: int | None = None) -> str:
    """The :func:`quorum` rule in words."""
    if min_votes is None:
        return "a strict majority of the reviewers assigned to the pair"
    return f"{min_votes} vote{'s' * (min_votes != 1)}"


def decide(verdicts: Sequence[str], assigned: int, min_votes: int | None = None
           ) -> tuple[str, int, int]:
    """(consensus, support, votes missing) of one pair: the consensus is the verdict more
    than half of `verdicts` share once the pair has its :func:`quorum` ('' before, or
    without a majority); support counts the most common verdict; votes missing is how
    many more the quorum needs (0 once it is met)."""
    need = quorum(assigned, min_votes)
    top, n = consensus(verdicts)
    missing = max(0, need - len(verdicts))
    return ("" if missing else top), n, missing


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an [items, categories] table of how many raters put each item
    in each category.

    Items may have different numbers of raters (the usual generalisation: each item's
    agreement is over its own rater pairs); items with fewer than two are left out.
    NaN when fewer than one item is left or the expected agreement is 1.
    kappa = (P_bar - P_e) / (1 - P_e), P_i = sum_j n_ij (n_ij - 1) / (n_i (n_i - 1)),
    p_j = sum_i n_ij / sum_i n_i, P_e = sum_j p_j^2.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError("counts must be a 2-D table [items, categories]")
    n_i = counts.sum(axis=1)
    counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
    if len(counts) == 0:
        return float("nan")
    p_i = (counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / n_i.sum()
    p_e = float((p_j ** 2).sum())
    if p_e >= 1:
        return float("nan")
    return float((p_i.mean() - p_e) / (1 - p_e))


def verdict_counts(per_item: Sequence[Sequence[str]]) -> np.ndarray:
    """[items, len(VERDICTS)] counts of each item's verdicts."""
    index = {v: k for k, v in enumerate(VERDICTS)}
    table = np.zeros((len(per_item), len(VERDICTS)), dtype=int)
    for i, verdicts in enumerate(per_item):
        for v in verdicts:
            table[i, index[v]] += 1
    return table
