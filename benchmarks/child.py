"""Run one side of a benchmark in a fresh child process and read its peak memory."""

from __future__ import annotations

import multiprocessing
import resource
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM, the high-water mark of its own
    address space. (``getrusage``'s ``ru_maxrss`` survives fork and exec, so a child
    would report at least its parent's peak.)"""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # KiB -> MiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measured(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
              ) -> tuple[Any, float]:
    result = fn(*args, **kwargs)
    return result, peak_rss_mib()


def in_child(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """(fn(*args, **kwargs), peak resident memory of the child in MiB). The child is
    spawned (not forked), so it holds nothing of the parent's models or tensors;
    `fn` must be a module-level function."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_measured, fn, args, kwargs).result()
