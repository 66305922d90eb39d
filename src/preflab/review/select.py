"""Which audited pairs people review, in which order. Pure functions over the audit table.

``select`` names the strategy; ``sample`` N is how many pairs it chooses:

- ``priority`` (the default without ``strata``): the no- and low-agreement pairs (bins
  ``none`` then ``low``), the pairs the committee leans against most (lowest P(chosen))
  first; with ``sample`` N the first N in that priority over all bins.
- ``strata`` (the default with ``strata``; needs ``sample``; ``strata`` is ``bin``
  unless given ``source``): a seeded sample of N spread evenly over the strata (a
  stratum with fewer pairs gives all it has, the rest go to the others), as Yeh et al.
  sampled per agreement level, interleaved so no reviewer sees one stratum after
  another.
- ``random`` (needs ``sample``): a seeded uniform sample of N.
- ``uncertainty`` (needs ``sample``): the N pairs whose committee probability
  ``p_chosen`` is closest to 0.5 (:func:`uncertainty_scores`; ties in id order).
- ``active`` (needs ``sample``): the N pairs whose human verdict is expected to change
  the cleaning and the committee most (:func:`active_scores`; ties in id order): the
  chance that the cleaning's decision leaves the pair's label wrong
  (:func:`cleaning_change`: a kept pair's 1 - p, a flipped mis-label's p, 0 for a pair
  SAC removes) plus the expected gradient length of the committee's Bradley-Terry fit
  at the pair (:func:`committee_change`, Settles et al. 2008: ``||x|| p (1 - p)`` with
  ``x`` its voters' merged, scaled, oriented margins: high where the members disagree
  strongly and the committee is unsure), each scaled to [0, 1]. The first alone
  corrects the most labels but teaches the committee from a lopsided sample; the
  second alone teaches it but reviews pairs SAC removes anyway. Together they beat a
  random sample of the same size on the noise left after ``audit --review`` and
  ``clean --review`` (``benchmarks/review_calibration.py``).

Every strategy chooses among the pairs not already in the project, and never a pair no
member scored (bin ``unscored``): rounds of ``review add-pairs`` add new pairs and leave
what was judged as it is.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from preflab.audit.combine import committee_voters
from preflab.audit.stats import member_names
from preflab.audit.table import BIN_NAMES, UNSCORED
from preflab.review.config import SELECT, STRATA

DEFAULT_BINS = ("none", "low")
NOT_FLAGGED = "(not flagged)"


def priority(table: pd.DataFrame) -> pd.DataFrame:
    """The table sorted by bin (none first) then P(chosen) (lowest first)."""
    rank = table["bin"].map({b: k for k, b in enumerate(BIN_NAMES)}).fillna(len(BIN_NAMES))
    return table.assign(_rank=rank).sort_values(["_rank", "p_chosen"], kind="stable")


def strata_of(table: pd.DataFrame, strata: str) -> pd.Series:
    if strata not in STRATA:
        raise ValueError(f"--strata must be one of {', '.join(STRATA)}, got {strata!r}")
    if strata == "bin":
        return table["bin"].astype(str)
    if "source" not in table:
        raise ValueError("the audit has no source column; audit again with this preflab")
    return table["source"].fillna("").replace("", NOT_FLAGGED).astype(str)


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """`n` spread as evenly as possible over strata of these sizes (in their order)."""
    take = dict.fromkeys(sizes, 0)
    left = min(n, sum(sizes.values()))
    while left > 0:
        open_ = [s for s in sizes if take[s] < sizes[s]]
        share, extra = divmod(left, len(open_))
        for k, s in enumerate(open_):
            add = min(sizes[s] - take[s], share + (k < extra))
            take[s] += add
            left -= add
    return take


def uncertainty_scores(table: pd.DataFrame) -> np.ndarray:
    """Per pair, how unsure the committee is: 1 - 2 |p_chosen - 0.5| (1 at 0.5, 0 at 0
    or 1; NaN where the pair has no probability)."""
    p = table["p_chosen"].to_numpy(dtype=float)
    return 1 - 2 * np.abs(p - 0.5)


def committee_change(table: pd.DataFrame) -> np.ndarray:
    """Per pair, the expected gradient length of the committee's Bradley-Terry fit were
    people to judge it: ``||x|| p (1 - p)``, `p` the pair's ``p_chosen`` and `x` its
    voters' margins as the committee counts them (the members' ``margin.NAME`` merged,
    scaled and oriented by :func:`preflab.audit.combine.committee_voters` over the whole
    table, as the audit did; a voter without a score adds 0). NaN where the pair has no
    probability."""
    names = member_names(table)
    if not names:
        raise ValueError("the audit table has no member votes (vote.NAME columns): "
                         "audit again with this preflab")
    margins = table[[f"margin.{n}" for n in names]].to_numpy(dtype=float)
    x = np.nan_to_num(committee_voters(margins).margins)
    p = table["p_chosen"].to_numpy(dtype=float)
    return np.linalg.norm(x, axis=1) * p * (1 - p)


def cleaning_change(table: pd.DataFrame) -> np.ndarray:
    """Per pair, the chance that the cleaning's decision leaves its label wrong, by the
    committee's probability `p`: a pair tagged ``mis-label`` is flipped, wrong with
    chance `p`; one the committee sides with (p >= 0.5) is kept, wrong with chance
    1 - p; the rest, and pairs tagged both-bad or both-harmful, are removed by default
    SAC (0: nothing wrong is kept)."""
    p = table["p_chosen"].to_numpy(dtype=float)
    source = (table["source"].fillna("").to_numpy(dtype=object) if "source" in table
              else np.full(len(table), "", dtype=object))
    removed = np.isin(source, ("both-bad", "both-harmful")) | (p < 0.5)
    return np.where(source == "mis-label", p, np.where(removed, 0.0, 1 - p))


def active_scores(table: pd.DataFrame) -> np.ndarray:
    """Per pair, how much people's verdict is expected to change the cleaning and the
    committee: :func:`cleaning_change` / 0.5 plus :func:`committee_change` over its
    largest value in the table, each in [0, 1]. NaN where the pair has no probability."""
    egl = committee_change(table)
    top = np.nanmax(egl) if np.isfinite(egl).any() else 0.0
    return cleaning_change(table) / 0.5 + (egl / top if top > 0 else 0.0)


SCORES = {"uncertainty": uncertainty_scores, "active": active_scores}


def strategy(select: str | None, sample: int | None, strata: str | None
             ) -> tuple[str, str | None]:
    """The strategy and strata that `select`, `sample` and `strata` name, or a
    ValueError naming the flags of a bad combination. `select` None: ``strata`` where
    `strata` is given, else ``priority``."""
    if select is None:
        select = "priority" if strata is None else "strata"
    elif select not in SELECT:
        raise ValueError(f"--select must be one of {', '.join(SELECT)}, got {select!r}")
    if strata is not None and select != "strata":
        raise ValueError(f"--strata {strata} spreads a sample over strata, which --select "
                         f"{select} does not: drop --strata, or use --select strata")
    if select == "strata" and sample is None:
        raise ValueError("--strata draws a sample: give its size with --sample N")
    if select not in ("priority", "strata") and sample is None:
        raise ValueError(f"--select {select} chooses a number of pairs: give it with "
                         "--sample N")
    return select, (strata or "bin") if select == "strata" else None


def _stratified(pool: pd.DataFrame, sample: int, strata: str, seed: int) -> list[str]:
    """A seeded sample of `sample` ids of `pool` (in priority order) spread evenly over
    its strata, interleaved."""
    groups = strata_of(pool, strata)
    order = list(dict.fromkeys(groups))  # priority order of first appearance
    take = allocate({s: int((groups == s).sum()) for s in order}, sample)
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for s in order:
        ids = pool.loc[groups == s, "id"].to_numpy()
        chosen += list(rng.choice(ids, size=take[s], replace=False)) if take[s] else []
    return [str(i) for i in rng.permutation(np.array(chosen, dtype=object))]


def _top(pool: pd.DataFrame, scores: np.ndarray, sample: int) -> list[str]:
    """The `sample` ids of `pool` with the highest scores (NaN last; ties, to 12
    decimals so float noise makes none, in id order)."""
    ranked = pool.assign(_score=-np.round(np.nan_to_num(scores, nan=-np.inf), 12))
    return ranked.sort_values(["_score", "id"], kind="stable")["id"].head(sample).tolist()


def choose_pairs(table: pd.DataFrame, sample: int | None = None, strata: str | None = None,
                 seed: int = 0, exclude: Collection[str] = (), select: str | None = None
                 ) -> list[str]:
    """The ids of the pairs to review, in review order, chosen by the strategy `select`
    (see the module doc; None: ``strata`` with `strata`, else ``priority``); pairs in
    `exclude` (already in the project) are never chosen again, nor are pairs no member
    scored (bin ``unscored``: the committee has no view of them to check)."""
    select, strata = strategy(select, sample, strata)
    keep = (~table["id"].isin(set(exclude)) & (table["bin"] != UNSCORED)).to_numpy()
    pool = table[keep]
    if select in SCORES:  # scored over the whole table: the audit's scaling and orientation
        return _top(pool, SCORES[select](table)[keep], sample or 0)
    if select == "random":
        rng = np.random.default_rng(seed)
        ids = pool["id"].to_numpy(dtype=object)
        return [str(i) for i in rng.choice(ids, size=min(sample or 0, len(ids)),
                                           replace=False)]
    pool = priority(pool)
    if sample is None:
        return pool.loc[pool["bin"].isin(DEFAULT_BINS), "id"].tolist()
    if strata is None:
        return pool["id"].head(sample).tolist()
    return _stratified(pool, sample, strata, seed)
