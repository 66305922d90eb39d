"""Reward over-optimisation: a train PM and a test PM, a policy optimised against the first.

Bai et al. (2022, section 4.3): split the preference data in half by prompt, train one
preference model on each half with the same settings, optimise a policy against the
"train PM" and score what it produces with both. While optimisation helps, both
scores rise together; where the test PM stops following the train PM the policy is
exploiting its reward model.

1. Split the pairs (seeded, by prompt): ``eval_fraction`` held out, the rest into two
   halves (no prompt on two sides); train PM on half A, test PM on half B
   (``train-rm``, the same settings). Both are also scored on the held-out pairs.
2. Best-of-N: ``max(n)`` replies per held-out prompt, drawn once (the first k of them
   are best-of-k's candidates, so the curve is nested); each N keeps the reply the
   train PM scores best. KL(best-of-N || policy) = log N - (N - 1) / N nats (the
   standard analytic bound; Stiennon et al. 2020).
3. With ``rl_steps``: the RL recipe (``preflab rl``) against the train PM on the
   training prompts; at every checkpoint one reply per held-out prompt (T = 1) is
   scored with both PMs, and the KL from the starting policy is estimated on those
   replies (sum of log pi - log pi_ref over the reply's tokens, averaged).

Scores are reported raw and standardised per PM (minus its mean, over its standard
deviation, on all best-of-N candidates: the policy's own distribution), so the two
PMs' arbitrary offsets and scales drop out; the gap is train minus test on that
scale. Intervals: 95% percentile bootstrap over prompts, the same resamples for
every point and both PMs (so the gap's interval is paired).

Every stage writes into its own folder under `out` and is skipped on a rerun.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from preflab.experiment.config import OverOptimizationConfig
from preflab.experiment.stages import ExperimentRun, merge_timings, start_run
from preflab.models.reward_folder import SUMMARY

PMS = ("train", "test")


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || policy) in nats: log n - (n - 1) / n."""
    if n < 1:
        raise ValueError(f"best-of-n needs n >= 1, got {n}")
    return float(np.log(n) - (n - 1) / n)


