"""Seeded samples of pairs."""

from __future__ import annotations

import numpy as np

from preflab.data.pair import PreferencePair


def sample_pairs(pairs: list[PreferencePair], limit: int | None, seed: int = 0
                 ) -> list[PreferencePair]:
    """A seeded random sample of `limit` pairs, in their input order (all when None)."""
    if limit is None or limit >= len(pairs):
        return pairs
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(pairs), size=limit, replace=False))
    return [pairs[i] for i in keep]
