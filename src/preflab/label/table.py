"""The label table: each pair judged in both orders (chosen shown first, then second) and
the two soft labels averaged (position debiasing), with chain-of-thought rationales and
self-consistency; or each reply rated on its own (direct scoring). RLAIF, Lee et al.
2023; docs/methods.md, "AI feedback labels"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from preflab.data.messages import as_messages, text_hash
from preflab.data.pair import PreferencePair
from preflab.engine import Engine
from preflab.engine.judge import JudgeScorer, judge_unit, p_first
from preflab.engine.units import Unit
from preflab.models.generate import Sampling
from preflab.models.runtime import fingerprint


def rationale_seed(seed: int, key: str, j: int) -> int:
    """The seed of the `j`-th rationale of a unit: fixed by its content, not its batch."""
    return int(text_hash("rationale-seed", seed, key, j)[:8], 16)


def rationales(units: Sequence[Unit], scorer: JudgeScorer, engine: Engine, k: int,
               sampling: Sampling, seed: int = 0, batch: int = 16
               ) -> list[list[str | None]]:
    """`k` chain-of-thought rationales for each (context, A, B) unit, through the engine's
    cache (an interrupted run resumes; a finished one is not generated again). A
    rationale the judge failed to give is None, its reason in ``scorer.failures``."""
    fp = fingerprint("rationale", scorer.fingerprint, scorer.prompt.cot_ending,
                     sampling.__dict__, seed if sampling.temperature > 0 else None)
    keys = [[text_hash(u.key, j) for j in range(k)] for u in units]
    flat = [(u, j, key) for u, ks in zip(units, keys, strict=True) for j, key in enumerate(ks)]
    found = engine.cache.get_texts(fp, [key for _, _, key in flat])
    todo = sorted((x for x in flat if x[2] not in found),
                  key=lambda x: sum(len(t) for t in x[0].payload[:3] if isinstance(t, str)))
    with engine.progress() as progress:
        task = progress.add_task(f"rationales ({scorer.name})", total=len(flat))
        progress.advance(task, len(flat) - len(todo))
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            texts = scorer.generate([u.payload[:3] for u, _, _ in chunk],
                                    [rationale_seed(seed, u.key, j) for u, j, _ in chunk],
                                    sampling)
            done = [(key, t) for (_, _, key), t in zip(chunk, texts, strict=True)
                    if t is not None]
            engine.cache.put_texts(fp, done)
            found.update(done)
            progress.advance(task, len(chunk))
    return [[found.get(key) for key in ks] for ks in keys]


def label_table(pairs: Sequence[PreferencePair], scorer: JudgeScorer, engine: Engine,
                cot: bool = False, sc: int = 1, sampling: Sampling | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Per pair: ``p_ai`` (P(chosen better), both orders averaged), ``p_chosen_first`` and
    ``p_chosen_second`` (each order alone), ``consistent`` (both orders prefer the same
    reply), ``label_mass`` (probability the labeler put on the two labels) and
    ``failure`` (why a pair has no label; its p columns are then NaN).

    With `cot`, each order is first explained (`sc` rationales, greedy when `sc` is 1,
    sampled as `sampling` says otherwise) and scored after each rationale; the `sc`
    distributions of an order are averaged (self-consistency). The rationales are
    in ``rationales_first`` / ``rationales_second``.
    """
    n = len(pairs)
    base = [judge_unit(as_messages(p.prompt), p.chosen, p.rejected) for p in pairs] + \
        [judge_unit(as_messages(p.prompt), p.rejected, p.chosen) for p in pairs]
    k = max(sc, 1) if cot else 1
    if cot:
        sampling = sampling or Sampling(temperature=0.0 if k == 1 else 1.0)
        texts = rationales(base, scorer, engine, k, sampling, seed)
    else:
        texts = [[None] for _ in base]
    scored = [judge_unit(*u.payload[:3], t) for u, ts in zip(base, texts, strict=True)
              for t in ts if not (cot and t is None)]
    values = iter(engine.run(scorer, scored, desc=scorer.name) if scored else [])
    p1, mass, reasons = first_preferred(base, texts, values,
                                        {**getattr(scorer, "failures", {}), **engine.failures},
                                        cot)
    if scorer.prompt.invert:  # it named the worse reply
        p1 = 1.0 - p1
    p_fwd, p_bwd = p1[:n], 1.0 - p1[n:]
    failure = [reasons[i] or reasons[n + i] for i in range(n)]
    table = pd.DataFrame({
        "id": [p.id for p in pairs],
        "p_ai": 0.5 * (p_fwd + p_bwd),
        "p_chosen_first": p_fwd,
        "p_chosen_second": p_bwd,
        "consistent": (p_fwd > 0.5) == (p_bwd > 0.5),
        "first_preferred": p1[:n] > 0.5,
        "first_preferred_swapped": p1[n:] > 0.5,
        "label_mass": 0.5 * (mass[:n] + mass[n:]),
        "failure": failure,
    })
    if cot:
        table["rationales_first"] = [list(map(str, t)) if None not in t else None
                                     for t in texts[:n]]
        table["rationales_second"] = [list(map(str, t)) if None not in t else None
                                      for t in texts[n:]]
    return table


def first_preferred(units: Sequence[Unit], texts: list[list[str | None]], values: Any,
                    failures: dict[str, str], cot: bool
                    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Per unit: P(the first reply is better), averaged over its rationales, the
    probability mass on the two labels, and why it has none (NaN) when it has none."""
    p1 = np.full(len(units), np.nan)
    mass = np.full(len(units), np.nan)
    reasons: list[str | None] = [None] * len(units)
    for i, (u, ts) in enumerate(zip(units, texts, strict=True)):
        got = []
        for t in ts:
            if cot and t is None:
                reasons[i] = "no rationale: " + failures.get(u.key, "generation failed")
                continue
            got.append((np.asarray(next(values), dtype=float), t))
        bad = [t for v, t in got if not np.isfinite(v[:2]).all()]
        if reasons[i] is None and bad:
            key = judge_unit(*u.payload[:3], bad[0]).key
            reasons[i] = failures.get(key, "the judge gave no label")
        if reasons[i] is None:
            vs = np.stack([v[:2] for v, _ in got])
            p1[i] = float(p_first(vs).mean())
            mass[i] = float(np.exp(vs).sum(axis=1).mean())
    return p1, mass, reasons


def direct_table(pairs: Sequence[PreferencePair], scorer: Any, engine: Engine
                 ) -> pd.DataFrame:
    """Direct scoring: each reply rated 1-10 on its own (``score_chosen``,
    ``score_rejected`` on [-1, 1]); ``p_ai`` = (2 + score_chosen - score_rejected) / 4,
    so a higher-rated chosen reply gives p_ai > 0.5. No order, so no position figures."""
    from preflab.engine.direct import direct_unit, expected_score, rescale

    units = [direct_unit(as_messages(p.prompt), p.chosen) for p in pairs] + \
        [direct_unit(as_messages(p.rejected_context), p.rejected) for p in pairs]
    values = np.stack(engine.run(scorer, units, desc=scorer.name)).astype(float)
    score = rescale(expected_score(values))
    n = len(pairs)
    return pd.DataFrame({"id": [p.id for p in pairs], "p_ai": (2 + score[:n] - score[n:]) / 4,
                         "score_chosen": score[:n], "score_rejected": score[n:],
                         "label_mass": 0.5 * (np.exp(values[:n]).sum(1)
                                              + np.exp(values[n:]).sum(1)),
                         "failure": [None] * n})
