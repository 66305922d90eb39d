"""Scorers kept loaded for a whole run: a streaming audit scores its pairs a chunk at a
time, and each member's model (with its tokenizer) loads once, not once per chunk."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_FROZEN: list[bool] = []


def free_memory() -> None:
    """Release what a finished scorer held (its weights, CUDA's cached blocks), so the
    next one loads into the whole device. What survives the first collection in a
    process (torch's, transformers' and the other libraries' objects, a million or
    more) is frozen out of later ones (``gc.freeze``): a full collection then takes
    milliseconds instead of most of a second per member."""
    import gc

    gc.collect()
    if not _FROZEN:
        gc.freeze()
        _FROZEN.append(True)
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class KeptScorers:
    """The scorer a run is using, kept between calls under a key that says how it was
    built (model and settings), so a member scored a chunk at a time loads once.

    One scorer at a time: asking for another key releases the kept one first (and
    frees its memory), so a committee's members still load one after another.
    `loads` counts the builds per key. A kept scorer starts each use as a fresh one
    would: its record of the units it shortened (``truncated_keys``, read by the
    engine during a run) is emptied, so it does not grow with the data. Use as a
    context manager: the last scorer is released on exit."""

    def __init__(self) -> None:
        self.key: Hashable | None = None
        self.scorer: Any = None
        self.loads: Counter[Hashable] = Counter()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The scorer kept under `key`, else `build()` (counted in `loads`) kept in
        place of the last one."""
        if self.scorer is None or key != self.key:
            self.release()
            self.scorer = build()
            self.key = key
            self.loads[key] += 1
        else:
            shortened = getattr(self.scorer, "truncated_keys", None)
            if isinstance(shortened, set):
                shortened.clear()
        return self.scorer  # type: ignore[no-any-return]

    def release(self) -> None:
        """Drop the kept scorer and free its memory."""
        if self.scorer is not None:
            self.scorer = self.key = None
            free_memory()

    def __enter__(self) -> KeptScorers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
