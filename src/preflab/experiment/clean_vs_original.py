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

from preflab.experiment.stages import check_settings, merge_timings, prepare_split, run_stage
from preflab.train.recipe import SUMMARY, PolicyConfig


def clean_vs_original(data: str | Path, out: str | Path = "clean-vs-original",
                      committee: str = "cpu", method: str = "sac",
                      dpo: PolicyConfig | None = None, judge: str = "smollm2-135m-instruct",
                      task: str = "harmless", reward: str | None = None,
                      eval_fraction: float = 0.2, train_limit: int | None = None,
                      eval_limit: int | None = 100, max_new_tokens: int = 96,
                      temperature: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Run the experiment; returns (and writes) the summary with its table."""
    from preflab.audit.audit_pairs import audit
    from preflab.clean.clean_pairs import clean
    from preflab.committee.spec import load_committee
    from preflab.eval.policy import compare_evals, eval_policy
    from preflab.eval.winrate import winrate
    from preflab.train.dpo import train_dpo

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dpo = replace(dpo or PolicyConfig(lora=True), seed=seed)  # both runs: the same seed
    settings = {"data": str(data), "committee": committee, "method": method,
                "dpo": asdict(dpo), "judge": judge, "task": task,
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
                               lambda p=path, f=folder: train_dpo(p, f, dpo),
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
        row = {"model": name, "train_pairs": t["tokens"]["n_pairs"], "steps": t["steps"],
               "dpo_seconds": t["seconds"],
               "final_loss": late_loss(t["log"]),
               "mean_train_loss": t["train_loss"]}
        if name in scores:
            s = scores[name]
            row["reward"] = s["reward"][str(temperature)]["mean"]
            row["reward_ci95"] = s["reward"][str(temperature)]["ci95"]
            row["perplexity"] = s["perplexity"]
        rows.append(row)
    difference = (compare_evals(out / "eval-cleaned", out / "eval-original", seed)
                  [str(temperature)] if reward else None)
    judge_votes = any(m.kind == "judge" and m.options.get("model") == judge
                      for m in load_committee(committee).members)
    summary = {
        "data": str(data), "committee": committee, "method": method, "seed": seed,
        "judge": judge, "judge_in_committee": judge_votes, "task": task,
        "reward_model": reward, "temperature": temperature,
        "audit": {k: audited.get(k) for k in (
            "n_pairs", "low_or_no_agreement_fraction", "committee_agreement_with_labels",
            "fleiss_kappa")},
        "cleaning": {k: cleaned.get(k) for k in ("n_input", "keep", "flip", "remove",
                                                  "relabel", "n_output",
                                                  "sources_of_changed_pairs")},
        "dpo": asdict(dpo), "models": rows,
        "reward_cleaned_minus_original": difference,
        "winrate_cleaned_vs_original": {k: wr[k] for k in (
            "n", "wins", "ties", "losses", "win_rate", "ci95", "mean_p_a", "lc_win_rate",
            "order_agreement")},
        "stage_seconds": timings,
        "all_stage_seconds": merge_timings(out / "stage_seconds.json", timings),
        "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(report_markdown(summary))
    return summary


def late_loss(log: list[dict[str, Any]]) -> float | None:
    """Mean loss over the last tenth of the logged steps (one step's batch is noisy)."""
    if not log:
        return None
    tail = log[-max(1, len(log) // 10):]
    return round(sum(h["loss"] for h in tail) / len(tail), 6)


def report_markdown(s: dict[str, Any]) -> str:
    """The experiment's table as Markdown."""
    w = s["winrate_cleaned_vs_original"]
    lines = [f"# Clean vs original: {s['data']}", "",
             f"Audit by committee `{s['committee']}`: {s['audit']}.", "",
             f"Cleaning `{s['method']}`: {s['cleaning']}.", "",
             f"| model | train pairs | steps | DPO s | loss, last 10% of steps (all) | "
             f"reward at "
             f"T={s['temperature']} (95% CI) | perplexity |",
             "|---|---|---|---|---|---|---|"]
    for r in s["models"]:
        ci = r.get("reward_ci95")
        reward = f"{r['reward']} ({ci[0]}, {ci[1]})" if ci else "-"
        lines.append(f"| {r['model']} | {r['train_pairs']} | {r['steps']} | "
                     f"{r['dpo_seconds']} | {r['final_loss']} ({r['mean_train_loss']}) | "
                     f"{reward} | {r.get('perplexity', '-')} |")
    d = s["reward_cleaned_minus_original"]
    if d:
        lines += ["", f"Reward model `{s['reward_model']}`: cleaned minus original "
                  f"{d['mean_diff']:+} (paired 95% CI {d['ci95'][0]:+}, {d['ci95'][1]:+}) "
                  f"over {d['n']} prompts, cleaned higher on {d['a_higher']:.0%}."]
    lines += ["", f"Cleaned vs original, judged by `{s['judge']}` in both orders on {w['n']} "
              f"eval prompts: {w['wins']} wins, {w['ties']} ties, {w['losses']} losses "
              f"(orders agree on {w['order_agreement']:.0%}); win rate {w['win_rate']} "
              f"(95% CI {w['ci95'][0]}-{w['ci95'][1]}); the judge's mean probability "
              f"that cleaned is better {w['mean_p_a']}, length-controlled "
              f"{w['lc_win_rate']}."]
    if s["judge_in_committee"]:
        lines += ["", f"Caveat: `{s['judge']}` also voted in the committee that cleaned "
                  "the data, so its verdict leans towards the cleaned model."]
    lines += ["", f"This run {s['seconds']} s; seconds per stage, over every run of this "
              f"experiment: {s['all_stage_seconds']}."]
    return "\n".join(lines) + "\n"
