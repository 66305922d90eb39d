"""Where records come from: files of every common kind, `datasets` folders, the hub.

Each source yields ``(position, record_or_problem)``: the 1-based line (JSONL)
or row (tables) and either a dict or a :class:`FieldError` explaining why the
raw input could not become a dict. Nothing is skipped silently: a blank line,
a line of malformed JSON or undecodable bytes is reported at its position, and so
is the point where a truncated or corrupt file breaks off (everything before it
is kept; the rest is one problem at the next position).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from preflab.errors import FieldError, FormatError, SourceError

Item = tuple[int, dict[str, Any] | FieldError, str]  # position, record or problem, raw text
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")  # owner/name
_DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".parquet", ".pq", ".csv", ".tsv", ".txt",
                  ".arrow", ".gz", ".bz2", ".xz", ".zst", ".zip")
# What a damaged stream raises mid-read: gzip's EOFError / BadGzipFile (an OSError), zlib.
_DAMAGE = (EOFError, OSError, zlib.error)


def is_hub_id(path: str | Path) -> bool:
    """True for an ``owner/name`` hub dataset id; never for a local-looking path.

    Local-looking: starts with ``.``, ``/`` or ``~``, has a backslash or more than one
    slash, or ends in a data file extension (``.jsonl``, ``.parquet``, ``.gz``, ...).
    """
    s = str(path)
    return (not s.startswith((".", "/", "~")) and not s.lower().endswith(_DATA_SUFFIXES)
            and _HUB_ID.match(s) is not None)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _damaged(e: BaseException) -> FieldError:
    """The problem at the position where a damaged file breaks off."""
    return FieldError(None, f"file truncated or corrupt here; the rest is unreadable: "
                      f"{_first_line(e)}")


def kind_of(path: str | Path) -> str:
    """The container kind of a path: jsonl, json, parquet, csv, disk or hub.

    A path that does not exist is a hub dataset only when it is an ``owner/name`` id
    (:func:`is_hub_id`); any other is ``FileNotFoundError("no such file: PATH")``.
    """
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
    if is_hub_id(path):
        return "hub"
    raise FileNotFoundError(f"no such file: {path}")


def unit_of(kind: str) -> str:
    """Whether positions in this kind of source are lines or rows."""
    return "line" if kind in ("jsonl", "json") else "row"


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def iter_jsonl(path: Path) -> Iterator[Item]:
    """Records of a JSON-lines file, one per line; every line is accounted for.

    Read in chunks (``read1`` never loses data already decompressed), so a truncated
    or corrupt ``.gz`` keeps every whole line before the damage; the damaged line and
    the rest become one problem at the next line number.
    """
    n, pending = 0, b""
    with _open_bytes(path) as f:
        try:
            while chunk := f.read1(1 << 16):
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    n += 1
                    yield n, *_parse_line(raw)
        except _DAMAGE as e:
            yield n + 1, _damaged(e), pending.decode("utf-8", errors="replace")
            return
    if pending:
        yield n + 1, *_parse_line(pending)


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
    try:
        with _open_bytes(path) as f:
            head = f.read(64).lstrip()
    except _DAMAGE:
        head = b""  # iter_jsonl reports the damage at line 1
    if not head.startswith(b"["):
        yield from iter_jsonl(path)
        return
    try:
        with _open_bytes(path) as f:
            data = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"{path}: not valid UTF-8 JSON: {e}") from None
    except _DAMAGE as e:
        raise SourceError(f"{path}: truncated or corrupt, nothing readable: "
                          f"{_first_line(e)}") from None
    for i, record in enumerate(data, 1):
        if isinstance(record, dict):
            yield i, record, json.dumps(record, ensure_ascii=False)
        else:
            yield i, FieldError(None, f"expected an object, got {type(record).__name__}"), str(
                record)


def iter_parquet(path: Path, batch_size: int = 1024) -> Iterator[Item]:
    """Rows of a Parquet file, in batches within each row group (so a damaged group
    keeps every row before it; it and the rest become one problem at its first row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise SourceError(f"{path}: not a readable Parquet file (truncated or corrupt?): "
                          f"{_first_line(e)}") from None
    i = 0
    try:
        for group in range(pf.num_row_groups):
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[group]):
                for record in batch.to_pylist():
                    i += 1
                    yield i, record, ""
    except (pa.ArrowException, *_DAMAGE) as e:
        yield i + 1, _damaged(e), ""


def parquet_types(path: str | Path) -> dict[str, str]:
    """Arrow type names of a Parquet file's columns ({} if its schema cannot be read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return {f.name: str(f.type) for f in pq.read_schema(path)}
    except (pa.ArrowException, OSError):
        return {}


def iter_csv(path: Path) -> Iterator[Item]:
    """Rows of a CSV file with a header; row 1 is the first row after the header."""
    i = 0
    with _open_bytes(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", errors="surrogateescape", newline="")
        rows = csv.DictReader(text)
        while True:
            try:
                row = next(rows, None)
            except csv.Error as e:  # one bad row; the reader goes on after it
                i += 1
                yield i, FieldError(None, f"malformed CSV: {e}"), ""
                continue
            except _DAMAGE as e:
                yield i + 1, _damaged(e), ""
                return
            if row is None:
                return
            i += 1
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
        yield from iter_datasets(_load_hub(str(path), split))


def _load_hub(name: str, split: str | None) -> Any:
    """A hub dataset, or a one-line :class:`SourceError` saying why it cannot be had.

    An unreachable hub (:func:`preflab.data.hub.unreachable`) fails at once, without
    the hub client's retries; in offline mode a cached copy is still read.
    """
    from preflab.data.hub import offline_mode, unreachable

    hub_down = unreachable()
    if hub_down and not offline_mode():
        raise SourceError(f"{name}: no such local file, and {hub_down} (HF_HUB_OFFLINE=1 "
                          "reads a cached copy)")
    from datasets import load_dataset

    try:
        return load_dataset(name, split=split or "train")
    except Exception as e:  # datasets and the hub client raise many kinds
        if hub_down:
            raise SourceError(f"{name}: no such local file, not in the local cache, and "
                              f"{hub_down}") from None
        raise SourceError(f"{name}: no such local file, and the hub dataset cannot be "
                          f"loaded: {_first_line(e)}") from None
