"""Groups of pairs that must never be split apart: copies of a pair, pairs of one
prompt, pairs that share a reply.

Cross-fitting scores each pair with a model that never saw it. A copy of the pair,
another pair on the same prompt, or a pair holding the same reply text in the
training folds would leak it back in: preference sets hold exact duplicates, the
same prompt many times over, and replies reused across pairs (a reply that is
chosen in one pair and the rejected negative of another; measured on the demo
data, a reply-only crossfit member followed the injected flips, flip AUC 0.473,
until pairs sharing a reply were grouped: 0.502). Every place that folds or splits
pairs groups them first, by pair id, by a normalised prompt and by normalised reply
texts (case and whitespace folded), so all linked pairs land on one side.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_SPACE = re.compile(r"\s+")


def text_key(text: str) -> str:
    """A hash of a text with case and runs of whitespace folded."""
    folded = _SPACE.sub(" ", str(text)).strip().lower()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:24]


def prompt_key(messages: Sequence[Any] | None) -> str:
    """A hash of a prompt's messages with case and runs of whitespace folded."""
    parts = []
    for m in messages or ():
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        parts.append(f"{role}\x1f{_SPACE.sub(' ', str(content)).strip().lower()}")
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()[:24]


def reply_link_limit(n: int) -> int:
    """How many pairs may share a reply text for it to link them: max(2, 1% of pairs).

    A reply reused by a few pairs ties them (the leak above); a generic one that many
    pairs hold ("Hi!", a stock refusal) would chain most of the data into one group
    and leave nothing to cross-fit, so it links nothing.
    """
    return max(2, n // 100)


def frequent_replies(reply_keys: np.ndarray) -> np.ndarray:
    """Mask of the entries of `reply_keys` [pairs, replies] whose text is held by more
    pairs than :func:`reply_link_limit` allows (a pair holding it twice counts once)."""
    keys = np.asarray(reply_keys)
    if keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    first = np.ones(keys.shape, dtype=bool)  # the first copy of a key within its row
    for j in range(1, keys.shape[1]):
        first[:, j] = ~(keys[:, :j] == keys[:, [j]]).any(axis=1)
    values, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1)[first.reshape(-1)], minlength=len(values))
    return counts[inverse.reshape(keys.shape)] > reply_link_limit(len(keys))


def group_ids(ids: Sequence[str], prompt_keys: Sequence[str],
              reply_keys: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """Group index of each pair: pairs sharing an id, a prompt key or a reply key share
    a group (transitively); a reply key held by too many pairs
    (:func:`reply_link_limit`) links nothing.

    Groups are numbered by first appearance, so with no repeats the group of pair i
    is i.
    """
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    replies = [list(r) for r in reply_keys] if reply_keys is not None else [[]] * len(ids)
    if replies and all(len(r) == len(replies[0]) for r in replies) and replies[0]:
        frequent = frequent_replies(np.array(replies, dtype=object).astype(str))
        replies = [[k for k, f in zip(r, fr, strict=True) if not f]
                   for r, fr in zip(replies, frequent, strict=True)]
    first: dict[tuple[str, str], int] = {}
    for i, (pair_id, prompt, reply) in enumerate(zip(ids, prompt_keys, replies, strict=True)):
        keys = [("id", pair_id), ("prompt", prompt), *(("reply", r) for r in reply)]
        for key in keys:
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(find(i), len(numbering)) for i in range(len(ids))],
                    dtype=np.int64)


def pair_groups(pairs: Sequence[Any]) -> np.ndarray:
    """:func:`group_ids` of preference pairs (by id, normalised prompt and reply texts)."""
    return group_ids([p.id for p in pairs], [prompt_key(p.prompt) for p in pairs],
                     [(text_key(p.chosen), text_key(p.rejected)) for p in pairs])


def repeat_counts(groups: np.ndarray, ids: Sequence[str]) -> dict[str, int]:
    """How many pairs are exact copies of an earlier one, and how many share a group
    (a prompt or a reply) with another pair."""
    _, id_counts = np.unique(np.asarray(ids), return_counts=True)
    _, group_sizes = np.unique(groups, return_counts=True)
    return {"duplicate_pairs": int((id_counts - 1).sum()),
            "pairs_in_shared_groups": int(group_sizes[group_sizes > 1].sum()),
            "shared_groups": int((group_sizes > 1).sum())}


def key64(kind: str, key: str) -> int:
    """A 64-bit hash of a grouping key (id, prompt or reply) and its kind."""
    return int.from_bytes(hashlib.blake2b(f"{kind}\x1f{key}".encode(), digest_size=8).digest(),
                          "little", signed=True)


def pair_keys(pairs: Iterable[Any]) -> np.ndarray:
    """[pairs, 4] int64 :func:`key64` hashes of each pair's id, normalised prompt and
    normalised chosen and rejected texts: what :func:`hashed_groups` groups by."""
    return np.array([[key64("id", p.id), key64("prompt", prompt_key(p.prompt)),
                      key64("reply", text_key(p.chosen)), key64("reply", text_key(p.rejected))]
                     for p in pairs], dtype=np.int64).reshape(-1, 4)


def hashed_groups(keys: np.ndarray) -> np.ndarray:
    """:func:`group_ids` on hashed keys (:func:`pair_keys`), in arrays: memory and time
    grow with the pairs, not with Python objects per key. A reply links pairs whether it
    is the chosen or the rejected one in each (the columns after the prompt are one
    key space); groups are numbered by first appearance."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    frequent = np.zeros(keys.shape, dtype=bool)
    frequent[:, 2:] = frequent_replies(keys[:, 2:])  # columns: id, prompt, replies...
    rows, cols = [], []
    for span in (slice(0, 1), slice(1, 2), slice(2, None)):  # one key space each
        block = keys[:, span]
        owner = np.repeat(np.arange(n, dtype=np.int32), block.shape[1])  # row of each entry
        _, first, inverse = np.unique(block.reshape(-1), return_index=True,
                                      return_inverse=True)
        linked = owner[first][inverse]  # the first row holding the entry's key
        link = (linked != owner) & ~frequent[:, span].reshape(-1)  # a row links to itself
        rows.append(owner[link])
        cols.append(linked[link])
        del owner, first, inverse, linked, link
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_row = np.unique(labels, return_index=True)
    rank = np.empty(len(first_row), dtype=np.int64)
    rank[np.argsort(first_row)] = np.arange(len(first_row))
    return rank[labels]
