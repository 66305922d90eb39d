"""The seed paper's main experiment at small scale: does cleaning the data make a
better aligned model?

1. Split the pairs (seeded) into train and eval; the eval pairs' prompts are the
   evaluation prompts, their chosen replies the perplexity set.
2. Audit the train pairs with a committee, clean them (SAC by default).
3. DPO the same policy on the original and on the cleaned train pairs: same seed,
   settings and reference.
4. Judge the two models' replies to the eval prompts against each other in both
   orders (win rate of cleaned vs original with its interval), and, with a reward
   model, the mean reward of each one's replies.

Every stage writes into its own folder under `out` and is skipped on a rerun when
its output is there, so an interrupted experiment resumes where it stopped.
``report.md`` holds the table.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from preflab.experiment.stages import check_settings, prepare_split, run_stage
from preflab.train.policy import SUMMARY, PolicyConfig


def clean_vs_original(data: str | Path, out: str | Path = "clean-vs-original",
                      committee: str = "cpu", method: str = "sac",
                      dpo: PolicyConfig | None = None, judge: str = "smollm2-135m-instruct",
                      task: str = "harmless", reward: str | None = None,
                      eval_fraction: float = 0.2, train_limit: int | None = None,
                      eval_limit: int | None = 100, max_new_tokens: int = 96,
                      temperature: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Run the experiment; returns (and writes) the summary with its table."""
    from preflab.audit.run import audit
    from preflab.clean.run import clean
    from preflab.eval.policy import eval_policy
    from preflab.eval.winrate import winrate
    from preflab.train.dpo import train_dpo

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dpo = dpo or PolicyConfig(lora=True, seed=seed)
    settings = {"data": str(data), "committee": committee, "method": method,
                "dpo": asdict(replace(dpo, seed=seed)), "judge": judge, "task": task,
                "reward": reward, "eval_fraction": eval_fraction, "train_limit": train_limit,
                "eval_limit": eval_limit, "max_new_tokens": max_new_tokens,
                "temperature": temperature, "seed": seed}
    check_settings(out / "settings.json", settings)
    timings: dict[str, float] = {}
    train_file, eval_file = prepare_split(data, out / "split", eval_fraction, train_limit,
                                          seed)
    audited = run_stage(out / "audit" / "summary.json", "audit",
                     lambda: audit(train_file, committee, out / "audit", seed=seed), timings)
    cleaned = run_stage(out / "clean" / "summary.json", "clean",
                     lambda: clean(train_file, out / "audit", method, out=out / "clean"),
                     timings)
    models = {"original": train_file, "cleaned": Path(cleaned["output"])}
    trained = {}
    for name, path in models.items():
        folder = out / f"dpo-{name}"
        trained[name] = run_stage(folder / SUMMARY, f"dpo-{name}",
                               lambda p=path, f=folder: train_dpo(p, f, replace(dpo, seed=seed)),
                               timings)
    wr = run_stage(out / "winrate" / "summary.json", "winrate",
                lambda: winrate(str(out / "dpo-cleaned"), str(out / "dpo-original"), eval_file,
                                judge, out / "winrate", task=task, limit=eval_limit,
                                temperature=temperature, max_new_tokens=max_new_tokens,
                                seed=seed), timings)
    scores = {}
    if reward:
        for name in models:
            scores[name] = run_stage(
                out / f"eval-{name}" / "summary.json", f"eval-{name}",
                lambda n=name: eval_policy(str(out / f"dpo-{n}"), eval_file, reward,
                                           out / f"eval-{n}", temperatures=(temperature,),
                                           heldout=eval_file, limit=eval_limit,
                                           max_new_tokens=max_new_tokens, seed=seed),
                timings)
    rows = []
    for name in models:
        t = trained[name]
        row = {"model": name, "train_pairs": t["tokens"]["n_pairs"],
               "dpo_seconds": t["seconds"], "final_loss": t["train_loss"]}
        if name in scores:
            s = scores[name]
            row["reward"] = s["reward"][str(temperature)]["mean"]
            row["reward_ci95"] = s["reward"][str(temperature)]["ci95"]
            row["perplexity"] = s["perplexity"]
        rows.append(row)
    summary = {
        "data": str(data), "committee": committee, "method": method, "seed": seed,
        "judge": judge, "task": task, "reward_model": reward,
        "audit": {k: audited.get(k) for k in ("n_pairs", "agreement", "mean_votes")
                  if k in audited},
        "cleaning": {k: cleaned.get(k) for k in ("n_input", "keep", "flip", "remove",
                                                  "relabel", "n_output",
                                                  "sources_of_changed_pairs")},
        "dpo": asdict(dpo), "models": rows,
        "winrate_cleaned_vs_original": {k: wr[k] for k in (
            "n", "wins", "ties", "losses", "win_rate", "ci95", "lc_win_rate",
            "order_agreement")},
        "stage_seconds": timings, "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(report_markdown(summary))
    return summary


def report_markdown(s: dict[str, Any]) -> str:
    """The experiment's table as Markdown."""
    w = s["winrate_cleaned_vs_original"]
    lines = [f"# Clean vs original: {s['data']}", "",
             f"Committee `{s['committee']}`, cleaning `{s['method']}`: {s['cleaning']}.", "",
             "| model | train pairs | DPO s | final loss | reward | perplexity |",
             "|---|---|---|---|---|---|"]
    for r in s["models"]:
        lines.append(f"| {r['model']} | {r['train_pairs']} | {r['dpo_seconds']} | "
                     f"{r['final_loss']} | {r.get('reward', '-')} | {r.get('perplexity', '-')} |")
    lines += ["", f"Cleaned vs original, judged by `{s['judge']}` in both orders on {w['n']} "
              f"eval prompts: {w['wins']} wins, {w['ties']} ties, {w['losses']} losses; "
              f"win rate {w['win_rate']} (95% CI {w['ci95'][0]}-{w['ci95'][1]}), "
              f"length-controlled {w['lc_win_rate']}.", "",
              f"Total {s['seconds']} s; stages: {s['stage_seconds']}."]
    return "\n".join(lines) + "\n"
