"""A labeling run's result in memory (:class:`Labels`), and the files it is saved as:
labels.parquet, summary.json, config.toml and, with ``write_data``, labelled.jsonl."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.data.outputs import prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.stream import PairStream
from preflab.data.write import write_pairs
from preflab.label.config import LabelConfig
from preflab.settings import CONFIG_FILE, load_config, write_config

COMMAND = "label"  # the output folder's marker: .preflab-label.json
TABLE, SUMMARY, LABELLED = "labels.parquet", "summary.json", "labelled.jsonl"


class PairFile(Sequence[PreferencePair]):
    """The pairs of a file, read when first asked for: a labeling run that wrote its
    labelled pairs as it went holds none in memory. Iterating reads them a chunk at a
    time; a length or an index reads them all."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._pairs: list[PreferencePair] | None = None

    def _all(self) -> list[PreferencePair]:
        if self._pairs is None:
            self._pairs = [p for chunk in PairStream(self.path) for p in chunk]
        return self._pairs

    def __len__(self) -> int:
        return len(self._all())

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __iter__(self) -> Iterator[PreferencePair]:
        if self._pairs is not None:
            yield from self._pairs
            return
        for chunk in PairStream(self.path):
            yield from chunk

    def __repr__(self) -> str:
        return f"PairFile({str(self.path)!r})"


@dataclass
class Labels:
    """AI-feedback labels: `table` (a DataFrame, one row per pair labelled: ``id``,
    ``p_ai`` = P(chosen better) with both orders averaged, ``p_chosen_first`` /
    ``p_chosen_second`` each order alone, ``consistent``, ``label_mass``, ``failure``,
    and the rationales with chain of thought), `summary` (alignment with the human
    labels, the position figures, failures, truncation), the `config` it ran with,
    and `pairs`: the labelled pairs with ``p_chosen`` = the AI label (pairs without
    a label left out), for soft-label reward models and DPO: a list, or a
    :class:`PairFile` where they were written as they came."""

    table: pd.DataFrame
    summary: dict[str, Any]
    config: LabelConfig
    pairs: Sequence[PreferencePair] = field(default_factory=list, repr=False)

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the labels as ``preflab label`` does; `folder` must be new, empty or an
        earlier labeling run's, unless `overwrite`."""
        folder = prepare_output_dir(folder, COMMAND, overwrite,
                                    info={"data": self.summary.get("data"),
                                          "judge": self.config.judge})
        self.write(folder)
        return folder

    def write(self, folder: Path) -> None:
        """The files, into a folder made ready for them (:meth:`save` checks it)."""
        self.table.to_parquet(folder / TABLE, index=False)
        if self.config.write_data:
            here = isinstance(self.pairs, PairFile) and self.pairs.path == folder / LABELLED
            if not here:  # else written there as they were labelled (or loaded from there)
                write_pairs(self.pairs, folder / LABELLED)
            self.summary["labelled_data"] = str(folder / LABELLED)
        (folder / SUMMARY).write_text(json.dumps(self.summary, indent=1) + "\n")
        write_config(self.config, folder)

    @classmethod
    def load(cls, folder: str | Path) -> Labels:
        """Labels written by ``preflab label`` or :meth:`save` (`pairs` only when the run
        wrote labelled.jsonl, read from it when first used)."""
        folder = Path(folder)
        if not (folder / TABLE).exists():
            raise FileNotFoundError(f"{folder}: no {TABLE}; run preflab label first")
        config_path = folder / CONFIG_FILE
        config = load_config(LabelConfig, config_path if config_path.exists() else None)
        pairs = PairFile(folder / LABELLED) if (folder / LABELLED).exists() else []
        return cls(pd.read_parquet(folder / TABLE),
                   json.loads((folder / SUMMARY).read_text()), config, pairs)

    def __repr__(self) -> str:
        s = self.summary
        alignment = s.get("alignment")
        shown = "-" if alignment is None else f"{alignment:.1%}"
        return (f"Labels({s.get('n_labelled')} of {s.get('n_pairs')} pairs labelled by "
                f"{self.config.judge!r}, alignment with the human labels {shown})")
