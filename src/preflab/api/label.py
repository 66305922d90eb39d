"""``pl.label``: AI-feedback labels as an object in memory (``Labels``), written to disk
only when the caller asks; ``pl.label_grid``: the paper's grid of prompts
(``LabelGrid``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preflab.api.notify import Notify, notifier
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.label.config import LabelConfig
from preflab.label.grid import LabelGrid
from preflab.label.result import Labels
from preflab.settings import resolve_config

__all__ = ["LabelConfig", "LabelGrid", "Labels", "label", "label_grid"]


def label(data: PairsInput, config: LabelConfig | str | Path | None = None, *,
          out: str | Path | None = None, overwrite: bool = False,
          rejects: str | Path | None = None, notify: Notify | None = None,
          **overrides: Any) -> Labels:
    """Label every pair of `data` (a path, a ``datasets.Dataset``, a DataFrame or a list
    of pairs) with an LLM judge, each pair in both orders, and return the
    :class:`~preflab.label.result.Labels` (``.table``, ``.summary``, ``.pairs`` with
    ``p_chosen`` = the AI label, ``.save(folder)``).

    `config` is a :class:`LabelConfig` or a settings file (``OUT/config.toml`` of an
    earlier run); `overrides` are its fields (``judge="tiny-llama"``, ``sample=300``,
    ``task="harmless"``). With `out` the labels are written there (the folder is
    checked before the judge loads; `overwrite` as :meth:`Labels.save`), else nothing
    is written. Each warning (records rejected, texts truncated) goes to `notify` as a
    line of text, else to :func:`warnings.warn`.
    """
    from preflab.label.label_pairs import label as run

    with pairs_source(data) as source:
        return run(source, resolve_config(LabelConfig, config, **overrides), out,
                   rejects=rejects, overwrite=overwrite, notify=notifier(notify),
                   name=describe(data))


def label_grid(data: PairsInput, config: LabelConfig | str | Path | None = None, *,
               out: str | Path | None = None, overwrite: bool = False,
               rejects: str | Path | None = None, notify: Notify | None = None,
               **overrides: Any) -> LabelGrid:
    """The paper's grid of labeling prompts (Base / Detailed x 0 / 1 / 2-shot x without /
    with chain of thought) on the same pairs of `data`, as :func:`label` takes them:
    a :class:`~preflab.label.grid.LabelGrid` (``.table`` one row per prompt setting,
    ``.runs`` each run's :class:`Labels`, ``.save(folder)``)."""

    from preflab.label.grid import label_grid as run

    with pairs_source(data) as source:
        return run(source, resolve_config(LabelConfig, config, **overrides), out,
                   overwrite=overwrite,
                   notify=notifier(notify), rejects=rejects, name=describe(data))

