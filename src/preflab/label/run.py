"""``preflab label``: AI-feedback labels for preference pairs, and how well they agree
with the human ones (RLAIF, Lee et al. 2023; ../METHODS.md §3).

Each pair is judged in both orders (chosen shown first, then second) and the two
soft labels are averaged (position debiasing). Alignment is the share of pairs
where the AI label's argmax is the human label; an AI label of exactly 0.5 is a
tie and counts as not aligned (ties are reported).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.write import write_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.judge import JudgeScorer, judge_unit, p_first
from preflab.engine.models import Runtime
from preflab.engine.prompts import LabelPrompt, exemplars_from_pairs
from preflab.engine.units import as_messages


def label_table(pairs: Sequence[PreferencePair], scorer: JudgeScorer, engine: Engine
                ) -> pd.DataFrame:
    """Per pair: ``p_ai`` (P(chosen better), both orders averaged), ``p_chosen_first`` and
    ``p_chosen_second`` (each order alone), ``consistent`` (both orders prefer the same
    reply) and ``label_mass`` (probability the labeler put on the two labels)."""
    n = len(pairs)
    forward = [judge_unit(as_messages(p.prompt), p.chosen, p.rejected) for p in pairs]
    backward = [judge_unit(as_messages(p.prompt), p.rejected, p.chosen) for p in pairs]
    values = np.stack(engine.run(scorer, forward + backward, desc=scorer.name)).astype(float)
    p1 = p_first(values)  # P(the labeler names response 1)
    if scorer.prompt.invert:  # it named the worse reply
        p1 = 1.0 - p1
    p_fwd, p_bwd = p1[:n], 1.0 - p1[n:]
    return pd.DataFrame({
        "id": [p.id for p in pairs],
        "p_ai": 0.5 * (p_fwd + p_bwd),
        "p_chosen_first": p_fwd,
        "p_chosen_second": p_bwd,
        "consistent": (p_fwd > 0.5) == (p_bwd > 0.5),
        "first_preferred": p1[:n] > 0.5,
        "first_preferred_swapped": p1[n:] > 0.5,
        "label_mass": np.exp(values[:n]).sum(axis=1) * 0.5 + np.exp(values[n:]).sum(axis=1) * 0.5,
    })


def label_summary(table: pd.DataFrame, pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Alignment with the human labels and the position figures (pure)."""
    human_chosen = np.array([p.p_chosen >= 0.5 for p in pairs])
    p = table["p_ai"].to_numpy()
    ties = p == 0.5
    aligned = np.where(human_chosen, p > 0.5, p < 0.5) & ~ties
    first = np.concatenate([table["first_preferred"], table["first_preferred_swapped"]])
    return {
        "n_pairs": len(table),
        "alignment": round(float(aligned.mean()), 4),
        "alignment_first_order_only": round(float(
            np.where(human_chosen, table["p_chosen_first"] > 0.5,
                     table["p_chosen_first"] < 0.5).mean()), 4),
        "ties": int(ties.sum()),
        "position_consistency": round(float(table["consistent"].mean()), 4),
        "first_position_rate": round(float(first.mean()), 4),
        "label_token_mass": round(float(table["label_mass"].mean()), 4),
        "mean_p_ai": round(float(p.mean()), 4),
    }


def sample_pairs(pairs: list[PreferencePair], limit: int | None, seed: int = 0
                 ) -> list[PreferencePair]:
    """A seeded random sample of `limit` pairs, in their input order (all when None)."""
    if limit is None or limit >= len(pairs):
        return pairs
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(pairs), size=limit, replace=False))
    return [pairs[i] for i in keep]


def label(data: str | Path, judge: str, out: str | Path = "labels", task: str = "helpful",
          preamble: str = "base", shots: int = 0, limit: int | None = None, seed: int = 0,
          template: str | Path | None = None, max_context_tokens: int | None = 256,
          max_length: int = 2048, write_data: bool = False,
          engine_options: EngineOptions | None = None, runtime: Runtime | None = None,
          scorer: JudgeScorer | None = None) -> dict[str, Any]:
    """Label the pairs of `data` with `judge`; writes labels.parquet and summary.json.

    With `limit`, a seeded random sample of that many pairs is labelled and the
    `shots` exemplars are drawn (seeded) from the other pairs; without it, every pair
    is labelled, and `shots` > 0 is refused (an exemplar would be labelled by its own
    answer). With `write_data`, ``labelled.jsonl`` holds the labelled pairs with
    ``p_chosen`` = the AI label (for soft-label reward models and DPO).
    """
    started = time.perf_counter()
    read = read_pairs(data)
    everything = list(iter_pairs(read.pairs))
    if not everything:
        raise ValueError(f"{data}: no pairs to label")
    chosen = sample_pairs(everything, limit, seed)
    if shots and len(chosen) == len(everything):
        raise ValueError(f"{data}: {shots}-shot labeling needs exemplars that are not "
                         "labelled; label a sample (--limit N) so they come from the rest")
    prompt = LabelPrompt.build(task, preamble, template_file=template)
    exemplars = exemplars_from_pairs(everything, shots, seed=seed,
                                     exclude={p.id for p in chosen}, invert=prompt.invert)
    prompt = replace(prompt, exemplars=tuple(exemplars))
    if scorer is None:
        scorer = JudgeScorer(judge, name=f"label:{judge}", prompt=prompt,
                             max_length=max_length, max_context_tokens=max_context_tokens,
                             runtime=runtime)
    elif scorer.prompt != prompt:
        raise ValueError("the scorer given reads another prompt than the one asked for")
    engine = Engine(engine_options)
    table = label_table(chosen, scorer, engine)
    summary = {"data": str(data), "judge": judge, **prompt.describe(),
               "seed": seed, **label_summary(table, chosen),
               "computed": engine.last_stats.computed, "cached": engine.last_stats.cached,
               "truncated": scorer.truncated, "context_truncated": scorer.context_truncated,
               "seconds": round(time.perf_counter() - started, 2)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "labels.parquet", index=False)
    if write_data:
        by_id = dict(zip(table["id"], table["p_ai"], strict=True))
        labelled = [replace(p, p_chosen=float(by_id[p.id]),
                            meta={**p.meta, "label": {"judge": judge, **prompt.describe()}})
                    for p in chosen]
        write_pairs(labelled, out / "labelled.jsonl")
        summary["labelled_data"] = str(out / "labelled.jsonl")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


GRID = [(preamble, shots) for preamble in ("base", "detailed") for shots in (0, 1, 2)]


def label_grid(data: str | Path, judge: str, out: str | Path = "label-grid",
               task: str = "helpful", limit: int = 300, seed: int = 0,
               **options: Any) -> pd.DataFrame:
    """The paper's grid (Base / Detailed x 0 / 1 / 2-shot; chain of thought is not
    implemented yet) on one seeded sample: one row per configuration."""
    rows = []
    for preamble, shots in GRID:
        s = label(data, judge, out=Path(out) / f"{preamble}-{shots}shot", task=task,
                  preamble=preamble, shots=shots, limit=limit, seed=seed, **options)
        rows.append({"preamble": preamble, "shots": shots, "cot": False,
                     **{k: s[k] for k in ("alignment", "position_consistency",
                                          "first_position_rate", "ties", "seconds")}})
    frame = pd.DataFrame(rows)
    frame.to_csv(Path(out) / "grid.csv", index=False)
    return frame
