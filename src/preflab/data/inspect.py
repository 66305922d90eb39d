"""What is in a preference file: counts, subsets, lengths and the problems found, in
one pass that holds a chunk of pairs at a time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from preflab.data.groups import key64, prompt_key
from preflab.data.pair import EMPTY_REPLY, PREFIX_MISMATCH, PreferencePair
from preflab.data.stream import PairStream

Tokenize = Callable[[list[str]], list[int]]  # texts -> token counts


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    """Percentiles, mean and max of a list of lengths."""
    if len(lengths) == 0:
        return {"p50": 0, "p90": 0, "p99": 0, "mean": 0.0, "max": 0}
    a = np.asarray(lengths)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": round(float(p50), 1), "p90": round(float(p90), 1), "p99": round(float(p99), 1),
            "mean": round(float(a.mean()), 1), "max": int(a.max())}


def render_prompt(messages: list[dict[str, str]]) -> str:
    """Plain-text rendering of a prompt for counting tokens (HH style)."""
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{names[m['role']]}: {m['content']}" for m in messages)


def tokenizer_counter(tokenizer: Any | None) -> Tokenize:
    """A token counter from a loaded tokenizer; None counts whitespace-separated words."""
    if tokenizer is None:
        return lambda texts: [len(t.split()) for t in texts]

    def count(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    return count


def default_max_tokens(tokenizer: Any | None) -> int | None:
    """A tokenizer's ``model_max_length`` when it is a real limit (HF uses 1e30 for none)."""
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit <= 10_000_000 else None


class Tally:
    """What :func:`inspect` counts, added to a chunk at a time. Memory grows by a few
    bytes per pair: ids and prompts are kept as 64-bit hashes
    (:func:`~preflab.data.groups.key64`; a collision among a million pairs has a chance
    near 1e-8) and token lengths as int32 arrays, so every count and percentile is
    computed exactly, from all the values, with no sketch."""

    def __init__(self, tokenize: Tokenize) -> None:
        self.tokenize = tokenize
        self.subsets: Counter[str] = Counter()
        self.flags: Counter[str] = Counter()
        self.ids: list[np.ndarray] = []
        self.prompts: list[np.ndarray] = []
        self.turns: list[np.ndarray] = []
        self.lengths: dict[str, list[np.ndarray]] = {"prompt": [], "chosen": [], "rejected": []}
        self.soft = self.flipped = self.n = 0

    def add(self, pairs: list[PreferencePair]) -> None:
        """Count one chunk of pairs."""
        self.n += len(pairs)
        for p in pairs:
            self.subsets[p.subset or "(none)"] += 1
            self.flags.update(p.flags or [])
            self.soft += p.p_chosen not in (0.0, 1.0)
            self.flipped += bool(p.meta.get("flipped"))
        self.ids.append(np.array([key64("id", p.id) for p in pairs], dtype=np.int64))
        self.prompts.append(np.array([key64("prompt", prompt_key(p.prompt)) for p in pairs],
                                     dtype=np.int64))
        self.turns.append(np.array([len(p.prompt) for p in pairs], dtype=np.int32))
        for name, texts in (("prompt", [render_prompt(p.prompt) for p in pairs]),
                            ("chosen", [p.chosen for p in pairs]),
                            ("rejected", [p.rejected for p in pairs])):
            self.lengths[name].append(np.asarray(self.tokenize(texts), dtype=np.int32))

    def figures(self, max_tokens: int | None) -> dict[str, Any]:
        """The report's counts of what was added."""
        join = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        lengths = {k: join(v) for k, v in self.lengths.items()}
        _, id_counts = np.unique(join(self.ids), return_counts=True)
        _, prompt_counts = np.unique(join(self.prompts), return_counts=True)
        return {
            "subsets": dict(sorted(self.subsets.items())),
            "prompt_turns": length_summary(join(self.turns)),
            "prompt_tokens": length_summary(lengths["prompt"]),
            "chosen_tokens": length_summary(lengths["chosen"]),
            "rejected_tokens": length_summary(lengths["rejected"]),
            "max_tokens": max_tokens,
            "over_max_tokens": None if max_tokens is None else {
                k: int((v > max_tokens).sum()) for k, v in lengths.items()},
            "empty_reply": self.flags[EMPTY_REPLY],
            "prefix_mismatch": self.flags[PREFIX_MISMATCH],
            "duplicate_ids": int((id_counts - 1).sum()),
            "repeated_prompts": int((prompt_counts > 1).sum()),
            "pairs_with_a_repeated_prompt": int(prompt_counts[prompt_counts > 1].sum()),
            "soft_labels": self.soft,
        }


def inspect_stream(stream: PairStream, tokenize: Tokenize | None = None,
                   tokenizer_name: str = "whitespace", max_tokens: int | None = None
                   ) -> dict[str, Any]:
    """Statistics of a read, in one pass over `stream`: counts, rejects by reason,
    subsets, turns, token lengths, and (with `max_tokens`) how many prompts and replies
    are longer than that."""
    if tokenize is None:
        tokenizer_name, tokenize = "whitespace", tokenizer_counter(None)
    tally = Tally(tokenize)
    for pairs in stream:
        tally.add(pairs)
    reasons = stream.reject_reasons()
    figures = tally.figures(max_tokens)
    report = {
        "source": stream.source, "format": stream.format, "n_records": stream.n_records,
        "n_pairs": tally.n, "n_rejected": len(stream.rejects), "rejects_by_reason": reasons,
        "subsets": figures.pop("subsets"), "prompt_turns": figures.pop("prompt_turns"),
        "tokenizer": tokenizer_name, **{k: figures.pop(k) for k in (
            "prompt_tokens", "chosen_tokens", "rejected_tokens", "max_tokens",
            "over_max_tokens")},
        "identical_pairs": reasons.get("chosen and rejected replies are identical", 0),
        **figures,
    }
    if tally.flipped:
        report["flipped"] = tally.flipped
    return report


def inspect(path: str | Path, tokenizer: Any | None = None, tokenizer_name: str | None = None,
            format: str = "auto", on_error: str = "skip",
            rejects_path: str | Path | None = None,
            max_tokens: int | Literal["auto"] | None = "auto",
            allow_empty: bool = True) -> dict[str, Any]:
    """Read a preference file and report what is in it (bad records are counted, not fatal).

    `tokenizer` is a loaded tokenizer (e.g. ``preflab.models.offline.load_tokenizer(name)``)
    that token lengths are counted with; None counts words (``"tokenizer": "whitespace"``).
    Prompts and replies longer than `max_tokens` are counted (``auto``: the tokenizer's
    :func:`default_max_tokens`). Without `allow_empty` (the command's default) a source
    with no records is an error.
    """
    name = (tokenizer_name or getattr(tokenizer, "name_or_path", "tokenizer")
            if tokenizer is not None else "whitespace")
    if max_tokens == "auto":
        max_tokens = default_max_tokens(tokenizer)
    stream = PairStream(path, format=format, on_error=on_error,  # type: ignore[arg-type]
                        rejects_path=rejects_path, allow_empty=allow_empty)
    return inspect_stream(stream, tokenizer_counter(tokenizer), str(name), max_tokens=max_tokens)
