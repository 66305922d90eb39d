"""Seeded splits of a pair list (held-out evaluation, split-halves robustness)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from preflab.data.pair import PreferencePair


def split_pairs(pairs: list[PreferencePair], test_fraction: float = 0.5, seed: int = 0
                ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, test): a seeded random `test_fraction` of the pairs is held out; both
    parts keep the input order.

    Pairs with the same prompt (case and whitespace folded; copies of a pair too:
    :func:`preflab.data.groups.pair_groups`) stay on one side, so no held-out prompt
    was trained on: prompts are drawn in a seeded random order until the held-out part has
    `test_fraction` of the pairs (the first prompt to reach it ends the draw). With
    every prompt distinct this is a plain random split of the pairs, and the held-out
    part of a smaller fraction is inside that of a larger one with the same seed."""
    from preflab.data.groups import pair_groups

    test = held_out(pair_groups(pairs), test_fraction, seed)
    return ([p for p, t in zip(pairs, test, strict=True) if not t],
            [p for p, t in zip(pairs, test, strict=True) if t])


def held_out(groups: np.ndarray, test_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """The held-out mask of :func:`split_pairs`, from each pair's group
    (:func:`~preflab.data.groups.pair_groups`, numbered by first appearance)."""
    n = len(groups)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(n * test_fraction)
    if not 0 < n_test < n:
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {n} pairs: one "
                         "part would be empty")
    sizes = np.bincount(groups)
    order = np.random.default_rng(seed).permutation(len(sizes))
    # groups are taken in `order` until the held-out part reaches n_test pairs
    taken = order[:int(np.searchsorted(np.cumsum(sizes[order]), n_test)) + 1]
    test = np.zeros(len(sizes), dtype=bool)
    test[taken] = True
    test = test[groups]
    if test.all():
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {n} pairs: "
                         f"they share {len(sizes)} prompt(s) and no prompt may be on "
                         "both sides")
    return test


def split(data: str | Path, out: str | Path, test_fraction: float = 0.5, seed: int = 0,
          overwrite: bool = True) -> dict[str, Any]:
    """Write ``train.jsonl`` and ``test.jsonl``: a seeded random split of `data`
    (:func:`split_pairs`' split, streamed: the pairs are read once into a file on disk
    and written out a chunk at a time).

    `out` must be missing, empty or a folder split wrote before (its marker
    ``.preflab-split.json`` holds the summary): then its train.jsonl and test.jsonl
    are replaced. Any other non-empty folder is refused unless `overwrite` (the
    command's default is to refuse).
    """
    from preflab.data.containers import kind_of
    from preflab.data.outputs import marker_path, prepare_output_dir
    from preflab.data.spill import spill_pairs
    from preflab.data.stream import PairWriter

    kind_of(data)  # a missing input is reported before any folder is made
    out = prepare_output_dir(out, "split", overwrite)
    with tempfile.TemporaryDirectory(prefix="preflab-split-") as work:
        spill = spill_pairs(data, Path(work) / "pairs.parquet", index=False)
        test = held_out(spill.groups(), test_fraction, seed)
        with (PairWriter(out / "train.jsonl") as train,
              PairWriter(out / "test.jsonl") as held):
            start = 0
            for pairs in spill.chunks():
                part = test[start:start + len(pairs)]
                start += len(pairs)
                train.write(p for p, t in zip(pairs, part, strict=True) if not t)
                held.write(p for p, t in zip(pairs, part, strict=True) if t)
    summary = {"data": str(data), "seed": seed, "test_fraction": test_fraction,
               "train": str(out / "train.jsonl"), "n_train": train.n,
               "test": str(out / "test.jsonl"), "n_test": held.n}
    marker_path(out, "split").write_text(json.dumps({"command": "split", **summary}) + "\n",
                                         encoding="utf-8")
    return summary
