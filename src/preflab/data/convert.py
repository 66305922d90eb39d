"""Convert preference data between formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preflab.data.read import OnError, read_pairs
from preflab.data.write import target_for, write_pairs


def convert(src: str | Path, dst: str | Path, to: str | None = None, format: str = "auto",
            on_error: OnError = "fail", rejects_path: str | Path | None = None,
            subset: str | None = None) -> dict[str, Any]:
    """Read `src` in any format and write it to `dst` as jsonl, parquet, trl or hh."""
    result = read_pairs(src, format=format, on_error=on_error, rejects_path=rejects_path,
                        subset=subset)
    to = to or target_for(dst)
    n = write_pairs(result.pairs, dst, to=to)
    return {"source": str(src), "format": result.format, "out": str(dst), "to": to,
            "n_records": result.n_records, "n_pairs": n, "n_rejected": len(result.rejects),
            "rejects": str(rejects_path) if rejects_path and result.rejects else None}
