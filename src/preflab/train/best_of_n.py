"""Best-of-N rejection sampling: sample N replies per prompt, score them with a reward
model, keep the best (Bai et al. 2022: best-of-16 against a preference model).

Writes ``samples.jsonl`` (every reply and its reward), ``selected.jsonl`` (pairs:
the best reply as chosen, the worst as rejected, rewards in ``meta`` — an SFT set
that is also DPO data) and ``summary.json`` with the mean reward of best-of-1 (the
first sample of each prompt) and best-of-N on the same prompts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from preflab.committee.rewards import CommitteeReward, RewardFunction, is_committee
from preflab.data.pair import PreferencePair
from preflab.data.prompts import load_prompts
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime
from preflab.models.sampler import Policy


def best_of_n_table(rewards: np.ndarray, by: np.ndarray | None = None) -> dict[str, Any]:
    """Mean reward of best-of-k for k = 1, 2, 4, ... N from an [prompts, N] array
    (best-of-k takes the first k samples). With `by`, the sample kept is the best by
    `by` (a committee's combined reward) and `rewards` is what is averaged."""
    n = rewards.shape[1]
    by = rewards if by is None else by
    ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n} | {n})
    rows = np.arange(len(rewards))
    return {f"best_of_{k}": round(float(rewards[rows, by[:, :k].argmax(1)].mean()), 4)
            for k in ks}


def best_of_n(prompts: str | Path, policy: str, reward: str, out: str | Path, n: int = 16,
              temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 128,
              limit: int | None = None, seed: int = 0, batch_size: int = 8,
              device: str = "auto", threads: int | None = None) -> dict[str, Any]:
    """Sample `n` replies per prompt from `policy`, keep the one `reward` scores best.
    `reward` is a reward model or a committee (see `CommitteeReward`)."""
    if n < 2:
        raise ValueError(f"--n must be at least 2, got {n}")
    committee = CommitteeReward(reward) if is_committee(reward) else None  # checked first
    started = time.perf_counter()
    items = load_prompts(prompts, limit)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runtime = Runtime(device=device, threads=threads)
    gen = Policy(policy, runtime)
    sampling = Sampling(max_new_tokens, temperature, top_p)
    replies = gen.generate([p.messages for p in items], [p.id for p in items], n, sampling,
                           seed, batch_size)
    prompts_truncated = len(gen.prompts_truncated)
    del gen
    score = committee or RewardFunction(reward, device=device, threads=threads)
    flat = score([p.messages for p in items for _ in range(n)],
                 [r for rs in replies for r in rs])
    rewards = flat.reshape(len(items), n)
    members = {k: v.reshape(len(items), n) for k, v in
               (committee.member_rewards if committee else {}).items()}
    selected = []
    with open(out / "samples.jsonl", "w", encoding="utf-8") as f:
        for i, (p, rs, r) in enumerate(zip(items, replies, rewards, strict=True)):
            messages = [{"role": a, "content": c} for a, c in p.messages]
            row = {"prompt_id": p.id, "prompt": messages, "replies": rs,
                   "rewards": [round(float(x), 6) for x in r]}
            if members:  # each member's own reward, before standardising
                row["member_rewards"] = {k: [float(x) for x in v[i]]
                                         for k, v in members.items()}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            usable = [j for j in range(n) if rs[j].strip()]  # an empty reply trains nothing
            if not usable:
                continue
            best = max(usable, key=lambda j: r[j])
            worst = min(usable, key=lambda j: r[j])
            if rs[best] != rs[worst]:
                selected.append(PreferencePair(
                    prompt=messages, chosen=rs[best], rejected=rs[worst], subset="best-of-n",
                    meta={"policy": policy, "reward_model": reward, "n": n,
                          "reward_chosen": float(r[best]), "reward_rejected": float(r[worst])}))
    from preflab.data.write import write_pairs

    write_pairs(selected, out / "selected.jsonl")
    summary = {"prompts": str(prompts), "n_prompts": len(items), "policy": policy,
               "reward_model": reward,
               "reward_scale": ("committee: mean of the members' rewards, each standardised "
                                "over all samples" if committee else "the model's"),
               "n": n, "temperature": temperature, "top_p": top_p,
               "max_new_tokens": max_new_tokens, "seed": seed,
               "prompts_truncated": prompts_truncated,  # kept their last 1024 tokens
               **best_of_n_table(rewards),
               **({"members": {k: best_of_n_table(v, rewards) for k, v in members.items()}}
                  if members else {}),
               "selected": len(selected),
               # prompts whose non-empty replies are all the same (or none is non-empty)
               "skipped": len(items) - len(selected),
               "empty_replies": int(sum(not x.strip() for rs in replies for x in rs)),
               "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
