"""Which token ids mean "1" and "2" after the ending, for any tokenizer.

Tokenizers spell a digit several ways: "1" on its own, " 1" / "Ġ1" (GPT-2 byte
level) or "▁1" (SentencePiece) with a leading space, and some merge it with the
character before it ("=1"). A label's probability is the total over every
single-token spelling of it (:func:`label_token_ids`); the soft label is the
softmax over those totals (:func:`soft_label`). A tokenizer that merges the
ending's last character with the digit still has the digit alone in its
vocabulary; the label is read from that (the text up to the ending is tokenized
without the digit, exactly as the model sees it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SPACE_MARKS = ("", " ", "Ġ", "▁")


def _single(tokenizer: Any, text: str) -> int | None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None


def label_token_ids(tokenizer: Any, ending: str, labels: tuple[str, ...] = ("1", "2")
                    ) -> list[tuple[int, ...]]:
    """Per label, the sorted ids of its single-token spellings.

    Each id decodes to the label (surrounding space aside); the labels' sets are
    disjoint. Fails when a label has no single-token spelling.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    base = tokenizer(ending, add_special_tokens=False)["input_ids"]
    out: list[tuple[int, ...]] = []
    for label in labels:
        found: set[int] = set()
        full = tokenizer(ending + label, add_special_tokens=False)["input_ids"]
        if full[:len(base)] == base and len(full) == len(base) + 1:
            found.add(full[-1])  # what the tokenizer itself writes after the ending
        for text in (label, " " + label):
            i = _single(tokenizer, text)
            if i is not None:
                found.add(i)
        for mark in SPACE_MARKS[2:]:
            i = tokenizer.convert_tokens_to_ids(mark + label)
            if isinstance(i, int) and i != unk:
                found.add(i)
        found = {i for i in found
                 if tokenizer.decode([i], skip_special_tokens=False).strip() == label}
        if not found:
            raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no single token "
                             f"for the label {label!r}; pick other labels")
        out.append(tuple(sorted(found)))
    for j, ids in enumerate(out):
        for k in range(j):
            if set(ids) & set(out[k]):
                raise ValueError(f"labels {labels[k]!r} and {labels[j]!r} share token ids")
    return out


def label_logprobs(logp: np.ndarray, ids: list[tuple[int, ...]]) -> np.ndarray:
    """[..., vocab] log-probs -> [..., labels]: each label's total over its spellings."""
    logp = np.asarray(logp, dtype=np.float64)
    return np.stack([np.logaddexp.reduce(logp[..., list(v)], axis=-1) for v in ids], axis=-1)


def soft_label(label_logp: np.ndarray) -> np.ndarray:
    """Softmax over the labels' log-probs: [..., labels] -> probabilities."""
    x = np.asarray(label_logp, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)
