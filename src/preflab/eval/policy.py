"""Evaluate a policy: mean reward-model score of its generations at several sampling
temperatures, and perplexity on held-out chosen replies."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preflab.committee.rewards import RewardFunction
from preflab.data.prompts import load_prompts
from preflab.eval.config import EvalPolicyConfig
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime
from preflab.models.sampler import Policy
from preflab.models.steering import SteeringVector
from preflab.settings import resolve_config, write_config


def mean_with_ci(x: np.ndarray) -> dict[str, float]:
    """Mean and its normal 95% interval."""
    half = 1.96 * float(x.std(ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else float("nan")
    return {"mean": round(float(x.mean()), 4), "ci95": [round(float(x.mean()) - half, 4),
                                                        round(float(x.mean()) + half, 4)]}


@torch.no_grad()
def perplexity(policy: Policy, pairs: Sequence[Any], max_length: int = 1024,
               batch_size: int = 8, source: str = "<pairs>") -> dict[str, float]:
    """exp(mean negative log-likelihood per token) of the chosen replies of `pairs`, under
    the policy's instruction and steering vector when it has them."""
    from preflab.data.instructions import instructed_pair
    from preflab.models.causal_lm import fit_max_length
    from preflab.models.examples import build_policy_examples
    from preflab.models.logps import collate_policy, reply_logps
    from preflab.models.steering import steered

    if policy.instruction:
        pairs = [instructed_pair(p, policy.instruction) for p in pairs]
    examples, report = build_policy_examples(list(pairs), policy.tokenizer,
                                             fit_max_length(policy.model, max_length),
                                             source=source, with_rejected=False)
    total, tokens = 0.0, 0
    device = next(policy.model.parameters()).device
    for start in range(0, len(examples), batch_size):
        batch = collate_policy(examples[start:start + batch_size], policy.pad_id,
                               rejected=False)
        with steered(policy.model, policy.steering, policy.coeff):
            sums, n = reply_logps(policy.model, {k: v.to(device) for k, v in batch.items()})
        total += float(sums.sum())
        tokens += int(n.sum())
    return {"perplexity": round(math.exp(-total / tokens), 4), "tokens": tokens,
            "replies": len(examples), "context_truncated": report.context_truncated,
            "reply_truncated": report.reply_truncated}


def eval_policy(model: str, prompts: str | Path | None = None, reward: str | None = None,
                out: str | Path = "eval-policy", config: EvalPolicyConfig | None = None,
                heldout: str | Path | None = None, **settings: Any) -> dict[str, Any]:
    """Reward scores of `model`'s replies to `prompts` at each temperature (with a
    reward model) and perplexity on the chosen replies of `heldout` pairs; with an
    `instruction` before every prompt's last user turn (HIR) or a steering vector
    file `steer` applied with `coeff`. `reward` and `settings` (fields of
    :class:`EvalPolicyConfig`) override `config`. Writes ``OUT/config.toml``."""
    config = resolve_config(EvalPolicyConfig, config, **settings,
                            **({"reward": reward} if reward is not None else {}))
    generating = config.reward is not None or config.harmless_judge is not None
    if not generating and heldout is None:
        raise ValueError("nothing to evaluate: give --reward, --harmless-judge, --heldout "
                         "or several")
    if generating and not prompts:
        raise ValueError("--reward and --harmless-judge rate generations: give --prompts "
                         "too")
    started = time.perf_counter()
    out = Path(out)
    write_config(config, out)
    policy = Policy(model, Runtime(device=config.device, threads=config.threads),
                    instruction=config.instruction,
                    steering=SteeringVector.load(config.steer) if config.steer else None,
                    coeff=config.coeff)
    summary: dict[str, Any] = {"model": model, "seed": config.seed,
                               "instruction": config.instruction, "steer": config.steer,
                               "coeff": config.coeff if config.steer else None}
    items = load_prompts(prompts, config.limit) if generating else []
    generations = generate(policy, items, config)
    summary["prompts_truncated"] = len(policy.prompts_truncated)
    if heldout is not None:
        from preflab.data.read import iter_pairs, load_pairs

        summary["heldout"] = str(heldout)
        summary.update(perplexity(policy, list(iter_pairs(load_pairs(heldout))),
                                  batch_size=config.batch_size, source=str(heldout)))
    del policy
    if generating:
        summary.update({"prompts": str(prompts), "n_prompts": len(items),
                        "max_new_tokens": config.max_new_tokens})
    if config.reward is not None:
        summary.update({"reward_model": config.reward,
                        "reward": score_generations(items, generations, config, out)})
    if config.harmless_judge is not None:
        summary.update({"harmless_judge": config.harmless_judge,
                        "harmless": rate_harmless(items, generations, config, out)})
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def generate(policy: Policy, items: Sequence[Any], config: EvalPolicyConfig
             ) -> dict[float, list[str]]:
    """One seeded reply per prompt at each temperature."""
    return {t: [r[0] for r in policy.generate(
        [p.messages for p in items], [p.id for p in items], 1,
        Sampling(config.max_new_tokens, t), config.seed, config.batch_size)]
        for t in config.temperatures} if items else {}


