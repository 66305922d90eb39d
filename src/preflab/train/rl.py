"""RL from a reward model (or direct RLAIF): REINFORCE with a learned value baseline.

The RLAIF paper's A2C-style recipe (Lee et al. 2023): each step samples replies to a
batch of prompts from the policy (``samples_per_prompt`` each, sharing the prompt's KV
cache), scores them, and maximises
E[(1 - beta) r(x, y) - beta KL(pi || pi_ref)] with the reward at the last token.
The sequence KL is estimated on the sampled reply, sum_t log pi(y_t) - log pi_ref(y_t),
pi_ref being the starting policy (LoRA adapters switched off). The baseline V(x) is a
linear head on the policy's hidden state at the end of the prompt, trained by
squared error on the same return; the policy gradient uses A = R - V(x).
``baseline="loo"`` uses instead the mean return of the prompt's other samples (RLOO,
Ahmadian et al. 2024; needs 2+ samples per prompt); the value head is still fitted
and logged. ``whiten`` rescales the batch's advantages to mean 0, std 1.

``direct``: the reward is the judge's 1-10 rating, sum_i i P(i) rescaled to [-1, 1].
Writes ``rl_log.jsonl`` (one line per step: reward, KL, return, value loss), the
aligned model (LoRA merged) and ``preflab-train.json``; a checkpoint every
`save_steps` lets an interrupted run resume.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preflab.data.prompts import load_prompts
from preflab.models.causal_lm import load_policy
from preflab.models.generate import Sampling
from preflab.models.logps import collate_continuations, reply_logps
from preflab.models.sampler import Policy
from preflab.train.recipe import PolicyConfig

CHECKPOINT = "rl-checkpoint.pt"


@dataclass
class RLConfig:
    policy: str = "smollm2-135m-instruct"
    reward: str = ""  # a reward model, or with direct=True a judge model
    direct: bool = False
    task: str = "helpful"  # the direct judge's task
    beta: float = 0.05
    steps: int = 30
    batch_size: int = 8  # prompts per step
    samples_per_prompt: int = 1
    baseline: str = "value"  # value (A2C) | loo (leave-one-out mean of the other samples)
    whiten: bool = False
    max_new_tokens: int = 48
    max_prompt_tokens: int = 256
    learning_rate: float = 1e-4
    value_learning_rate: float = 1e-3
    lora_r: int = 16
    lora_alpha: int = 32
    seed: int = 0
    save_steps: int = 10
    device: str = "auto"
    threads: int | None = None


def reward_function(config: RLConfig) -> Any:
    from preflab.committee.rewards import DirectJudgeReward, RewardFunction

    if not config.reward:
        raise ValueError("--reward is required: a reward model (or a judge with --direct)")
    if config.direct:
        return DirectJudgeReward(config.reward, config.task, device=config.device,
                                 threads=config.threads, progress=False)
    return RewardFunction(config.reward, device=config.device, threads=config.threads,
                          progress=False)


def advantages(ret: torch.Tensor, value: torch.Tensor, k: int, baseline: str = "value",
               whiten: bool = False) -> torch.Tensor:
    """Per-sample advantages; rows are prompt-major, `k` samples per prompt.
    ``value``: R - V(x). ``loo``: R minus the mean return of the prompt's other samples.
    `whiten`: then scaled to mean 0, std 1 over the batch."""
    if baseline == "loo":
        per = ret.view(-1, k)
        out = (per - (per.sum(1, keepdim=True) - per) / (k - 1)).reshape(-1)
    else:
        out = ret - value
    if whiten and len(out) > 1:
        out = (out - out.mean()) / (out.std() + 1e-6)
    return out


def rl(prompts: str | Path, out: str | Path, config: RLConfig,
       limit: int | None = None, resume: bool = True,
       on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run `config.steps` policy-gradient steps on `prompts`; the model lands in `out`.
    `on_step` is called with each step's log entry (after its checkpoint)."""
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = config.samples_per_prompt
    if config.baseline not in ("value", "loo"):
        raise ValueError(f"baseline must be 'value' or 'loo', got {config.baseline!r}")
    if k < 1 or (config.baseline == "loo" and k < 2):
        raise ValueError(f"--samples-per-prompt {k}: must be at least "
                         f"{2 if config.baseline == 'loo' else 1} for baseline "
                         f"{config.baseline!r}")
    items = load_prompts(prompts, limit)
    if len(items) < config.batch_size:
        raise ValueError(f"{prompts}: {len(items)} prompts, fewer than --batch-size "
                         f"{config.batch_size}")
    reward = reward_function(config)
    pconf = PolicyConfig(policy=config.policy, lora=True, lora_r=config.lora_r,
                         lora_alpha=config.lora_alpha, seed=config.seed, device=config.device)
    model, tokenizer = load_policy(config.policy, pconf)
    device = next(model.parameters()).device
    value = torch.nn.Linear(model.config.hidden_size, 1).to(device)
    torch.nn.init.zeros_(value.weight)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                            lr=config.learning_rate)
    vopt = torch.optim.AdamW(value.parameters(), lr=config.value_learning_rate)
    # sampling reads the transformer under the peft wrapper (its LoRA layers active)
    sampler = Policy(model.get_base_model(), max_prompt_tokens=config.max_prompt_tokens,
                     tokenizer=tokenizer)
    # on-policy: sampled at T = 1, the distribution whose log-probs and KL are used
    sampling = Sampling(config.max_new_tokens, 1.0)
    rng = random.Random(config.seed)
    order: list[int] = []
    log: list[dict[str, Any]] = []
    step = 0
    ckpt = out / CHECKPOINT
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        value.load_state_dict(state["value"])
        opt.load_state_dict(state["opt"])
        vopt.load_state_dict(state["vopt"])
        rng.setstate(state["rng"])
        order, log, step = state["order"], state["log"], state["step"]
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, initial=step, desc="rl")
    while step < config.steps:
        if len(order) < config.batch_size:
            order += rng.sample(range(len(items)), len(items))
        batch_items = [items[i] for i in order[:config.batch_size]]
        order = order[config.batch_size:]
        model.eval()
        with torch.no_grad():
            ids = sampler.generate_ids([p.messages for p in batch_items],
                                       [f"{p.id}:{step}" for p in batch_items], k, sampling,
                                       config.seed, config.batch_size * k, progress=False,
                                       return_logprobs=True)
        # the stop token stays in the reply: stopping is an action the policy takes
        replies = [s[0] for per in ids for s in per]  # prompt-major: k samples per prompt
        texts = [tokenizer.decode(r, skip_special_tokens=True).strip() for r in replies]
        r = torch.tensor(reward([p.messages for p in batch_items for _ in range(k)], texts),
                         dtype=torch.float32, device=device)
        inputs = {key: t.to(device) for key, t in collate_continuations(
            [sampler.prompt_ids(p.messages) for p in batch_items],
            [(y, len(y)) for y in replies], sampler.pad_id).items()}
        with torch.no_grad(), model.disable_adapter():
            ref_sums, _ = reply_logps(model, inputs)
        model.train()
        sums, n, _, hidden = reply_logps(model, inputs, per_token=True)
        kl = (sums - ref_sums).detach()
        ret = (1 - config.beta) * r - config.beta * kl
        v = value(hidden.detach().float())[:, 0]
        advantage = advantages(ret, v.detach(), k, config.baseline, config.whiten)
        policy_loss = -(advantage * sums).mean()
        value_loss = ((v - ret) ** 2).mean()
        opt.zero_grad()
        vopt.zero_grad()
        (policy_loss + value_loss).backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        vopt.step()
        step += 1
        entry = {"step": step, "reward": round(float(r.mean()), 5),
                 "kl": round(float(kl.mean()), 5), "return": round(float(ret.mean()), 5),
                 "value_loss": round(float(value_loss.detach()), 5),
                 "reply_tokens": round(float(n.float().mean()), 1)}
        log.append(entry)
        bar.update(1)
        bar.set_postfix(reward=entry["reward"], kl=entry["kl"])
        if step % config.save_steps == 0 and step < config.steps:
            torch.save({"model": {k: v for k, v in model.state_dict().items() if "lora" in k},
                        "value": value.state_dict(), "opt": opt.state_dict(),
                        "vopt": vopt.state_dict(), "rng": rng.getstate(), "order": order,
                        "log": log, "step": step}, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)  # an interrupted save keeps the last one
        if on_step is not None:
            on_step(entry)
    bar.close()
    with open(out / "rl_log.jsonl", "w") as f:
        for entry in log:
            f.write(json.dumps(entry) + "\n")
    merged = model.merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    ckpt.unlink(missing_ok=True)
    first, last = log[:5], log[-5:]
    summary = {"stage": "rl", "model": str(out), "prompts": str(prompts),
               "n_prompts": len(items), "config": asdict(config), "steps": step,
               "reward_first5": round(float(np.mean([e["reward"] for e in first])), 4),
               "reward_last5": round(float(np.mean([e["reward"] for e in last])), 4),
               "kl_last5": round(float(np.mean([e["kl"] for e in last])), 4),
               "kl_max": round(float(max(e["kl"] for e in log)), 4),
               "log": log, "seconds": round(time.perf_counter() - started, 1)}
    (out / "preflab-train.json").write_text(json.dumps(summary, indent=1))
    return summary
