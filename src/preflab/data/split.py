"""Seeded splits of a pair list (held-out evaluation, split-halves robustness)."""

from __future__ import annotations

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

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = round(len(pairs) * test_fraction)
    if not 0 < n_test < len(pairs):
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {len(pairs)} pairs: one "
                         "part would be empty")
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(pair_groups(pairs)):
        groups.setdefault(int(g), []).append(i)
    order = list(groups.values())
    test = np.zeros(len(pairs), dtype=bool)
    held = 0
    for g in np.random.default_rng(seed).permutation(len(order)):
        if held >= n_test:
            break
        test[order[g]] = True
        held += len(order[g])
    if test.all():
        raise ValueError(f"cannot hold out {test_fraction:.0%} of {len(pairs)} pairs: "
                         f"they share {len(order)} prompt(s) and no prompt may be on "
                         "both sides")
    return ([p for p, t in zip(pairs, test, strict=True) if not t],
            [p for p, t in zip(pairs, test, strict=True) if t])


def split(data: str | Path, out: str | Path, test_fraction: float = 0.5, seed: int = 0,
          overwrite: bool = True) -> dict[str, Any]:
    """Write ``train.jsonl`` and ``test.jsonl``: a seeded random split of `data`.

    `out` must be missing, empty or a folder split wrote before (its marker
    ``.preflab-split.json`` holds the summary): then its train.jsonl and test.jsonl
    are replaced. Any other non-empty folder is refused unless `overwrite` (the
    command's default is to refuse).
    """
    import json

    from preflab.data.containers import kind_of
    from preflab.data.outputs import marker_path, prepare_output_dir
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.write import write_pairs

    kind_of(data)  # a missing input is reported before any folder is made
    out = prepare_output_dir(out, "split", overwrite)
    train, test = split_pairs(list(iter_pairs(load_pairs(data))), test_fraction, seed)
    write_pairs(train, out / "train.jsonl")
    write_pairs(test, out / "test.jsonl")
    summary = {"data": str(data), "seed": seed, "test_fraction": test_fraction,
               "train": str(out / "train.jsonl"), "n_train": len(train),
               "test": str(out / "test.jsonl"), "n_test": len(test)}
    marker_path(out, "split").write_text(json.dumps({"command": "split", **summary}) + "\n",
                                         encoding="utf-8")
    return summary
