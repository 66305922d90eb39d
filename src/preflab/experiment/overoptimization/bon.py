"""Best-of-N: ``max(n)`` seeded replies per held-out prompt, drawn once, and every one
of them scored by both PMs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from preflab.experiment.overoptimization.pms import Run, pm_scorers


def heldout_prompts(run: Run) -> list[Any]:
    """The first ``prompts`` held-out prompts (at least 2)."""
    from preflab.data.prompts import load_prompts

    items = load_prompts(run.eval_file, run.config.prompts)
    if len(items) < 2:
        raise ValueError(f"{run.eval_file}: {len(items)} held-out prompt(s); need 2")
    return items


def sample_bon(run: Run) -> dict[str, Any]:
    """max(n) seeded replies per held-out prompt (``bon/samples.jsonl``)."""
    from preflab.train.best_of_n import sample
    from preflab.train.config import BestOfNConfig

    c = run.config
    items = heldout_prompts(run)
    replies, truncated = sample(items, BestOfNConfig(
        policy=c.policy, n=max(c.n), temperature=c.temperature,
        max_new_tokens=c.max_new_tokens, seed=c.seed, batch_size=c.batch_size,
        device=c.device, threads=c.threads))
    folder = run.out / "bon"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "samples.jsonl", "w", encoding="utf-8") as f:
        for p, rs in zip(items, replies, strict=True):
            f.write(json.dumps({"prompt_id": p.id, "prompt": [
                {"role": a, "content": x} for a, x in p.messages], "replies": rs},
                ensure_ascii=False) + "\n")
    summary = {"n_prompts": len(items), "samples_per_prompt": max(c.n),
               "prompts_truncated": truncated,
               "empty_replies": sum(not r.strip() for rs in replies for r in rs),
               "mean_words": round(float(np.mean([len(r.split()) for rs in replies
                                                  for r in rs])), 1)}
    (folder / "samples.json").write_text(json.dumps(summary, indent=1))
    return summary


def read_samples(folder: Path) -> tuple[list[Any], list[list[str]]]:
    """(contexts, replies per context) of ``bon/samples.jsonl``."""
    from preflab.data.messages import as_messages

    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    return [as_messages(r["prompt"]) for r in rows], [r["replies"] for r in rows]


def score_bon(run: Run) -> dict[str, Any]:
    """Every best-of-N candidate scored by both PMs (``bon/scores.json``)."""
    folder = run.out / "bon"
    contexts, replies = read_samples(folder)
    k = len(replies[0])
    flat_c = [m for m in contexts for _ in range(k)]
    flat_r = [r for rs in replies for r in rs]
    scores = {pm: score(flat_c, flat_r, desc=f"{pm} PM").reshape(len(contexts), k).tolist()
              for pm, score in pm_scorers(run).items()}
    (folder / "scores.json").write_text(json.dumps(scores))
    return scores
