"""Where records come from: files of every common kind, `datasets` folders, the hub.

Each source yields ``(position, record_or_problem)``: the 1-based line (JSONL)
or row (tables) and either a dict or a :class:`FieldError` explaining why the
raw input could not become a dict. Nothing is skipped silently: a blank line,
a line of malformed JSON or undecodable bytes is reported at its position.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.errors import FieldError, FormatError

Item = tuple[int, dict[str, Any] | FieldError, str]  # position, record or problem, raw text
_HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")


def kind_of(path: str | Path) -> str:
    """The container kind of a path: jsonl, json, parquet, csv, disk or hub."""
    p = Path(path)
    name = p.name.lower()
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists() or (
                p / "dataset_dict.json").exists():
            return "disk"
        raise FormatError(f"{path}: a folder, but not one written by datasets' save_to_disk")
    if p.exists():
        for suffix, kind in ((".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".ndjson", "jsonl"),
                             (".json.gz", "json"), (".json", "json"),
                             (".parquet", "parquet"), (".csv", "csv"), (".csv.gz", "csv")):
            if name.endswith(suffix):
                return kind
        raise FormatError(f"{path}: unknown file type; preflab reads .jsonl[.gz], .json, "
                          ".parquet, .csv and datasets folders")
    if _HUB_NAME.match(str(path)):
        return "hub"
    raise FileNotFoundError(f"{path}: no such file or folder (nor a hub dataset name)")


def unit_of(kind: str) -> str:
    """Whether positions in this kind of source are lines or rows."""
    return "line" if kind in ("jsonl", "json") else "row"


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def iter_jsonl(path: Path) -> Iterator[Item]:
    """Records of a JSON-lines file, one per line; every line is accounted for."""
    with _open_bytes(path) as f:
        for i, raw in enumerate(f, 1):
            yield i, *_parse_line(raw)


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | FieldError, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = raw.decode("utf-8", errors="replace").rstrip("\n")
        return FieldError(None, f"undecodable bytes (not UTF-8) at byte {e.start}"), shown
    text = text.rstrip("\r\n")
    if not text.strip():
        return FieldError(None, "blank line"), text
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        return FieldError(None, f"malformed JSON: {e.msg} at column {e.colno}"), text
    if not isinstance(record, dict):
        return FieldError(None, f"expected a JSON object, got {type(record).__name__}"), text
    return record, text


def iter_json(path: Path) -> Iterator[Item]:
    """Records of a .json file: a JSON array of objects, or JSON lines."""
    with _open_bytes(path) as f:
        head = f.read(64).lstrip()
    if not head.startswith(b"["):
        yield from iter_jsonl(path)
        return
    with _open_bytes(path) as f:
        try:
            data = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise FormatError(f"{path}: not valid UTF-8 JSON: {e}") from None
    for i, record in enumerate(data, 1):
        if isinstance(record, dict):
            yield i, record, json.dumps(record, ensure_ascii=False)
        else:
            yield i, FieldError(None, f"expected an object, got {type(record).__name__}"), str(
                record)


def iter_parquet(path: Path, batch_size: int = 1024) -> Iterator[Item]:
    """Rows of a Parquet file, read in batches."""
    import pyarrow.parquet as pq

    i = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size):
        for record in batch.to_pylist():
            i += 1
            yield i, record, ""


def iter_csv(path: Path) -> Iterator[Item]:
    """Rows of a CSV file with a header; row 1 is the first row after the header."""
    with _open_bytes(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        for i, row in enumerate(csv.DictReader(text), 1):
            bad = [k for k, v in row.items() if isinstance(v, str) and _has_surrogates(v)]
            if bad:
                yield i, FieldError(bad[0], "undecodable bytes (not UTF-8)"), ""
            elif None in row:
                yield i, FieldError(None, "more cells than header columns"), ""
            else:
                yield i, dict(row), ""


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def iter_datasets(ds: Any) -> Iterator[Item]:
    """Rows of a `datasets.Dataset`, read in batches."""
    i = 0
    for batch in ds.with_format("arrow").iter(batch_size=1024):
        for record in batch.to_pylist():
            i += 1
            yield i, record, ""


def _pick_split(obj: Any, split: str | None, where: str) -> Any:
    from datasets import DatasetDict

    if not isinstance(obj, DatasetDict):
        return obj
    if split is None and len(obj) == 1:
        return next(iter(obj.values()))
    if split not in obj:
        raise FormatError(f"{where}: choose a split with --split, one of {sorted(obj)}")
    return obj[split]


def iter_records(path: str | Path, split: str | None = None) -> Iterator[Item]:
    """Records of any supported source (see :func:`kind_of`)."""
    kind = kind_of(path)
    if kind == "jsonl":
        yield from iter_jsonl(Path(path))
    elif kind == "json":
        yield from iter_json(Path(path))
    elif kind == "parquet":
        yield from iter_parquet(Path(path))
    elif kind == "csv":
        yield from iter_csv(Path(path))
    elif kind == "disk":
        from datasets import load_from_disk

        yield from iter_datasets(_pick_split(load_from_disk(str(path)), split, str(path)))
    else:  # hub: for users who are online
        from datasets import load_dataset

        yield from iter_datasets(load_dataset(str(path), split=split or "train"))
