"""Pairs given in memory, read as a file would be.

Every stage reads its pairs from a source the readers know (a file, a ``save_to_disk``
folder, a hub name). :func:`pairs_source` also takes what a notebook holds (a
``datasets.Dataset``, a pandas DataFrame, a list of :class:`PreferencePair` or of
records) and writes it to a temporary file in the same columns, so it is parsed,
checked and rejected by the same rules as a file. Errors name the object, not the
temporary file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from preflab.data.pair import PreferencePair

PairsInput = Any  # str | Path | datasets.Dataset | pandas.DataFrame | list of pairs or records


def describe(data: PairsInput) -> str:
    """How errors and summaries name `data`."""
    if isinstance(data, str | Path):
        return str(data)
    kind = type(data).__name__
    n = len(data) if hasattr(data, "__len__") else "?"
    return f"<{kind} of {n} rows>"


def _write(data: PairsInput, folder: Path) -> Path:
    module = type(data).__module__
    if module.startswith("datasets"):
        import pyarrow.parquet as pq

        if hasattr(data, "keys") and len(data) == 1:  # a DatasetDict of one split
            data = next(iter(data.values()))
        elif hasattr(data, "keys"):
            raise ValueError(f"a DatasetDict of splits {sorted(data)}: give one split, "
                             "e.g. data['train']")
        path = folder / "pairs.parquet"
        pq.write_table(data.with_format("arrow")[:], path)  # rows as selected, in order
        return path
    if module.startswith("pandas"):
        path = folder / "pairs.parquet"
        data.to_parquet(path, index=False)
        return path
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        path = folder / "pairs.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for i, item in enumerate(data):
                if isinstance(item, PreferencePair):
                    record = item.to_row()
                elif isinstance(item, dict):
                    record = item
                else:
                    raise TypeError(f"item {i} of the list is a {type(item).__name__}; "
                                    "expected a PreferencePair or a dict record")
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        return path
    raise TypeError(f"cannot read pairs from a {type(data).__name__}: give a path, a "
                    "datasets.Dataset, a pandas DataFrame or a list of PreferencePair")


@contextmanager
def pairs_source(data: PairsInput) -> Iterator[str]:
    """A source path any reader takes: `data` itself when it is a path (or hub name),
    else `data` written to a temporary file that lives as long as the block. An error
    raised in the block that names the temporary file names `data` instead."""
    if isinstance(data, str | Path):
        yield str(data)
        return
    with tempfile.TemporaryDirectory(prefix="preflab-data-") as folder:
        path = _write(data, Path(folder))
        try:
            yield str(path)
        except Exception as e:
            if e.args and isinstance(e.args[0], str) and str(path) in e.args[0]:
                e.args = (e.args[0].replace(str(path), describe(data)), *e.args[1:])
            raise
