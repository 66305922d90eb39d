"""The committee taught by people: its weights fitted on people's verdicts.

``preflab audit --review EXPORT`` reads people's consensus from a review export
(:mod:`preflab.data.reviews`). Each reviewed pair with a consensus that says which
reply is better gives a trusted target: +1 where people side with the label
(``chosen``), -1 where they reverse it (``rejected``); ``both-good``, ``both-bad``,
``uncertain`` and pairs without a consensus give none. Then:

- the votes keep the labels' orientation; each fit orients its columns on its own
  rows (people's verdicts and the weighted labels), and a voter people give no weight
  stops counting in the votes and bins (:func:`preflab.audit.table.counted_voters`: one
  decision from every verdict, so a reviewed pair's bin, unlike its P(chosen), can
  depend on its own verdict);
- the combination (``stacked``: weights >= 0; ``stacked-free``: either sign) is the
  same Bradley-Terry fit over the voters' merged margins, on people's verdicts, with
  the labels of the pairs nobody decided counted beside them. A label weighs
  (1 - 2e)^2 / (1 - 2r)^2 of a verdict, by the information each carries about the
  truth: r is the chance people's majority is wrong (from how often the reviewers
  agree), e the labels' flip rate (people's reversals with r taken out;
  :func:`label_weight`). With reviewers right 85% of the time, at 10% flips a label
  weighs 0.8 of a verdict; at 40%, a twentieth, and people decide.
- one scale fitted on the labels turns that direction into P(chosen) = P(label
  right), as the cleaning rules read it.
- cross-fitting: a reviewed pair, and any pair of its group, is scored with the
  verdicts of the OTHER folds only (the audit's grouped folds); a pair whose group
  nobody reviewed has no verdict to leak and is scored with every verdict. Direction
  and scale use only the other folds' labels.
- each weight gets a 95% bootstrap interval over the reviewed pairs: a wide one says
  the reviews are too few to tell that member's worth.

Why people first: the labels are what is audited. Where they are noisy, members
trained on them (the cross-fitted ones) can agree with the noise itself, and weights
fitted on the labels follow those members: on 500 demo pairs at 40% injected flips
the label-fitted ``cpu`` committee fell 0.13 AUC below the best single member in two
seeds of three. Taught by 50 simulated reviews it came within 0.01 in all three seeds
with ``cpu-fast`` and in two of three with ``cpu``: a sample of 50 can still favour a
label-following member by chance (the docs' results page,
``benchmarks/review_calibration.py``). Below :data:`MIN_DECIDED` decided pairs the
fit is not attempted: the committee stays fitted on the labels and the summary says
why.

Pure functions over arrays.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.combine import (
    COLLINEAR,
    Voters,
    committee_voters,
    fit_nonnegative_bradley_terry,
    member_weights,
)
from preflab.committee.crossfit import fit_bradley_terry, fold_ids
from preflab.data.reviews import check_reviewed, decide_pairs, load_review, review_quorum

MIN_DECIDED = 20  # reviewed pairs with a chosen/rejected consensus needed to fit on people
FITTED = ("stacked", "stacked-free")
TARGET = {"chosen": 1.0, "rejected": -1.0}
LABELS_ONLY = 1e3  # a label's weight where people are no better than a coin
RESAMPLES = 200  # bootstrap resamples of the reviewed pairs for the weights' intervals


def people_targets(ids: Sequence[str], decided: pd.DataFrame, where: str = "the review"
                   ) -> np.ndarray:
    """Per pair of `ids`: +1 (people keep the label), -1 (people reverse it) or NaN
    (no review, or a consensus that names no better reply), from a
    :func:`preflab.data.reviews.decide_pairs` table. A reviewed id not among `ids`
    is an error: the review is of other data."""
    position = {pair_id: k for k, pair_id in enumerate(ids)}
    check_reviewed(decided["pair_id"], position, where)
    targets = np.full(len(ids), np.nan)
    for pair_id, consensus in zip(decided["pair_id"], decided["consensus"], strict=True):
        targets[position[pair_id]] = TARGET.get(consensus, np.nan)
    return targets


def fit_people(x: np.ndarray, targets: np.ndarray, bounded: bool = True,
               labels: np.ndarray | None = None, weight: float = 0.0) -> np.ndarray:
    """Bradley-Terry weights of the columns of `x` (one row per decided pair) fitted on
    people's targets (+1/-1), plus the rows `labels` (pairs nobody decided, the label's
    side +1) each counted `weight`; >= 0 after orientation when `bounded`."""
    diff, rows = x * targets[:, None], np.ones(len(x))
    if labels is not None and weight > 0 and len(labels):
        diff = np.vstack([diff, labels])
        rows = np.concatenate([rows, np.full(len(labels), weight)])
    if bounded:
        return fit_nonnegative_bradley_terry(diff, weights=rows)
    return fit_bradley_terry(diff, weights=rows)


def reviewer_accuracy(tallies: np.ndarray) -> float | None:
    """Each reviewer's chance to name the better reply, from how often people agree:
    with two possible verdicts, two reviewers right with chance q agree with chance
    q^2 + (1 - q)^2, so q = (1 + sqrt(2 A - 1)) / 2 for A the share of agreeing pairs
    of votes within a pair. `tallies`: per decided pair (votes behind the consensus,
    votes). None without a pair of two votes."""
    support, votes = tallies[:, 0], tallies[:, 1]
    several = votes >= 2
    pairs = (votes * (votes - 1))[several].sum()
    if not pairs:
        return None
    agree = (support * (support - 1) + (votes - support) * (votes - support - 1))[several]
    return (1 + np.sqrt(max(2 * agree.sum() / pairs - 1, 0.0))) / 2


def majority_error(q: float, votes: np.ndarray) -> float:
    """The mean chance that a majority of `votes` reviewers, each right with chance q,
    is wrong (a tie counts half)."""
    from scipy.stats import binom

    n = votes.astype(int)
    wrong = binom.cdf((n - 1) // 2, n, q) + 0.5 * np.where(n % 2 == 0, binom.pmf(n // 2, n, q),
                                                            0.0)
    return float(np.mean(wrong))


def label_weight(targets: np.ndarray, tallies: np.ndarray | None = None) -> float:
    """How much one label counts beside one verdict, by the information each carries
    about the truth: a verdict wrong with chance r carries (1 - 2r)^2 of a true one, a
    label flipped with chance e (1 - 2e)^2. r comes from how often the reviewers agree
    (:func:`reviewer_accuracy`, :func:`majority_error`; 0 without `tallies`); e from
    the share of decided pairs people reverse, s = e (1 - r) + (1 - e) r, so
    e = (s - r) / (1 - 2r), between 0 and 1/2."""
    decided = ~np.isnan(targets)
    if not decided.any():
        return 0.0
    reversed_ = float((targets[decided] < 0).mean())
    q = None if tallies is None else reviewer_accuracy(tallies[decided])
    r = 0.0 if q is None else majority_error(q, tallies[decided, 1])
    if r >= 0.5:
        return LABELS_ONLY
    flips = min(max((reversed_ - r) / (1 - 2 * r), 0.0), 0.5)
    return min((1 - 2 * flips) ** 2 / (1 - 2 * r) ** 2, LABELS_ONLY)


def label_scale(score: np.ndarray) -> float:
    """The one Bradley-Terry scale a >= 0 that makes sigmoid(a * score) fit the labels
    (chosen better) of these pairs: P(the label is right | the score)."""
    return max(float(fit_bradley_terry(score[:, None])[0]), 0.0)


def people_logits(x: np.ndarray, targets: np.ndarray, folds: int, seed: int,
                  groups: np.ndarray | None, bounded: bool = True,
                  tallies: np.ndarray | None = None) -> np.ndarray:
    """Each pair's logit, cross-fitted over the audit's grouped folds: a direction
    fitted on people's verdicts with the labels of the other folds' undecided pairs
    counted at :func:`label_weight` of those verdicts, times the one scale that fits
    that direction to the other folds' labels (P(chosen) reads as P(label right), as
    the cleaning rules read it).

    A decided pair, and any pair of its group (its copies, pairs sharing its prompt or
    a reply), is scored with the verdicts of the other folds only. A pair whose group
    holds no verdict has none to leak, and is scored with every verdict. No pair's own
    label enters what scores it. A fold whose other folds hold no verdict falls back to
    the labels alone there."""
    decided = ~np.isnan(targets)
    groups = np.arange(len(x)) if groups is None else np.asarray(groups)
    assign = fold_ids(len(x), folds, seed, groups)
    touched = np.isin(groups, groups[decided])  # a verdict on the pair or on its group
    z = np.zeros(len(x))
    for k in np.unique(assign):
        train, fold = assign != k, assign == k
        labels = x[train & ~decided]
        for rows, verdicts in ((fold & touched, decided & train), (fold & ~touched, decided)):
            if rows.any():
                weight = (label_weight(targets[verdicts], None if tallies is None
                                       else tallies[verdicts]) if verdicts.any() else 1.0)
                w = fit_people(x[verdicts], targets[verdicts], bounded, labels, weight)
                z[rows] = (x[rows] @ w) * label_scale(x[train] @ w)
    return z


def weight_intervals(x: np.ndarray, targets: np.ndarray, bounded: bool = True,
                     seed: int = 0, resamples: int = RESAMPLES,
                     tallies: np.ndarray | None = None) -> np.ndarray:
    """[voters, 2]: the 2.5 and 97.5 percentiles of each voter's normalised weight (|w|
    summing to 1) over bootstrap resamples of the decided pairs (the undecided pairs'
    labels counted as in every fit)."""
    decided = ~np.isnan(targets)
    xd, td, labels = x[decided], targets[decided], x[~decided]
    tally = None if tallies is None else tallies[decided]
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(resamples):
        rows = rng.integers(0, len(xd), len(xd))
        w = fit_people(xd[rows], td[rows], bounded, labels,
                       label_weight(td[rows], None if tally is None else tally[rows]))
        total = np.abs(w).sum()
        shares.append(w / total if total > 0 else w)
    return np.percentile(np.array(shares), [2.5, 97.5], axis=0).T


def people_probability(margins: np.ndarray, targets: np.ndarray, method: str, folds: int = 5,
                       seed: int = 0, groups: np.ndarray | None = None,
                       voters: Voters | None = None, resamples: int = RESAMPLES,
                       tallies: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The committee's P(chosen better) with its weights fitted on people (the module
    doc), and how it was formed: as :func:`preflab.audit.combine.committee_probability`
    says, plus ``fitted_on`` ("people"), ``n_decided`` and ``weight_intervals`` (per
    member, in its normalised share)."""
    if method not in FITTED:
        raise ValueError(f"--review fits the committee's weights on people: combine must be "
                         f"one of {', '.join(FITTED)}, got {method!r}")
    decided = ~np.isnan(targets)
    if voters is None:
        voters = committee_voters(margins)
    x = np.nan_to_num(voters.margins)
    bounded = method == "stacked"
    z = people_logits(x, targets, folds, seed, groups, bounded, tallies)
    weight = label_weight(targets, tallies)
    group_w = fit_people(x[decided], targets[decided], bounded, x[~decided], weight)
    bounds = (weight_intervals(x, targets, bounded, seed, resamples, tallies) if resamples
              else None)
    info: dict[str, Any] = {"method": method, "fitted_on": "people",
                            "n_decided": int(decided.sum()),
                            "label_weight": round(weight, 4),
                            "reviewer_accuracy": (None if tallies is None else _rounded(
                                reviewer_accuracy(tallies[decided]))),
                            "n_reversed": int((targets[decided] < 0).sum())}
    info["member_weights"] = member_weights(voters, group_w, margins.shape[1])
    if bounds is not None:
        low = member_weights(voters, bounds[:, 0], margins.shape[1], normalise=False)
        high = member_weights(voters, bounds[:, 1], margins.shape[1], normalise=False)
        info["member_weight_intervals"] = [sorted((lo, hi))
                                           for lo, hi in zip(low, high, strict=True)]
    info["merged"] = [list(map(int, g)) for g in voters.groups if len(g) > 1]
    info["collinear_threshold"] = COLLINEAR
    return 1.0 / (1.0 + np.exp(-z)), info


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


