"""The RL recipe (``preflab rl``) against the train PM, with points on the curve: at
step 0 and every checkpoint, one reply per held-out prompt (T = 1) scored by both PMs,
with its KL from the starting policy."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from preflab.experiment.overoptimization.bon import heldout_prompts
from preflab.experiment.overoptimization.pms import Run, pm_scorers


def rl_curve(run: Run) -> dict[str, Any]:
    """The RL recipe against the train PM on the training prompts; at step 0 and every
    checkpoint, one reply per held-out prompt scored by both PMs, with its KL from the
    starting policy. Resumes from its last checkpoint."""
    from tqdm.auto import tqdm

    from preflab.train.rl import (
        CHECKPOINT,
        check_config,
        next_batch,
        policy_step,
        reward_function,
        rollout,
        save_model,
        setup,
    )

    c = run.config
    folder = run.out / "rl"
    folder.mkdir(parents=True, exist_ok=True)
    every = c.rl_steps // c.rl_checkpoints
    config = replace(c.rl, policy=c.policy, reward=str(run.out / "pm-train"), direct=False,
                     steps=c.rl_steps, max_new_tokens=c.max_new_tokens, seed=c.seed,
                     save_steps=every, device=c.device, threads=c.threads)
    check_config(config)
    from preflab.data.prompts import load_prompts

    train_items = load_prompts(run.train_file, config.limit)
    if len(train_items) < config.batch_size:
        raise ValueError(f"{run.train_file}: {len(train_items)} prompts, fewer than the RL "
                         f"batch size {config.batch_size}")
    state, tokenizer, sampler = setup(config)
    reward = reward_function(config)
    scorers = pm_scorers(run)
    heldout = heldout_prompts(run)
    ckpt, points_file = folder / CHECKPOINT, folder / "points.jsonl"
    if ckpt.exists():
        state.load(ckpt)
    points = [json.loads(x) for x in points_file.read_text().splitlines()] \
        if points_file.exists() and ckpt.exists() else []
    points = [p for p in points if p["step"] <= state.step]

    def checkpoint() -> None:
        points.append(rl_point(state, sampler, tokenizer, scorers, heldout, config))
        points_file.write_text("".join(json.dumps(p) + "\n" for p in points))

    if not points:
        checkpoint()
    bar = tqdm(total=config.steps, initial=state.step, desc="rl")
    while state.step < config.steps:
        batch = next_batch(state, train_items, config.batch_size)
        inputs, r = rollout(state, sampler, tokenizer, reward, batch, config)
        state.log.append(policy_step(state, inputs, r, config))
        bar.update(1)
        if state.step % every == 0 or state.step == config.steps:
            checkpoint()
            state.save(ckpt)
    bar.close()
    (folder / "config.json").write_text(json.dumps(asdict(config), indent=1))
    save_model(state, tokenizer, folder)
    summary = {"policy": c.policy, "steps": config.steps, "every": every,
               "train_prompts": len(train_items), "heldout_prompts": len(heldout),
               "config": asdict(config), "log": state.log, "points": points}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def rl_point(state: Any, sampler: Any, tokenizer: Any, scorers: dict[str, Any],
             items: list[Any], config: Any) -> dict[str, Any]:
    """The policy at this step on the held-out prompts: one reply each at T = 1, its
    KL estimate from the starting policy and both PMs' scores (per prompt)."""
    import torch

    from preflab.models.generate import Sampling
    from preflab.models.logps import collate_continuations, reply_logps

    model = state.model
    device = next(model.parameters()).device
    model.eval()
    kl, texts = [], []
    with torch.no_grad():
        for start in range(0, len(items), config.batch_size):
            batch = items[start:start + config.batch_size]
            ids = sampler.generate_ids([p.messages for p in batch],
                                       [f"heldout:{p.id}" for p in batch], 1,
                                       Sampling(config.max_new_tokens, 1.0), config.seed,
                                       config.batch_size, progress=False,
                                       return_logprobs=True)
            replies = [per[0][0] for per in ids]
            texts += [tokenizer.decode(r, skip_special_tokens=True).strip() for r in replies]
            inputs = {k: t.to(device) for k, t in collate_continuations(
                [sampler.prompt_ids(p.messages) for p in batch],
                [(y, len(y)) for y in replies], sampler.pad_id).items()}
            sums, _ = reply_logps(model, inputs)
            with model.disable_adapter():
                ref, _ = reply_logps(model, inputs)
            kl += (sums - ref).float().cpu().tolist()
    contexts = [p.messages for p in items]
    return {"step": state.step, "kl": [round(x, 5) for x in kl],
            **{pm: score(contexts, texts, desc=f"{pm} PM").tolist()
               for pm, score in scorers.items()}, "replies": texts}
