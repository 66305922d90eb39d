"""Selection rules: which pairs a suspicion score picks.

A score is one float per pair of the audit view, in row order, higher = more
suspect (a NaN score is never picked by a threshold and comes last in a ranking).
Every rule returns a boolean mask over the pairs:

- :func:`top_count` / :func:`top_fraction`: the `count` (``round(k * n)``) highest
  scores, ties broken by position (the earlier pair first);
- :func:`above`: an absolute threshold, ``score > t`` (``>=`` with ``inclusive``);
- :func:`rule`: a boolean rule a method defines itself (e.g. cleanlab's issues).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def top_count(score: Any, count: int) -> np.ndarray:
    """Mask of the `count` pairs with the highest `score` (ties by position, NaN last)."""
    score = np.asarray(score, dtype=float)
    n = len(score)
    if not 0 <= count <= n:
        raise ValueError(f"cannot pick {count} of {n} pairs")
    order = np.argsort(np.nan_to_num(-score, nan=np.inf), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:count]] = True
    return mask


def top_fraction(score: Any, k: float) -> np.ndarray:
    """Mask of the ``round(k * n)`` pairs with the highest `score` (see :func:`top_count`)."""
    if not 0 <= k <= 1:
        raise ValueError(f"k must be a fraction in [0, 1], got {k}")
    return top_count(score, round(k * len(score)))


def above(score: Any, threshold: float, inclusive: bool = False) -> np.ndarray:
    """Mask of the pairs scoring above `threshold` (or at it, with `inclusive`)."""
    score = np.asarray(score, dtype=float)
    with np.errstate(invalid="ignore"):
        return score >= threshold if inclusive else score > threshold


def rule(mask: Any, n: int | None = None) -> np.ndarray:
    """A method's own boolean rule as a mask (checked to cover `n` pairs when given)."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"a rule is a boolean mask, got dtype {mask.dtype}")
    if n is not None and len(mask) != n:
        raise ValueError(f"the rule covers {len(mask)} pairs, the view has {n}")
    return mask
