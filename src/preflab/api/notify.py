"""The warnings a stage has for a Python caller (records rejected, texts truncated,
pairs that failed): each line goes to the caller's `notify` when given, else to
Python's :mod:`warnings` as a ``UserWarning`` pointing at the caller's line, so a
notebook shows it."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

Notify = Callable[[str], None]


def notifier(notify: Notify | None) -> Notify:
    """`notify` itself, or :func:`warn` when None."""
    return notify if notify is not None else warn


def warn(text: str) -> None:
    """`text` as a ``UserWarning`` attributed to the first caller outside preflab."""
    frame, level = sys._getframe(0), 1
    while frame is not None and _in_preflab(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    warnings.warn(text, UserWarning, stacklevel=level)


def _in_preflab(module: str) -> bool:
    return module == "preflab" or module.startswith("preflab.")
