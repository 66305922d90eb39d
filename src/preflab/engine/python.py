"""Python callables as scorers: r = fn(context_messages, reply), cached like any model."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from preflab.engine.units import Unit

ENTRY_POINT_GROUP = "preflab.scorers"


def load_callable(function: str | None = None, entry_point: str | None = None
                  ) -> Callable[[list[dict[str, str]], str], float]:
    """A scoring function by ``module:name`` or by its ``preflab.scorers`` entry point."""
    if entry_point is not None:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == entry_point]
        if not found:
            known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
            raise ValueError(f"no '{ENTRY_POINT_GROUP}' entry point named {entry_point!r}; "
                             f"installed: {known or 'none'}")
        return found[0].load()
    if not function or ":" not in function:
        raise ValueError(f"function must look like 'module:name', got {function!r}")
    module, _, attr = function.partition(":")
    return getattr(importlib.import_module(module), attr)


class PythonScorer:
    """Runs a plain function over (context, reply) units; no batching needed."""

    def __init__(self, fn: Callable[[list[dict[str, str]], str], float], name: str) -> None:
        self.fn = fn
        self.name = name
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = getattr(fn, "__qualname__", repr(fn))
        self.fingerprint = hashlib.sha256(
            f"python:{getattr(fn, '__module__', '')}:{source}".encode()).hexdigest()[:16]

    def encode(self, units: list[Unit]) -> list[Any]:
        return [u.payload for u in units]

    def sort_key(self, item: list[Any]) -> tuple[int, ...]:
        return (0,)

    def cost(self, items: list[list[Any]]) -> tuple[int, int]:
        n = sum(len(i) for i in items)
        return n, n

    def run(self, items: list[list[Any]]) -> list[np.ndarray]:
        out = []
        for item in items:
            for context, reply in item:
                messages = [{"role": r, "content": c} for r, c in context]
                out.append(np.array([float(self.fn(messages, reply))]))
        return out
