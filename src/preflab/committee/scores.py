"""Scores computed elsewhere: a committee member read from a file (``kind = "scores"``).

A team that scored its pairs with another tool, or on another cluster, writes a
Parquet or JSON Lines file (``.jsonl``, ``.jsonl.gz``) in one of two shapes:

* keyed by pair id (``key = "id"``): columns ``id`` and either ``margin`` (per pair)
  or ``r_chosen`` and ``r_rejected`` (per reply);
* keyed by texts (``key = "text"``): columns ``prompt`` (a string, or a list of
  ``{"role", "content"}`` messages as preflab reads them), ``reply`` and ``reward``:
  one row per (context, reply), so a reply scored once serves every pair it is in.

A pair the file does not cover gets a NaN margin: reported (``missing``, and the first
ids in ``missing_ids``) and counted as a missing vote, never scored 0 or a tie.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from preflab.data.messages import as_messages
from preflab.data.pair import PreferencePair
from preflab.errors import PairError

SHOW_MISSING = 20  # missing pair ids listed in the member's info


def _text_key(prompt: Any, reply: str) -> str:
    """One (context, reply) as a comparable key: the prompt as messages, or as its text."""
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    return json.dumps([list(as_messages(prompt)), reply], ensure_ascii=False)


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line or row number from 1, record) of a Parquet or JSON Lines file."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pandas as pd

        frame = pd.read_parquet(path)
        for i, record in enumerate(frame.to_dict("records"), 1):
            yield i, record
        return
    if not name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")):
        raise PairError(str(path), None, None, "a scores file must be .parquet or .jsonl "
                                               "(optionally .gz)")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise PairError(str(path), i, None, f"not valid JSON: {e.msg}") from None
            if not isinstance(record, dict):
                raise PairError(str(path), i, None, "expected a JSON object")
            yield i, record


def _number(path: Path, line: int, record: dict[str, Any], field: str) -> float:
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
            or math.isinf(value):
        raise PairError(str(path), line, field, f"must be a finite number, got {value!r}",
                        unit="row")
    return float(value)


def _text(path: Path, line: int, record: dict[str, Any], field: str) -> Any:
    value = record.get(field)
    ok = isinstance(value, str) or (
        field == "prompt" and isinstance(value, list | np.ndarray)
        and all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in value))
    if not ok:
        raise PairError(str(path), line, field, "missing, or not a string"
                        + (" or a list of {role, content} messages" if field == "prompt"
                           else ""), unit="row")
    return list(value) if isinstance(value, np.ndarray) else value


def read_scores(path: str | Path, key: str | None = None
                ) -> tuple[str, dict[str, tuple[float, float] | float]]:
    """(key kind, scores) of a scores file: by pair id, (r_chosen, r_rejected) or a margin;
    by text, the reward of each (context, reply). Raises :class:`PairError` naming the
    file, row and field of a bad record, and of a key given twice with other values."""
    path = Path(path).expanduser()
    rows = _rows(path)
    first = next(rows, None)
    if first is None:
        raise PairError(str(path), None, None, "the scores file is empty")
    kind = key or ("id" if "id" in first[1] else "text")
    out: dict[str, Any] = {}
    for line, record in [first, *rows]:
        if kind == "id":
            pid = record.get("id")
            if not isinstance(pid, str) or not pid:
                raise PairError(str(path), line, "id", "missing or not a string", unit="row")
            if "margin" in record and record["margin"] is not None:
                value: Any = _number(path, line, record, "margin")
            else:
                value = (_number(path, line, record, "r_chosen"),
                         _number(path, line, record, "r_rejected"))
            k = pid
        else:
            k = _text_key(_text(path, line, record, "prompt"),
                          _text(path, line, record, "reply"))
            value = _number(path, line, record, "reward")
        if k in out and out[k] != value:
            raise PairError(str(path), line, kind, "scored twice with different values",
                            unit="row")
        out[k] = value
    return kind, out


def file_scores(pairs: list[PreferencePair], path: str | Path, key: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(margin, r_chosen, r_rejected, ids of the pairs the file lacks) for `pairs`; NaN
    where a pair (or one of its replies) is missing, or the file gives only a margin."""
    kind, scores = read_scores(path, key)
    n = len(pairs)
    margin, r_c, r_r = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    missing: list[str] = []
    for i, p in enumerate(pairs):
        if kind == "id":
            value = scores.get(p.id)
            if value is None:
                missing.append(p.id)
            elif isinstance(value, tuple):
                r_c[i], r_r[i] = value
                margin[i] = value[0] - value[1]
            else:
                margin[i] = value
            continue
        c = scores.get(_text_key(p.prompt, p.chosen))
        r = scores.get(_text_key(p.rejected_context, p.rejected))
        if c is None or r is None:
            missing.append(p.id)
            continue
        r_c[i], r_r[i], margin[i] = c, r, c - r
    return margin, r_c, r_r, missing


def write_scores(path: str | Path, pairs: list[PreferencePair], r_chosen: np.ndarray,
                 r_rejected: np.ndarray, key: str = "id") -> Path:
    """Write per-reply rewards of `pairs` in the shape :func:`read_scores` reads (JSONL,
    or Parquet by the suffix); rows with a NaN reward are left out."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    for p, c, r in zip(pairs, r_chosen, r_rejected, strict=True):
        if key == "id":
            if np.isfinite(c) and np.isfinite(r):
                records.append({"id": p.id, "r_chosen": float(c), "r_rejected": float(r)})
            continue
        for prompt, reply, value in ((p.prompt, p.chosen, c),
                                     (p.rejected_context, p.rejected, r)):
            if np.isfinite(value):
                records.append({"prompt": prompt, "reply": reply, "reward": float(value)})
    if path.name.endswith(".parquet"):
        import pandas as pd

        pd.DataFrame(records).to_parquet(path, index=False)
    else:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path
