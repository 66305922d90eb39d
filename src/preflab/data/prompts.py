"""Prompts to generate from: the contexts of a pair file, or a prompt-only file.

A prompt-only file is JSON lines (or Parquet) with a ``prompt`` field: a string (one
user turn) or a list of ``{"role", "content"}`` messages ending with a user turn.
Any file the pair readers take works too: its pairs' prompts are used, each once.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflab.data.messages import Messages, as_messages, text_hash
from preflab.data.pair import check_messages
from preflab.errors import FieldError, PairError


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: Messages
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def prompt_of(messages: list[dict[str, str]], meta: dict[str, Any] | None = None) -> Prompt:
    m = as_messages(messages)
    return Prompt(text_hash("prompt", m), m, meta or {})


def _prompt_rows(path: Path) -> list[dict[str, Any]] | None:
    """Rows of a prompt-only file, or None when the file holds pairs."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "chosen" in table.column_names:
            return None
        return table.to_pylist()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        first = f.readline()
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return None
    if not isinstance(row, dict) or "chosen" in row or "prompt" not in row:
        return None
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise PairError(str(path), i, None, f"not JSON: {e.msg}") from None
    return rows


def load_prompts(path: str | Path, limit: int | None = None) -> list[Prompt]:
    """Prompts of `path` in file order (duplicates kept once); `limit` keeps the first.
    A file without any is an error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    rows = _prompt_rows(path)
    prompts: dict[str, Prompt] = {}
    if rows is None:
        from preflab.data.read import iter_pairs, load_pairs

        for pair in iter_pairs(load_pairs(path)):
            p = prompt_of(pair.prompt, {"pair": pair.id})
            prompts.setdefault(p.id, p)
    else:
        for i, row in enumerate(rows, 1):
            value = row.get("prompt")
            messages = ([{"role": "user", "content": value}] if isinstance(value, str)
                        else value)
            try:
                if isinstance(value, str) and not value.strip():
                    raise FieldError("prompt", "is empty")
                check_messages(messages, "prompt")
                if not messages:
                    raise FieldError("prompt", "has no messages")
                if messages[-1]["role"] != "user":
                    raise FieldError("prompt", "must end with a user turn")
            except FieldError as e:
                raise PairError(str(path), i, e.field, e.reason) from None
            meta = {k: v for k, v in row.items() if k != "prompt"}
            p = prompt_of(messages, meta)
            prompts.setdefault(p.id, p)
    out = list(prompts.values())
    if not out:
        raise ValueError(f"{path}: no prompts")
    return out[:limit] if limit is not None else out


def write_prompts(prompts: list[Prompt], path: str | Path) -> None:
    """JSON lines with a messages ``prompt`` per row."""
    with open(path, "w", encoding="utf-8") as f:
        for p in prompts:
            row = {"prompt": [{"role": r, "content": c} for r, c in p.messages], **p.meta}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
