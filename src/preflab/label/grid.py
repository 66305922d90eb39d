"""The paper's grid of labeling prompts (RLAIF, Lee et al. 2023, Table 2): Base /
Detailed preamble x 0 / 1 / 2 shots x without / with chain of thought, on the same
pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.data.outputs import prepare_output_dir
from preflab.label.config import LabelConfig
from preflab.label.label_pairs import label
from preflab.label.result import COMMAND, Labels
from preflab.settings import write_config

GRID = [(preamble, cot, shots) for preamble in ("base", "detailed") for cot in (False, True)
        for shots in (0, 1, 2)]
FIGURES = ("alignment", "position_consistency", "first_position_rate", "ties", "n_failed",
           "seconds")


@dataclass
class LabelGrid:
    """The grid: `table` (one row per prompt setting, in the order of the paper's Table 2:
    preamble, shots, cot, alignment, position consistency, first-position rate, ties,
    failures, seconds), the `config` shared by the runs and each run's
    :class:`~preflab.label.result.Labels` in `runs` (by name, e.g. ``base-cot-1shot``)."""

    table: pd.DataFrame
    config: LabelConfig
    runs: dict[str, Labels] = field(default_factory=dict, repr=False)

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """grid.csv, config.toml and a folder per run, as ``preflab label --grid`` writes
        them; `folder` must be new, empty or an earlier labeling run's, unless
        `overwrite`."""
        folder = prepare_output_dir(folder, COMMAND, overwrite)
        for name, run in self.runs.items():
            run.save(folder / name, overwrite)
        self.write(folder)
        return folder

    def write(self, folder: Path) -> None:
        self.table.to_csv(folder / "grid.csv", index=False)
        write_config(self.config, folder)

    def __repr__(self) -> str:
        alignment = pd.to_numeric(self.table.get("alignment", pd.Series(dtype=float)),
                                  errors="coerce").dropna()
        shown = (f", alignment with the human labels {alignment.min():.1%} to "
                 f"{alignment.max():.1%}" if len(alignment) else "")
        return (f"LabelGrid({len(self.table)} prompt settings, judge "
                f"{self.config.judge!r}{shown})")


def label_grid(data: str | Path, config: LabelConfig | None = None,
               out: str | Path | None = None, *, overwrite: bool = False,
               notify: Callable[[str], None] | None = None, **options: Any) -> LabelGrid:
    """The paper's grid (Base / Detailed x 0 / 1 / 2-shot x without / with chain of
    thought; ``grid_cot=False`` leaves CoT out) on the same pairs (``limit`` /
    ``sample``; a seeded sample of 300 when neither is set). With `out`, each run is
    written to its own folder in it, beside grid.csv and config.toml. `options`: the
    keyword arguments of :func:`~preflab.label.label_pairs.label` (``rejects``,
    ``engine_options``, ``name``); `notify` gets each warning once."""
    config = replace(config or LabelConfig(), grid=True)
    if config.limit is None and config.sample is None:
        config = replace(config, sample=300)
    if out is not None:
        out = prepare_output_dir(out, COMMAND, overwrite)
    once = _once(notify) if notify is not None else None
    runs = {}
    for preamble, with_cot, shots in GRID:
        if with_cot and not config.grid_cot:
            continue
        name = f"{preamble}{'-cot' if with_cot else ''}-{shots}shot"
        runs[name] = label(data, replace(config, preamble=preamble, shots=shots,
                                         cot=with_cot, grid=False),
                           None if out is None else Path(out) / name, overwrite=overwrite,
                           notify=once, **options)
    rows = [{"preamble": r.config.preamble, "shots": r.config.shots, "cot": r.config.cot,
             **{k: r.summary.get(k) for k in FIGURES}} for r in runs.values()]
    grid = LabelGrid(pd.DataFrame(rows), config, runs)
    if out is not None:
        grid.write(Path(out))
    return grid


def _once(notify: Callable[[str], None]) -> Callable[[str], None]:
    """`notify`, each message once (the grid's runs read the same data)."""
    seen: set[str] = set()

    def once(text: str) -> None:
        if text not in seen:
            seen.add(text)
            notify(text)

    return once
