"""preflab's own format: the columns of :data:`PAIR_SCHEMA`, in JSONL or Parquet."""

from __future__ import annotations

import json
from typing import Any

from preflab.data.pair import PreferencePair
from preflab.errors import FieldError


def looks_like_native(record: dict[str, Any]) -> bool:
    """True for a record with a message-list prompt and string replies."""
    return isinstance(record.get("prompt"), list) and isinstance(record.get("chosen"), str)


def parse_native(record: dict[str, Any], subset: str | None = None) -> PreferencePair:
    """Parse one record of preflab's format."""
    for name in ("prompt", "chosen", "rejected"):
        if name not in record or record[name] is None:
            raise FieldError(name, "missing")
    meta = record.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise FieldError("meta", f"must be a JSON object: {e}") from None
    if not isinstance(meta, dict):
        raise FieldError("meta", f"must be an object, got {type(meta).__name__}")
    flags = record.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise FieldError("flags", "must be a list of strings")
    p = record.get("p_chosen")
    return PreferencePair(
        prompt=record["prompt"], chosen=record["chosen"], rejected=record["rejected"],
        rejected_prompt=record.get("rejected_prompt"),
        subset=record.get("subset") if record.get("subset") is not None else subset,
        p_chosen=1.0 if p is None else p, flags=list(flags), meta=meta,
    )


def native_record(pair: PreferencePair) -> dict[str, Any]:
    """The pair as a JSON-ready record (meta as an object, its keys sorted as in
    the row, so a pair whose meta was extended is written as one read back is)."""
    row = pair.to_row()
    row["meta"] = json.loads(row["meta"])
    return row
