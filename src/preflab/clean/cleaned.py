"""A cleaning run's result in memory (:class:`Cleaned`), and how it is written:
the cleaned data, manifest.parquet, summary.json and config.toml."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.audit_pairs import write_table
from preflab.clean.apply import apply_chunk
from preflab.clean.config import CleanConfig
from preflab.data.outputs import prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.spill import PairSpill
from preflab.settings import CONFIG_FILE, load_config

MANIFEST, SUMMARY = "manifest.parquet", "summary.json"


@dataclass
class Cleaned:
    """The cleaned pairs (`pairs`, in input order: kept, flipped and relabelled ones),
    the `manifest` (a DataFrame, one row per input pair: action, reason, method,
    parameters, best-guess source, the review's verdict, ``output_id``), the `summary`
    (counts and figures of summary.json) and the `config` it ran with.
    `output_format` and `file_name` say how :meth:`save` writes the pairs (the
    input's format unless ``to`` said otherwise); `inputs` (the data, audit, rejects
    file and review read) go into the folder's marker."""

    pairs: list[PreferencePair]
    manifest: pd.DataFrame
    summary: dict[str, Any]
    config: CleanConfig
    output_format: str = "jsonl"
    file_name: str = "cleaned.jsonl"
    inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dataset(self) -> Any:
        """The cleaned pairs as a ``datasets.Dataset`` (preflab's columns)."""
        import pyarrow as pa

        from preflab.data.pair import PAIR_SCHEMA
        from preflab.data.read import pairs_dataset

        return pairs_dataset(pa.Table.from_pylist([p.to_row() for p in self.pairs],
                                                  schema=PAIR_SCHEMA))

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the result as ``preflab clean`` does; `folder` must be new, empty or
        one clean wrote before, unless `overwrite`. The summary's ``output`` then
        names the cleaned data file."""
        from preflab.data.write import write_pairs

        folder = prepare_output_dir(folder, "clean", overwrite, info=self.inputs)
        path = folder / self.file_name
        write_pairs(self.pairs, path, to=self.output_format)
        self.write_rest(folder, path)
        return folder

    def write_rest(self, folder: Path, path: Path) -> None:
        """Write the manifest, the summary (naming the data file `path`) and the
        config into `folder`."""
        from preflab.settings import write_config

        write_table(self.manifest, folder / MANIFEST)  # as to_parquet, in row groups
        self.summary = {**self.summary, "output": str(path)}
        (folder / SUMMARY).write_text(json.dumps(self.summary, indent=1))
        write_config(self.config, folder)

    @classmethod
    def load(cls, folder: str | Path) -> Cleaned:
        """A result ``preflab clean`` or :meth:`save` wrote (the pairs read back from
        the cleaned data file: a soft label written in the hh or trl format is read
        as a hard one)."""
        from preflab.data.read import iter_pairs, read_pairs

        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"{folder}: no {MANIFEST}; run preflab clean first")
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
        path = folder / Path(summary["output"]).name
        config = folder / CONFIG_FILE
        return cls(list(iter_pairs(read_pairs(path).pairs)), pd.read_parquet(folder / MANIFEST),
                   summary, load_config(CleanConfig, config if config.is_file() else None),
                   summary.get("format", "jsonl"), path.name)

    def __repr__(self) -> str:
        s = self.summary
        return (f"Cleaned({s['method']} on {s['n_input']} pairs: keep {s['keep']}, flip "
                f"{s['flip']}, remove {s['remove']}, relabel {s['relabel']})")


@dataclass
class Decided:
    """What clean decided before any pair is changed: the pairs read (a
    :class:`~preflab.data.spill.PairSpill` on disk), the decisions on the first
    ``len(table)`` of them (the pairs the audit covers), the summary, the config, how
    the output is written (`output_format`, `file_name`) and the `inputs` for the
    folder's marker; `started` is when the run began (``time.perf_counter``)."""

    spill: PairSpill
    table: pd.DataFrame
    summary: dict[str, Any]
    config: CleanConfig
    output_format: str
    file_name: str
    inputs: dict[str, Any]
    started: float

    def result(self, pairs: list[PreferencePair], manifest: pd.DataFrame) -> Cleaned:
        """The run in memory, with the cleaned `pairs` and their `manifest`."""
        return Cleaned(pairs, manifest, self.summary, self.config, self.output_format,
                       self.file_name, self.inputs)

    def save(self, folder: str | Path, overwrite: bool = False) -> dict[str, Any]:
        """Apply the decisions a chunk at a time and write the folder
        :meth:`Cleaned.save` writes (the same files, byte for byte); returns the
        summary. The decisions table becomes the manifest (``output_id`` inserted)."""
        from preflab.data.stream import PairWriter

        folder = prepare_output_dir(folder, "clean", overwrite, info=self.inputs)
        path = folder / self.file_name
        actions, p_new = self.table["action"].to_numpy(), self.table["p_new"].to_numpy()
        output_ids: list[str] = []
        with PairWriter(path, self.output_format) as writer:
            for pairs in self.spill.chunks():
                start = len(output_ids)
                pairs = pairs[:len(actions) - start]  # the pairs the audit covers
                cleaned, ids = apply_chunk(pairs, actions[start:start + len(pairs)],
                                           p_new[start:start + len(pairs)])
                writer.write(cleaned)
                output_ids += ids
                if len(output_ids) == len(actions):
                    break
        self.table.insert(1, "output_id", np.asarray(output_ids, dtype=object))  # no copy
        del output_ids
        summary = {**self.summary, "seconds": round(time.perf_counter() - self.started, 2)}
        result = Cleaned([], self.table, summary, self.config, self.output_format,
                         self.file_name, self.inputs)
        result.write_rest(folder, path)
        return result.summary
