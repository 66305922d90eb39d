"""preflab label streams: the pairs are judged a chunk at a time and the labelled ones
written as they come, with the sample, exemplars and labels of one chunk (the labels
to float32 rounding: the judge's batches are made up differently)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.engine import EngineOptions
from preflab.engine.label_prompt import exemplars_from_pairs
from preflab.label.label_pairs import label
from preflab.label.result import Labels, PairFile

PAIRS = 40
FRESH = EngineOptions(progress=False, cache_path=":memory:")  # each run scores anew


def test_small_chunks_label_as_one_chunk(tmp_path, data) -> None:
    settings = {"judge": "tiny-llama", "sample": 20, "seed": 2, "shots": 1,
                "write_data": True, "engine_options": FRESH}
    one = label(data, out=tmp_path / "one", **settings)
    small = label(data, out=tmp_path / "small", chunk=7, **settings)  # 3 chunks, 6 row groups
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "small" / "labels.parquet"),
                                  one.table, rtol=1e-6)
    summary = json.loads((tmp_path / "small" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k not in ("seconds", "labelled_data")} == \
        {k: v for k, v in one.summary.items() if k not in ("seconds", "labelled_data")}
    # the sample and the exemplar: the draws made on every pair in memory
    pairs = list(iter_pairs(read_pairs(data).pairs))
    chosen = sample_pairs(pairs, 20, 2)
    assert list(small.table["id"]) == [p.id for p in chosen] and summary["computed"] == 40
    shot = exemplars_from_pairs(pairs, 1, seed=2, exclude={p.id for p in chosen})
    assert summary["exemplar_ids"] == [e.id for e in shot]
    # written as labelled, read back when asked for
    assert isinstance(small.pairs, PairFile) and len(small.pairs) == summary["labelled_pairs"]
    written = list(iter_pairs(read_pairs(tmp_path / "small" / "labelled.jsonl").pairs))
    assert [p.id for p in Labels.load(tmp_path / "small").pairs] == list(small.table["id"])
    assert [replace(p, p_chosen=0.0) for p in written] == \
        [replace(p, p_chosen=0.0) for p in one.pairs]
    np.testing.assert_allclose([p.p_chosen for p in written], one.table["p_ai"], rtol=1e-6)
