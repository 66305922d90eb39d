"""Which audited pairs people review, in which order. Pure functions over the audit table.

By default: the no- and low-agreement pairs (bins ``none`` then ``low``), the pairs the
committee leans against most first. ``sample`` N takes the first N in that priority
over all bins; with ``strata`` (``bin`` or ``source``) it draws a seeded sample of N
spread evenly over the strata (a stratum with fewer pairs gives all it has, the rest
go to the others), as Yeh et al. sampled per agreement level, and interleaves them
so no reviewer sees one stratum after another. Pairs no member scored (bin
``unscored``) are never chosen.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from preflab.audit.table import BIN_NAMES, UNSCORED

STRATA = ("bin", "source")
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


def choose_pairs(table: pd.DataFrame, sample: int | None = None, strata: str | None = None,
                 seed: int = 0, exclude: Collection[str] = ()) -> list[str]:
    """The ids of the pairs to review, in review order (see the module doc); pairs in
    `exclude` (already in the project) are never chosen again, nor are pairs no member
    scored (bin ``unscored``: the committee has no view of them to check)."""
    pool = priority(table[~table["id"].isin(set(exclude)) & (table["bin"] != UNSCORED)])
    if strata is not None and sample is None:
        raise ValueError("--strata draws a sample: give its size with --sample N")
    if sample is None:
        return pool.loc[pool["bin"].isin(DEFAULT_BINS), "id"].tolist()
    if strata is None:
        return pool["id"].head(sample).tolist()
    groups = strata_of(pool, strata)
    order = list(dict.fromkeys(groups))  # priority order of first appearance
    take = allocate({s: int((groups == s).sum()) for s in order}, sample)
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for s in order:
        ids = pool.loc[groups == s, "id"].to_numpy()
        chosen += list(rng.choice(ids, size=take[s], replace=False)) if take[s] else []
    return [str(i) for i in rng.permutation(np.array(chosen, dtype=object))]
