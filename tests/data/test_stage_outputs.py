"""The stages that stream write what they wrote before they streamed: digests of the
outputs of ``convert``, ``split`` and ``clean`` on the HH file and on demo data,
read in small chunks, equal the digests the in-memory stages gave (recorded from the
last commit before the stages streamed, with these same functions)."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

COMMITTEE = """name = "lengths"
[[member]]
name = "longer"
kind = "python"
function = "tests.helpers:length_reward"
[[member]]
name = "words"
kind = "python"
function = "tests.helpers:word_reward"
"""


def digest(path: Path) -> str:
    """sha256 of a file's content: JSON lines as text (gzip undone), Parquet as its
    rows and row-group sizes (so a library's version string does not count)."""
    if path.suffix == ".parquet":
        file = pq.ParquetFile(path)
        sizes = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
        blob = json.dumps([sizes, file.read().to_pylist()], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
    data = path.read_bytes()
    return hashlib.sha256(gzip.decompress(data) if path.suffix == ".gz" else data
                          ).hexdigest()[:16]


def stage_digests(data: Path, work: Path, cleans: bool = True) -> dict[str, str]:
    """Run convert (four formats), split and (`cleans`) clean (two methods, on an audit
    by two python members) on `data`; the digest of every output."""
    from preflab.audit.audit_pairs import audit
    from preflab.clean.clean_pairs import clean
    from preflab.data.convert import convert
    from preflab.data.split import split
    from preflab.engine import EngineOptions

    files = {}
    for name, to in (("convert.jsonl", None), ("convert.trl.jsonl", "trl"),
                     ("convert.parquet", None), ("convert.hh.jsonl.gz", "hh")):
        convert(data, work / name, to=to)
        files[name] = work / name
    split(data, work / "split", test_fraction=0.2, seed=3)
    files.update({f"split/{p}": work / "split" / p for p in ("train.jsonl", "test.jsonl")})
    if not cleans:
        return {k: digest(v) for k, v in files.items()}
    (work / "c.toml").write_text(COMMITTEE)
    audit(data, out=work / "audit", committee=work / "c.toml",
          engine_options=EngineOptions(cache_path=work / "cache.sqlite", progress=False))
    for method, to in (("sac", None), ("vote-maj", "parquet")):
        summary = clean(data, work / "audit", out=work / method, method=method, to=to)
        files[f"{method}/data"] = Path(summary["output"])
        files[f"{method}/manifest"] = work / method / "manifest.parquet"
    return {k: digest(v) for k, v in files.items()}


# Recorded with stage_digests on commit f1cbef9, where every stage held all pairs in memory.
BEFORE = {
    "hh": {
        "convert.jsonl": "e24563eaf152f7cd",
        "convert.trl.jsonl": "e2cffa6f0a294cef",
        "convert.parquet": "294c81b70376e929",
        "convert.hh.jsonl.gz": "14d765196c9f18d8",
        "split/train.jsonl": "748ef5f8e938e392",
        "split/test.jsonl": "2176bd1e78cd60e1",
    },
    "demo": {
        "convert.jsonl": "6403b4614f23d97f",
        "convert.trl.jsonl": "04f27de546971c1f",
        "convert.parquet": "8fdf0de0142bada2",
        "convert.hh.jsonl.gz": "cb79758e3a14d1b7",
        "split/train.jsonl": "594d0a21503ac530",
        "split/test.jsonl": "1372b085cc311974",
        "sac/data": "0fa22c767a773b58",
        "sac/manifest": "f05cd3df0f465c5a",
        "vote-maj/data": "147c8b7038b7f404",
        "vote-maj/manifest": "8f6196b25863ac7d",
    },
}


@pytest.mark.parametrize("which", ["hh", "demo"])
def test_streamed_stages_write_what_the_in_memory_stages_wrote(which, hh_path, tmp_path,
                                                               monkeypatch) -> None:
    from preflab.data import stream
    from preflab.data.demo import demo

    monkeypatch.setattr(stream, "CHUNK", 300)  # several chunks, and a short last one
    data = hh_path
    if which == "demo":  # clean too (the audit of 2,312 HH pairs would take longer)
        data = tmp_path / "demo.jsonl"
        demo(data, n=700, flip_rate=0.2, seed=5)
    work = tmp_path / "out"
    work.mkdir()
    assert stage_digests(Path(data), work, cleans=which == "demo") == BEFORE[which]
