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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from preflab.data.prompts import load_prompts
from preflab.models.causal_lm import load_policy
from preflab.models.generate import Sampling
from preflab.models.logps import collate_continuations, reply_logps
from preflab.models.sampler import Policy
from preflab.settings import write_config
from preflab.train.config import PolicyConfig, RLConfig
from preflab.train.trainer_run import save_summary

CHECKPOINT = "rl-checkpoint.pt"


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


@dataclass
class RLState:
    """What the loop changes and a checkpoint saves: the policy's LoRA weights, the
    value head, both optimisers, the prompt order and the log."""

    model: Any
    value: torch.nn.Linear
    opt: torch.optim.Optimizer
    vopt: torch.optim.Optimizer
    rng: random.Random
    order: list[int] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0

    def save(self, path: Path) -> None:
        """Save atomically: an interrupted save keeps the last checkpoint."""
        torch.save({"model": {k: v for k, v in self.model.state_dict().items()
                              if "lora" in k},
                    "value": self.value.state_dict(), "opt": self.opt.state_dict(),
                    "vopt": self.vopt.state_dict(), "rng": self.rng.getstate(),
                    "order": self.order, "log": self.log, "step": self.step},
                   path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"], strict=False)
        self.value.load_state_dict(state["value"])
        self.opt.load_state_dict(state["opt"])
        self.vopt.load_state_dict(state["vopt"])
        self.rng.setstate(state["rng"])
        self.order, self.log, self.step = state["order"], state["log"], state["step"]


def check_config(config: RLConfig) -> None:
    k = config.samples_per_prompt  # its range and the baseline's choices: RLConfig's
    if config.baseline == "loo" and k < 2:
        raise ValueError(f"--samples-per-prompt {k}: must be at least 2 for baseline 'loo'")


def setup(config: RLConfig) -> tuple[RLState, Any, Policy]:
    """The LoRA policy, its value head and optimisers (the state), its tokenizer, and a
    sampler that reads the policy with its adapters active."""
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
    return RLState(model, value, opt, vopt, random.Random(config.seed)), tokenizer, sampler


def next_batch(state: RLState, items: list[Any], batch_size: int) -> list[Any]:
    """The next prompts of a seeded shuffle, reshuffled when they run out."""
    if len(state.order) < batch_size:
        state.order += state.rng.sample(range(len(items)), len(items))
    batch = [items[i] for i in state.order[:batch_size]]
    state.order = state.order[batch_size:]
    return batch


def rollout(state: RLState, sampler: Policy, tokenizer: Any, reward: Any,
            batch: list[Any], config: RLConfig) -> tuple[dict[str, torch.Tensor],
                                                         torch.Tensor]:
    """Sample `samples_per_prompt` replies per prompt at T = 1 (on-policy: the
    distribution whose log-probs and KL are used) and score them: (the prompt+reply
    batch, the rewards), prompt-major."""
    k = config.samples_per_prompt
    device = next(state.model.parameters()).device
    state.model.eval()
    with torch.no_grad():
        ids = sampler.generate_ids([p.messages for p in batch],
                                   [f"{p.id}:{state.step}" for p in batch], k,
                                   Sampling(config.max_new_tokens, 1.0), config.seed,
                                   config.batch_size * k, progress=False,
                                   return_logprobs=True)
    # the stop token stays in the reply: stopping is an action the policy takes
    replies = [s[0] for per in ids for s in per]  # prompt-major: k samples per prompt
    texts = [tokenizer.decode(r, skip_special_tokens=True).strip() for r in replies]
    r = torch.tensor(reward([p.messages for p in batch for _ in range(k)], texts),
                     dtype=torch.float32, device=device)
    inputs = {key: t.to(device) for key, t in collate_continuations(
        [sampler.prompt_ids(p.messages) for p in batch],
        [(y, len(y)) for y in replies], sampler.pad_id).items()}
    return inputs, r


def policy_step(state: RLState, inputs: dict[str, torch.Tensor], r: torch.Tensor,
                config: RLConfig) -> dict[str, Any]:
    """One policy-gradient and value step on a scored batch; returns its log entry."""
    model, value = state.model, state.value
    with torch.no_grad(), model.disable_adapter():
        ref_sums, _ = reply_logps(model, inputs)
    model.train()
    sums, n, _, hidden = reply_logps(model, inputs, per_token=True)
    kl = (sums - ref_sums).detach()
    ret = (1 - config.beta) * r - config.beta * kl
    v = value(hidden.detach().float())[:, 0]
    advantage = advantages(ret, v.detach(), config.samples_per_prompt, config.baseline,
                           config.whiten)
    policy_loss = -(advantage * sums).mean()
    value_loss = ((v - ret) ** 2).mean()
    state.opt.zero_grad()
    state.vopt.zero_grad()
    (policy_loss + value_loss).backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    state.opt.step()
    state.vopt.step()
    state.step += 1
    return {"step": state.step, "reward": round(float(r.mean()), 5),
            "kl": round(float(kl.mean()), 5), "return": round(float(ret.mean()), 5),
            "value_loss": round(float(value_loss.detach()), 5),
            "reply_tokens": round(float(n.float().mean()), 1)}


def save_model(state: RLState, tokenizer: Any, out: Path) -> None:
    """The step log, and the policy with its LoRA merged; the checkpoint is removed."""
    with open(out / "rl_log.jsonl", "w") as f:
        for entry in state.log:
            f.write(json.dumps(entry) + "\n")
    merged = state.model.merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / CHECKPOINT).unlink(missing_ok=True)


