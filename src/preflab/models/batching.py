"""Length-sorted batches with a cap on padded tokens rather than rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
Cost = Callable[[list[T]], tuple[int, int]]  # items -> (padded tokens, real tokens)


def plan_batches(items: Sequence[T], sort_key: Callable[[T], tuple[int, ...]], cost: Cost,
                 max_tokens: int, max_rows: int = 256, max_waste: float = 1.3
                 ) -> list[list[int]]:
    """Indices of `items` grouped into batches.

    Items are sorted by `sort_key` (lengths), and a batch grows while
    its padded tokens stay within `max_tokens` and within `max_waste` times its
    real tokens. An item larger than the cap gets a batch of its own.
    """
    order = sorted(range(len(items)), key=lambda i: sort_key(items[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        trial = [*current, i]
        padded, real = cost([items[j] for j in trial])
        if current and (len(trial) > max_rows or padded > max_tokens
                        or padded > max_waste * real):
            batches.append(current)
            current = [i]
        else:
            current = trial
    if current:
        batches.append(current)
    return batches
