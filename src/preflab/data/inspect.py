"""What is in a preference file: counts, subsets, lengths and the problems found."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from preflab.data.groups import prompt_key
from preflab.data.pair import EMPTY_REPLY, PREFIX_MISMATCH
from preflab.data.read import ReadResult, read_pairs

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


def inspect_result(result: ReadResult, tokenize: Tokenize | None = None,
                   tokenizer_name: str = "whitespace", batch_size: int = 1024,
                   max_tokens: int | None = None) -> dict[str, Any]:
    """Statistics of a read: counts, rejects by reason, subsets, turns, token lengths,
    and (with `max_tokens`) how many prompts and replies are longer than that."""
    if tokenize is None:
        tokenizer_name, tokenize = tokenizer_counter(None)
    subsets: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    ids: Counter[str] = Counter()
    prompts: Counter[str] = Counter()
    turns: list[int] = []
    lengths: dict[str, list[int]] = {"prompt": [], "chosen": [], "rejected": []}
    soft = flipped = 0
    for batch in result.pairs.with_format("arrow").iter(batch_size=batch_size):
        rows = batch.to_pylist()
        for r in rows:
            subsets[r["subset"] or "(none)"] += 1
            flags.update(r["flags"] or [])
            ids[r["id"]] += 1
            prompts[prompt_key(r["prompt"])] += 1
            turns.append(len(r["prompt"]))
            soft += r["p_chosen"] not in (0.0, 1.0)
            flipped += bool(json.loads(r["meta"]).get("flipped"))
        lengths["prompt"] += tokenize([render_prompt(r["prompt"]) for r in rows])
        lengths["chosen"] += tokenize([r["chosen"] for r in rows])
        lengths["rejected"] += tokenize([r["rejected"] for r in rows])
    reasons = result.reject_reasons()
    report = {
        "source": result.source,
        "format": result.format,
        "n_records": result.n_records,
        "n_pairs": result.n_pairs,
        "n_rejected": len(result.rejects),
        "rejects_by_reason": reasons,
        "subsets": dict(sorted(subsets.items())),
        "prompt_turns": length_summary(turns),
        "tokenizer": tokenizer_name,
        "prompt_tokens": length_summary(lengths["prompt"]),
        "chosen_tokens": length_summary(lengths["chosen"]),
        "rejected_tokens": length_summary(lengths["rejected"]),
        "max_tokens": max_tokens,
        "over_max_tokens": None if max_tokens is None else {
            k: sum(n > max_tokens for n in v) for k, v in lengths.items()},
        "identical_pairs": reasons.get("chosen and rejected replies are identical", 0),
        "empty_reply": flags[EMPTY_REPLY],
        "prefix_mismatch": flags[PREFIX_MISMATCH],
        "duplicate_ids": sum(c - 1 for c in ids.values() if c > 1),
        "repeated_prompts": sum(c > 1 for c in prompts.values()),
        "pairs_with_a_repeated_prompt": sum(c for c in prompts.values() if c > 1),
        "soft_labels": soft,
    }
    if flipped:
        report["flipped"] = flipped
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
    result = read_pairs(path, format=format, on_error=on_error,  # type: ignore[arg-type]
                        rejects_path=rejects_path, allow_empty=allow_empty)
    return inspect_result(result, tokenizer_counter(tokenizer), str(name),
                          max_tokens=max_tokens)