def report(state: RLState, out: Path, prompts: str | Path, n_prompts: int,
           config: RLConfig, seconds: float) -> dict[str, Any]:
    """``preflab-train.json``: the config, the reward and KL at the start and the end,
    the whole log."""
    log = state.log
    first, last = log[:5], log[-5:]
    summary = {"stage": "rl", "model": str(out), "prompts": str(prompts),
               "n_prompts": n_prompts, "config": asdict(config), "steps": state.step,
               "reward_first5": round(float(np.mean([e["reward"] for e in first])), 4),
               "reward_last5": round(float(np.mean([e["reward"] for e in last])), 4),
               "kl_last5": round(float(np.mean([e["kl"] for e in last])), 4),
               "kl_max": round(float(max(e["kl"] for e in log)), 4),
               "log": log, "seconds": round(seconds, 1)}
    return save_summary(out, summary)


def rl(prompts: str | Path, out: str | Path, config: RLConfig, resume: bool = True,
       on_step: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run `config.steps` policy-gradient steps on `prompts` (the first
    ``config.limit`` of them); the model lands in `out`. `on_step` is called with
    each step's log entry (after its checkpoint)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    check_config(config)
    out = Path(out)
    write_config(config, out)
    items = load_prompts(prompts, config.limit)
    if len(items) < config.batch_size:
        raise ValueError(f"{prompts}: {len(items)} prompts, fewer than --batch-size "
                         f"{config.batch_size}")
    reward = reward_function(config)
    state, tokenizer, sampler = setup(config)
    ckpt = out / CHECKPOINT
    if resume and ckpt.exists():
        state.load(ckpt)
    bar = tqdm(total=config.steps, initial=state.step, desc="rl")
    while state.step < config.steps:
        batch = next_batch(state, items, config.batch_size)
        inputs, r = rollout(state, sampler, tokenizer, reward, batch, config)
        entry = policy_step(state, inputs, r, config)
        state.log.append(entry)
        bar.update(1)
        bar.set_postfix(reward=entry["reward"], kl=entry["kl"])
        if state.step % config.save_steps == 0 and state.step < config.steps:
            state.save(ckpt)
        if on_step is not None:
            on_step(entry)
    bar.close()
    save_model(state, tokenizer, out)
    return report(state, out, prompts, len(items), config, time.perf_counter() - started)