def best_of_n_picks(by: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
    """For each k, the index (per prompt, a row of the [prompts, N] `by`) of the best of
    the first k candidates."""
    if max(ks) > by.shape[1]:
        raise ValueError(f"best-of-{max(ks)} asked for, but only {by.shape[1]} samples")
    return {k: by[:, :k].argmax(1) for k in ks}


def bootstrap_points(train: list[np.ndarray], test: list[np.ndarray], seed: int = 0,
                     n_boot: int = 2000) -> list[dict[str, Any]]:
    """Per point (a per-prompt array of each PM's score; every point on the same
    prompts), the mean of each PM and of the gap train - test, each with a 95%
    percentile bootstrap interval over prompts (the same resamples everywhere)."""
    n = len(train[0])
    if n < 2 or any(len(x) != n for x in [*train, *test]):
        raise ValueError("every point needs the same prompts, at least 2")
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    out = []
    for tr, te in zip(train, test, strict=True):
        row: dict[str, Any] = {}
        for name, x in (("train", tr), ("test", te), ("gap", tr - te)):
            boot = x[idx].mean(1)
            row[name] = round(float(x.mean()), 4)
            row[f"{name}_ci95"] = [round(float(v), 4)
                                   for v in np.percentile(boot, [2.5, 97.5])]
        out.append(row)
    return out


def overoptimization(data: str | Path, out: str | Path = "overoptimization",
                     config: OverOptimizationConfig | None = None, **settings: Any
                     ) -> dict[str, Any]:
    """Run the experiment; returns (and writes) the summary. `settings` (fields of
    :class:`OverOptimizationConfig`) override `config`. Writes ``summary.json``,
    ``curve.csv``, ``curve.png`` and ``report.md`` into `out`."""
    started = time.perf_counter()
    config = replace(config or OverOptimizationConfig(), **settings)
    check(config)
    run = start_run(ExperimentRun(Path(out), config), data)
    halves = run.stage(run.out / "split" / "halves.json", "halves", lambda: split_halves(run))
    trained = {pm: run.stage(run.out / f"pm-{pm}" / SUMMARY, f"pm-{pm}",
                             lambda pm=pm: train_pm(run, pm)) for pm in PMS}
    heldout = run.stage(run.out / "pm-heldout.json", "pm-heldout", lambda: pm_heldout(run))
    run.stage(run.out / "bon" / "samples.json", "bon-sample", lambda: sample_bon(run))
    run.stage(run.out / "bon" / "scores.json", "bon-score", lambda: score_bon(run))
    rl = (run.stage(run.out / "rl" / "summary.json", "rl", lambda: rl_curve(run))
          if config.rl_steps else None)
    summary = curve(run, data, halves, trained, heldout, rl, time.perf_counter() - started)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (run.out / "report.md").write_text(report_markdown(summary))
    return summary


def check(config: OverOptimizationConfig) -> None:
    if not config.n or min(config.n) < 1:
        raise ValueError(f"--n: every N must be at least 1, got {config.n}")
    if config.prompts < 2:
        raise ValueError(f"--prompts must be at least 2, got {config.prompts}")
    if config.rl_steps < 0 or config.rl_checkpoints < 1:
        raise ValueError("--rl-steps must be >= 0 and --rl-checkpoints >= 1")
    if config.rl_steps and config.rl_steps < config.rl_checkpoints:
        raise ValueError(f"--rl-steps {config.rl_steps} is fewer than --rl-checkpoints "
                         f"{config.rl_checkpoints}")


def split_halves(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
    """The training part into half A (train PM) and half B (test PM), by prompt."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.split import split_pairs
    from preflab.data.write import write_pairs

    c = run.config
    half_b, half_a = split_pairs(list(iter_pairs(load_pairs(run.train_file))), 0.5,
                                 c.seed + 1)
    folder = run.out / "split"
    write_pairs(half_a, folder / "half-train-pm.jsonl")
    write_pairs(half_b, folder / "half-test-pm.jsonl")
    summary = {"train_pm_pairs": len(half_a), "test_pm_pairs": len(half_b),
               "heldout_pairs": sum(1 for _ in iter_pairs(load_pairs(run.eval_file)))}
    (folder / "halves.json").write_text(json.dumps(summary, indent=1))
    return summary


def train_pm(run: ExperimentRun[OverOptimizationConfig], pm: str) -> dict[str, Any]:
    """One PM on its half, with the shared settings."""
    from preflab.train.reward_model import train_rm

    c = run.config
    rm = replace(c.rm, seed=c.seed, device=c.device, threads=c.threads)
    return train_rm(run.out / "split" / f"half-{pm}-pm.jsonl", run.out / f"pm-{pm}", rm)


def pm_heldout(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
    """Both PMs on the held-out pairs: accuracy, calibration, agreement."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.eval.metrics import agreement, hard_margins, reward_metrics
    from preflab.eval.reward_model import score_pairs

    c = run.config
    pairs = list(iter_pairs(load_pairs(run.eval_file)))
    margins = {pm: hard_margins(score_pairs(run.out / f"pm-{pm}", pairs, device=c.device,
                                            threads=c.threads)) for pm in PMS}
    summary = {**{f"{pm}_pm": {k: v for k, v in reward_metrics(m).items()
                               if k != "reliability"} for pm, m in margins.items()},
               **agreement(margins["train"], margins["test"])}
    (run.out / "pm-heldout.json").write_text(json.dumps(summary, indent=1))
    return summary


def heldout_prompts(run: ExperimentRun[OverOptimizationConfig]) -> list[Any]:
    from preflab.data.prompts import load_prompts

    items = load_prompts(run.eval_file, run.config.prompts)
    if len(items) < 2:
        raise ValueError(f"{run.eval_file}: {len(items)} held-out prompt(s); need 2")
    return items


def sample_bon(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
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
    from preflab.data.messages import as_messages

    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    return [as_messages(r["prompt"]) for r in rows], [r["replies"] for r in rows]


def pm_scorers(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
    from preflab.committee.rewards import RewardFunction

    c = run.config
    return {pm: RewardFunction(run.out / f"pm-{pm}", device=c.device, threads=c.threads)
            for pm in PMS}


def score_bon(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
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


def rl_curve(run: ExperimentRun[OverOptimizationConfig]) -> dict[str, Any]:
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


def curve(run: ExperimentRun[OverOptimizationConfig], data: str | Path,
          halves: dict[str, Any], trained: dict[str, Any], heldout: dict[str, Any],
          rl: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """The curve's points (``curve.csv``, ``curve.png``) and the summary."""
    c = run.config
    scores = {pm: np.array(v) for pm, v in json.loads(
        (run.out / "bon" / "scores.json").read_text()).items()}
    # each PM standardised on the policy's own replies (every best-of-N candidate)
    center = {pm: (float(s.mean()), float(s.std()) or 1.0) for pm, s in scores.items()}

    def z(pm: str, x: np.ndarray) -> np.ndarray:
        return (x - center[pm][0]) / center[pm][1]

    picks = best_of_n_picks(scores["train"], c.n)
    rows = np.arange(len(scores["train"]))
    labels: list[dict[str, Any]] = []
    per_pm: dict[str, list[np.ndarray]] = {pm: [] for pm in PMS}
    raw: dict[str, list[float]] = {pm: [] for pm in PMS}
    for k, pick in picks.items():
        labels.append({"method": "best-of-n", "n": k, "step": None, "kl": best_of_n_kl(k)})
        for pm in PMS:
            x = scores[pm][rows, pick]
            per_pm[pm].append(z(pm, x))
            raw[pm].append(float(x.mean()))
    for p in (rl or {}).get("points", []):
        labels.append({"method": "rl", "n": None, "step": p["step"],
                       "kl": float(np.mean(p["kl"]))})
        for pm in PMS:
            x = np.array(p[pm])
            per_pm[pm].append(z(pm, x))
            raw[pm].append(float(x.mean()))
    points = bootstrap_points(per_pm["train"], per_pm["test"], c.seed, c.n_boot)
    table = [{**lab, "kl": round(lab["kl"], 4), **pt, "train_raw": round(raw["train"][i], 4),
              "test_raw": round(raw["test"][i], 4)}
             for i, (lab, pt) in enumerate(zip(labels, points, strict=True))]
    write_csv(table, run.out / "curve.csv")
    plot_curve(table, run.out / "curve.png")
    samples = json.loads((run.out / "bon" / "samples.json").read_text())
    return {
        "data": str(data), "policy": c.policy, "pm_base": c.rm.base, "seed": c.seed,
        "n_prompts": samples["n_prompts"], "n": c.n, "temperature": c.temperature,
        "max_new_tokens": c.max_new_tokens, "rl_steps": c.rl_steps, **halves,
        "pm_training": {pm: {"pairs": t["stages"][-1]["n_pairs"],
                             "train_loss": t["stages"][-1]["train_loss"],
                             "seconds": t["stages"][-1]["seconds"]}
                        for pm, t in trained.items()},
        "pm_heldout": heldout, "samples": samples,
        "standardisation": {pm: {"mean": round(m, 4), "std": round(s, 4)}
                            for pm, (m, s) in center.items()},
        "curve": table, "config": asdict(c),
        "stage_seconds": run.timings,
        "all_stage_seconds": merge_timings(run.out / "stage_seconds.json", run.timings),
        "seconds": round(seconds, 1)}


def write_csv(table: list[dict[str, Any]], path: Path) -> None:
    cols = ["method", "n", "step", "kl", "train", "train_lo", "train_hi", "test", "test_lo",
            "test_hi", "gap", "gap_lo", "gap_hi", "train_raw", "test_raw"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in table:
            flat = {**r, **{f"{k}_{e}": r[f"{k}_ci95"][i] for k in ("train", "test", "gap")
                            for i, e in enumerate(("lo", "hi"))}}
            w.writerow(["" if flat[k] is None else flat[k] for k in cols])


def plot_curve(table: list[dict[str, Any]], path: Path) -> None:
    """Both PMs' standardised score against KL (top) and their gap (bottom), with
    their intervals."""
    from preflab.figures import pyplot

    plt = pyplot()
    fig, (ax, gap) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                  gridspec_kw={"height_ratios": [2, 1]})
    for method, style in (("best-of-n", "-o"), ("rl", "--s")):
        rows = [r for r in table if r["method"] == method]
        if not rows:
            continue
        kl = [r["kl"] for r in rows]
        for pm, color in (("train", "tab:blue"), ("test", "tab:orange")):
            ax.plot(kl, [r[pm] for r in rows], style, color=color,
                    label=f"{pm} PM ({method})")
            ax.fill_between(kl, [r[f"{pm}_ci95"][0] for r in rows],
                            [r[f"{pm}_ci95"][1] for r in rows], color=color, alpha=0.15)
        gap.plot(kl, [r["gap"] for r in rows], style, color="tab:red",
                 label=f"train - test ({method})")
        gap.fill_between(kl, [r["gap_ci95"][0] for r in rows],
                         [r["gap_ci95"][1] for r in rows], color="tab:red", alpha=0.15)
        if method == "best-of-n":
            for r in rows:
                ax.annotate(f"N={r['n']}", (r["kl"], r["train"]), fontsize=7,
                            textcoords="offset points", xytext=(2, 5))
    ax.set_ylabel("PM score (standardised on\nthe policy's replies)")
    ax.set_title("Optimising against the train PM, scored by both PMs")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8)
    gap.axhline(0, color="grey", lw=0.5)
    gap.set_ylabel("gap (paired 95% CI)")
    gap.set_xlabel("KL from the policy (nats)")
    gap.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def report_markdown(s: dict[str, Any]) -> str:
    """The curve as Markdown."""
    h, t = s["pm_heldout"], s["pm_training"]
    lines = [f"# Reward over-optimisation: {s['data']}", "",
             f"Policy `{s['policy']}`; train PM and test PM `{s['pm_base']}` trained on "
             f"{s['train_pm_pairs']} and {s['test_pm_pairs']} pairs (disjoint prompts). "
             f"{s['n_prompts']} held-out prompts, T={s['temperature']}, "
             f"{s['max_new_tokens']} new tokens at most.", "",
             f"On the {s['heldout_pairs']} held-out pairs: train PM accuracy "
             f"{h['train_pm']['accuracy']:.3f}, test PM {h['test_pm']['accuracy']:.3f}; "
             f"they prefer the same reply on {h['agreement']:.3f} of them (Spearman of the "
             f"margins {h['spearman_margin']:.3f}).", "",
             "Scores are standardised per PM on all the policy's best-of-N candidates; "
             "95% bootstrap intervals over prompts; gap = train - test.", "",
             "| method | N / step | KL (nats) | train PM | test PM | gap | train PM raw | "
             "test PM raw |", "|---|---|---|---|---|---|---|---|"]
    for r in s["curve"]:
        cells = [f"{r[k]:+.3f} ({r[f'{k}_ci95'][0]:+.2f}, {r[f'{k}_ci95'][1]:+.2f})"
                 for k in ("train", "test", "gap")]
        where = f"N={r['n']}" if r["method"] == "best-of-n" else f"step {r['step']}"
        lines.append(f"| {r['method']} | {where} | {r['kl']:.3f} | " + " | ".join(cells)
                     + f" | {r['train_raw']:.3f} | {r['test_raw']:.3f} |")
    every = s["all_stage_seconds"]
    lines += ["", f"PM training: train PM {t['train']['seconds']:.0f} s (loss "
                  f"{t['train']['train_loss']}), test PM {t['test']['seconds']:.0f} s (loss "
                  f"{t['test']['train_loss']}).",
              "", f"Stage times over all runs of this experiment (total "
                  f"{sum(every.values()):.0f} s): {every}.", "", "![curve](curve.png)"]
    return "\n".join(lines) + "\n"
