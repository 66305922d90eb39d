"""preflab: read, audit, clean, label and train on preference feedback.

The names below load on first use, so ``preflab --help`` and importing one
submodule do not pay for Arrow and ``datasets``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from preflab.data.pair import PreferencePair, pair_id
    from preflab.data.read import ReadResult, read_pairs
    from preflab.data.write import write_pairs
    from preflab.errors import PairError

__version__ = "0.1.0"

_LAZY = {
    "PairError": "preflab.errors",
    "PreferencePair": "preflab.data.pair",
    "ReadResult": "preflab.data.read",
    "pair_id": "preflab.data.pair",
    "read_pairs": "preflab.data.read",
    "write_pairs": "preflab.data.write",
}

__all__ = ["PairError", "PreferencePair", "ReadResult", "__version__", "pair_id", "read_pairs",
           "write_pairs"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'preflab' has no attribute {name!r}")