def score_generations(items: Sequence[Any], generations: dict[float, list[str]],
                      config: EvalPolicyConfig, out: Path) -> dict[str, Any]:
    """Mean reward (with its interval) per temperature; writes ``generations.jsonl``
    and one ``generations_t{T}.jsonl`` per temperature (`preflab winrate` reads it as
    a policy)."""
    from preflab.eval.winrate import write_generations

    score = RewardFunction(config.reward, device=config.device, threads=config.threads)
    rewards = {}
    with open(out / "generations.jsonl", "w", encoding="utf-8") as f:
        for t, replies in generations.items():
            r = score([p.messages for p in items], replies, desc=f"reward T={t}")
            rewards[str(t)] = {**mean_with_ci(r), "mean_words": round(float(
                np.mean([len(x.split()) for x in replies])), 1)}
            rows = [{"prompt_id": p.id, "temperature": t, "reply": x, "reward": float(v)}
                    for p, x, v in zip(items, replies, r, strict=True)]
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            write_generations(items, replies, out / f"generations_t{t}.jsonl")
    return rewards


def rate_harmless(items: Sequence[Any], generations: dict[float, list[str]],
                  config: EvalPolicyConfig, out: Path) -> dict[str, Any]:
    """Harmless rate and mean P(harmless) (with intervals) per temperature, from
    ``config.harmless_judge`` (:mod:`preflab.eval.harmless`); writes ``harmless.jsonl``
    (and, without a reward model, one ``generations_t{T}.jsonl`` per temperature)."""
    from preflab.eval.harmless import HarmlessJudge, harmless_stats
    from preflab.eval.winrate import write_generations

    assert config.harmless_judge is not None
    judge = HarmlessJudge(config.harmless_judge, device=config.device,
                          threads=config.threads)
    rates = {}
    with open(out / "harmless.jsonl", "w", encoding="utf-8") as f:
        for t, replies in generations.items():
            p = judge([x.messages for x in items], replies, desc=f"harmless T={t}")
            rates[str(t)] = harmless_stats(p, config.seed)
            f.writelines(json.dumps({"prompt_id": x.id, "temperature": t, "reply": r,
                                     "p_harmless": round(float(v.mean()), 6),
                                     "p_harmless_by_wording": [round(float(y), 6)
                                                               for y in v]},
                                    ensure_ascii=False) + "\n"
                         for x, r, v in zip(items, replies, p, strict=True))
            if config.reward is None:
                write_generations(items, replies, out / f"generations_t{t}.jsonl")
    return rates


def read_rewards(folder: str | Path) -> dict[float, dict[str, float]]:
    """temperature -> prompt id -> reward, from an `eval_policy` folder."""
    path = Path(folder) / "generations.jsonl"
    if not path.is_file():
        raise ValueError(f"{folder}: no generations.jsonl (run `preflab eval-policy` with "
                         "--reward into it)")
    out: dict[float, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            row = json.loads(line)
            if not {"prompt_id", "temperature", "reward"} <= set(row):
                raise ValueError(f"{path}, line {i}: needs prompt_id, temperature, reward")
            out.setdefault(float(row["temperature"]), {})[row["prompt_id"]] = row["reward"]
    return out


def paired_difference(a: dict[str, float], b: dict[str, float], seed: int = 0,
                      n_boot: int = 2000) -> dict[str, Any]:
    """Mean reward of A minus B over the prompts both answered (same prompts, and with
    `eval_policy`'s per-sample seeds), with a paired bootstrap 95% interval."""
    keys = sorted(set(a) & set(b))
    if len(keys) < 2:
        raise ValueError(f"{len(keys)} prompts in common: need at least 2 to compare")
    d = np.array([a[k] - b[k] for k in keys])
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    return {"n": len(d), "mean_diff": round(float(d.mean()), 4),
            "ci95": [round(float(np.percentile(boot, 2.5)), 4),
                     round(float(np.percentile(boot, 97.5)), 4)],
            "a_higher": round(float(np.mean(d > 0)), 4)}


def compare_evals(a: str | Path, b: str | Path, seed: int = 0) -> dict[str, Any]:
    """Per temperature, :func:`paired_difference` of two `eval_policy` folders."""
    ra, rb = read_rewards(a), read_rewards(b)
    common = sorted(set(ra) & set(rb))
    if not common:
        raise ValueError(f"{a} and {b} share no sampling temperature")
    return {str(t): paired_difference(ra[t], rb[t], seed) for t in common}
