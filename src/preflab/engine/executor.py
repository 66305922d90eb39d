"""Where batches run. The local executor runs them in order in this process; a
cluster executor (Ray) can stand in its place, since batches are independent."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], batches: Sequence[Any]) -> Iterator[Any]:
        """Yield fn(batch) for each batch, in order."""
        ...


class LocalExecutor:
    """Runs batches one after another in this process."""

    def map(self, fn: Callable[[Any], Any], batches: Sequence[Any]) -> Iterator[Any]:
        for batch in batches:
            yield fn(batch)
