"""Seeded splits of a pair list (held-out evaluation, split-halves robustness)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from preflab.data.pair import PreferencePair


def split_pairs(pairs: list[PreferencePair], test_fraction: float = 0.5, seed: int = 0
                ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, test): a seeded random `test_fraction` of the pairs is held out; both
    parts keep the input order."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(len(pairs) * test_fraction)
    if not 0 < n_test < len(pairs):
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {len(pairs)} pairs: one "
                         "part would be empty")
    test = np.zeros(len(pairs), dtype=bool)
    test[np.random.default_rng(seed).permutation(len(pairs))[:n_test]] = True
    return ([p for p, t in zip(pairs, test, strict=True) if not t],
            [p for p, t in zip(pairs, test, strict=True) if t])


def split(data: str | Path, out: str | Path, test_fraction: float = 0.5, seed: int = 0
          ) -> dict[str, Any]:
    """Write ``train.jsonl`` and ``test.jsonl``: a seeded random split of `data`."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.write import write_pairs

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = split_pairs(list(iter_pairs(load_pairs(data))), test_fraction, seed)
    write_pairs(train, out / "train.jsonl")
    write_pairs(test, out / "test.jsonl")
    return {"data": str(data), "seed": seed, "test_fraction": test_fraction,
            "train": str(out / "train.jsonl"), "n_train": len(train),
            "test": str(out / "test.jsonl"), "n_test": len(test)}
