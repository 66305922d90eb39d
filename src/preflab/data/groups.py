"""Groups of pairs that must never be split apart: copies of a pair and pairs of one prompt.

Cross-fitting scores each pair with a model that never saw it. A copy of the pair,
or another pair on the same prompt, in the training folds would leak it back in:
preference sets hold exact duplicates and the same prompt many times over. Every
place that folds or splits pairs groups them first, by pair id and by a normalised
prompt (case and whitespace folded), so all copies land on one side.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_SPACE = re.compile(r"\s+")


def prompt_key(messages: Sequence[Any] | None) -> str:
    """A hash of a prompt's messages with case and runs of whitespace folded."""
    parts = []
    for m in messages or ():
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        parts.append(f"{role}\x1f{_SPACE.sub(' ', str(content)).strip().lower()}")
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()[:24]


def group_ids(ids: Sequence[str], prompt_keys: Sequence[str]) -> np.ndarray:
    """Group index of each pair: pairs sharing an id or a prompt key share a group.

    Groups are numbered by first appearance, so with no repeats the group of pair i
    is i.
    """
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, keys in enumerate(zip(ids, prompt_keys, strict=True)):
        for kind, key in zip(("id", "prompt"), keys, strict=True):
            j = first.setdefault((kind, key), i)
            if j != i:
                parent[find(i)] = find(j)
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(find(i), len(numbering)) for i in range(len(ids))],
                    dtype=np.int64)


def pair_groups(pairs: Sequence[Any]) -> np.ndarray:
    """:func:`group_ids` of preference pairs (by id and by normalised prompt)."""
    return group_ids([p.id for p in pairs], [prompt_key(p.prompt) for p in pairs])


def repeat_counts(groups: np.ndarray, ids: Sequence[str]) -> dict[str, int]:
    """How many pairs are exact copies of an earlier one, and how many share a prompt
    group with another pair."""
    _, id_counts = np.unique(np.asarray(ids), return_counts=True)
    _, group_sizes = np.unique(groups, return_counts=True)
    return {"duplicate_pairs": int((id_counts - 1).sum()),
            "pairs_in_repeated_prompt_groups": int(group_sizes[group_sizes > 1].sum()),
            "repeated_prompt_groups": int((group_sizes > 1).sum())}
