"""preflab label streams: the pairs are read once into a spill, the sample and the
exemplars are drawn by position, the pairs are judged a chunk at a time and the
labelled ones written as they come; all as one chunk does (the labels to float32
rounding: the judge's batches are made up differently)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.engine import EngineOptions
from preflab.engine.label_prompt import exemplars_from_pairs
from preflab.label.config import LabelConfig
from preflab.label.label_pairs import label
from preflab.label.result import Labels, PairFile
from preflab.label.selection import select_pairs

PAIRS = 40
FRESH = EngineOptions(progress=False, cache_path=":memory:")  # each run scores anew


def test_sample_and_exemplars_drawn_from_positions_are_those_of_the_pairs(tmp_path,
                                                                        data) -> None:
    pairs = list(iter_pairs(read_pairs(data).pairs))
    for limit, sample, seed, shots in [(None, 20, 2, 2), (30, 12, 5, 1), (25, None, 0, 3)]:
        config = LabelConfig(limit=limit, sample=sample, seed=seed, shots=shots)
        got = select_pairs(data, config, tmp_path / f"{seed}.parquet", chunk=7)  # 6 row groups
        chosen = sample_pairs(pairs[:limit], sample, seed)
        assert [p.id for c in got.chunks(7) for p in c] == [p.id for p in chosen]
        assert [len(c) for c in got.chunks(7)][:-1] == [7] * ((len(chosen) - 1) // 7)
        for invert in (False, True):
            assert got.exemplars(shots, seed, invert) == exemplars_from_pairs(
                pairs, shots, seed, exclude={p.id for p in chosen}, invert=invert)


def test_small_chunks_label_as_one_chunk(tmp_path, data) -> None:
    settings = {"judge": "tiny-llama", "sample": 12, "seed": 2, "write_data": True,
                "engine_options": FRESH}
    one = label(data, out=tmp_path / "one", **settings)
    small = label(data, out=tmp_path / "small", chunk=8, **settings)  # 2 chunks
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "small" / "labels.parquet"),
                                  one.table, rtol=1e-6)
    summary = json.loads((tmp_path / "small" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k not in ("seconds", "labelled_data")} == \
        {k: v for k, v in one.summary.items() if k not in ("seconds", "labelled_data")}
    assert summary["computed"] == 24
    # written as labelled, read back when asked for
    assert isinstance(small.pairs, PairFile) and len(small.pairs) == summary["labelled_pairs"]
    written = list(iter_pairs(read_pairs(tmp_path / "small" / "labelled.jsonl").pairs))
    assert [p.id for p in Labels.load(tmp_path / "small").pairs] == list(small.table["id"])
    assert [replace(p, p_chosen=0.0) for p in written] == \
        [replace(p, p_chosen=0.0) for p in one.pairs]
    np.testing.assert_allclose([p.p_chosen for p in written], one.table["p_ai"], rtol=1e-6)
