"""Convert preference data between formats, a chunk at a time (memory stays flat)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preflab.data.containers import kind_of
from preflab.data.outputs import check_output_file
from preflab.data.parse import OnError
from preflab.data.stream import PairStream, PairWriter
from preflab.errors import SourceError


def convert(src: str | Path, dst: str | Path, to: str | None = None, format: str = "auto",
            on_error: OnError = "fail", rejects_path: str | Path | None = None,
            subset: str | None = None, overwrite: bool = True,
            allow_empty: bool = True) -> dict[str, Any]:
    """Read `src` in any format and write it to `dst` as jsonl, parquet, trl or hh.

    Without `overwrite` an existing `dst` (or rejects file) is refused; without
    `allow_empty` a source with no records, or none that became a pair, is a
    :class:`SourceError` and nothing is written (the command's defaults; the
    function's keep the old behaviour).
    """
    kind_of(src)  # a missing or unknown input is reported before the output
    check_output_file(dst, overwrite)
    if rejects_path is not None:
        check_output_file(rejects_path, overwrite)
    stream = PairStream(src, format=format, on_error=on_error, rejects_path=rejects_path,
                        subset=subset, allow_empty=allow_empty)
    with PairWriter(dst, to) as writer:
        for pairs in stream:
            writer.write(pairs)
        if stream.n_pairs == 0 and stream.n_records and not allow_empty:
            seen = f" (see {rejects_path})" if rejects_path else ""
            raise SourceError(f"{src}: no pairs to write, all {stream.n_records} records "
                              f"were rejected{seen} (--allow-empty writes an empty file)")
    return {"source": str(src), "format": stream.format, "out": str(dst), "to": writer.to,
            "n_records": stream.n_records, "n_pairs": writer.n,
            "n_rejected": len(stream.rejects),
            "rejects": str(rejects_path) if rejects_path and stream.rejects else None}
