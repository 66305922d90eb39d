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
from preflab.settings import write_config
from preflab.train.config import BestOfNConfig


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


def best_of_n(prompts: str | Path, out: str | Path, config: BestOfNConfig) -> dict[str, Any]:
    """Sample ``config.n`` replies per prompt from ``config.policy``, keep the one
    ``config.reward`` scores best; the reward is a reward model or a committee (see
    `CommitteeReward`). Writes ``OUT/config.toml`` and the files of the module doc."""
    if not config.reward:
        raise ValueError("--reward is required (a reward model or a committee)")
    committee = CommitteeReward(config.reward) if is_committee(config.reward) else None
    started = time.perf_counter()
    items = load_prompts(prompts, config.limit)
    out = Path(out)
    write_config(config, out)
    replies, prompts_truncated = sample(items, config)
    score = committee or RewardFunction(config.reward, device=config.device,
                                        threads=config.threads)
    n = config.n
    flat = score([p.messages for p in items for _ in range(n)],
                 [r for rs in replies for r in rs])
    rewards = flat.reshape(len(items), n)
    members = {k: v.reshape(len(items), n) for k, v in
               (committee.member_rewards if committee else {}).items()}
    selected = write_samples(items, replies, rewards, members, config, out)
    from preflab.data.write import write_pairs

    write_pairs(selected, out / "selected.jsonl")
    summary = {"prompts": str(prompts), "n_prompts": len(items), "policy": config.policy,
               "reward_model": config.reward,
               "reward_scale": ("committee: mean of the members' rewards, each standardised "
                                "over all samples" if committee else "the model's"),
               "n": n, "temperature": config.temperature, "top_p": config.top_p,
               "max_new_tokens": config.max_new_tokens, "seed": config.seed,
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


def sample(items: list[Any], config: BestOfNConfig) -> tuple[list[list[str]], int]:
    """``config.n`` seeded replies per prompt, and how many prompts were truncated."""
    gen = Policy(config.policy, Runtime(device=config.device, threads=config.threads))
    sampling = Sampling(config.max_new_tokens, config.temperature, config.top_p)
    replies = gen.generate([p.messages for p in items], [p.id for p in items], config.n,
                           sampling, config.seed, config.batch_size)
    return replies, len(gen.prompts_truncated)


def write_samples(items: list[Any], replies: list[list[str]], rewards: np.ndarray,
                  members: dict[str, np.ndarray], config: BestOfNConfig, out: Path
                  ) -> list[PreferencePair]:
    """``samples.jsonl`` (every reply and its reward); returns the selected pairs: the
    best non-empty reply as chosen, the worst as rejected."""
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
            usable = [j for j in range(config.n) if rs[j].strip()]  # empty trains nothing
            if not usable:
                continue
            best = max(usable, key=lambda j: r[j])
            worst = min(usable, key=lambda j: r[j])
            if rs[best] != rs[worst]:
                selected.append(PreferencePair(
                    prompt=messages, chosen=rs[best], rejected=rs[worst], subset="best-of-n",
                    meta={"policy": config.policy, "reward_model": config.reward,
                          "n": config.n, "reward_chosen": float(r[best]),
                          "reward_rejected": float(r[worst])}))
    return selected
