"""The paper's grid of labeling prompts (RLAIF, Lee et al. 2023, Table 2): Base /
Detailed preamble x 0 / 1 / 2 shots x without / with chain of thought, on the same
pairs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.label.config import LabelConfig
from preflab.label.label_pairs import label

GRID = [(preamble, cot, shots) for preamble in ("base", "detailed") for cot in (False, True)
        for shots in (0, 1, 2)]


def label_grid(data: str | Path, judge: str | None = None, out: str | Path = "label-grid",
               config: LabelConfig | None = None, **options: Any) -> pd.DataFrame:
    """The paper's grid (Base / Detailed x 0 / 1 / 2-shot x without / with chain of
    thought; ``grid_cot=False`` leaves CoT out) on the same pairs (``limit`` /
    ``sample``; a seeded sample of 300 when neither is set): one row per
    configuration, in the order of the paper's Table 2. `options`: fields of
    :class:`LabelConfig` and the keyword arguments of :func:`label`."""
    fields_ = set(LabelConfig.__dataclass_fields__)
    config = replace(config or LabelConfig(), **{k: v for k, v in options.items()
                                                  if k in fields_},
                     **({"judge": judge} if judge else {}))
    if config.limit is None and config.sample is None:
        config = replace(config, sample=300)
    extra = {k: v for k, v in options.items() if k not in fields_}
    rows = []
    for preamble, with_cot, shots in GRID:
        if with_cot and not config.grid_cot:
            continue
        name = f"{preamble}{'-cot' if with_cot else ''}-{shots}shot"
        s = label(data, out=Path(out) / name, config=replace(
            config, preamble=preamble, shots=shots, cot=with_cot, grid=False), **extra)
        rows.append({"preamble": preamble, "shots": shots, "cot": with_cot,
                     **{k: s.get(k) for k in ("alignment", "position_consistency",
                                              "first_position_rate", "ties", "n_failed",
                                              "seconds")}})
    frame = pd.DataFrame(rows)
    frame.to_csv(Path(out) / "grid.csv", index=False)
    return frame