@dataclass(frozen=True)
class PeopleVerdicts:
    """People's consensus for the audit to learn from: a
    :func:`preflab.data.reviews.decide_pairs` table, where it was read (for messages),
    the quorum in words, and the decided pairs needed to fit on people."""

    decided: pd.DataFrame
    where: str
    quorum: str = ""
    min_decided: int = MIN_DECIDED

    @classmethod
    def read(cls, folder: str | Path, min_decided: int = MIN_DECIDED) -> PeopleVerdicts:
        """The consensus of the review export in `folder`, decided with the export's own
        quorum."""
        min_votes, words, _ = review_quorum(folder)
        return cls(decide_pairs(load_review(folder), min_votes), str(folder), words,
                   min_decided)

    def without(self, ids: Collection[str]) -> PeopleVerdicts:
        """The same without the pairs `ids` (pairs the audit left out)."""
        keep = ~self.decided["pair_id"].isin(set(ids))
        return replace(self, decided=self.decided[keep].reset_index(drop=True))

    def tallies(self, ids: Sequence[str]) -> np.ndarray:
        """[pairs of `ids`, 2]: (votes behind the consensus, votes) per reviewed pair,
        NaN elsewhere."""
        position = {pair_id: k for k, pair_id in enumerate(ids)}
        out = np.full((len(ids), 2), np.nan)
        for row in self.decided.itertuples(index=False):
            if row.pair_id in position:
                out[position[row.pair_id]] = (row.support, row.n_votes)
        return out

    def targets(self, ids: Sequence[str]) -> np.ndarray:
        """:func:`people_targets` of the pairs `ids`."""
        return people_targets(ids, self.decided, self.where)
