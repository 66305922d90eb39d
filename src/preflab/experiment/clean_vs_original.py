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

from preflab.experiment.config import CleanVsOriginalConfig
from preflab.experiment.stages import ExperimentRun, merge_timings, start_run
from preflab.models.reward_folder import SUMMARY
from preflab.settings import resolve_config

MODELS = ("original", "cleaned")

Run = ExperimentRun[CleanVsOriginalConfig]


def clean_vs_original(data: str | Path, out: str | Path = "clean-vs-original",
                      config: CleanVsOriginalConfig | str | Path | None = None,
                      **settings: Any) -> dict[str, Any]:
    """Run the experiment; returns (and writes) the summary with its table. `config` is
    a :class:`CleanVsOriginalConfig` or a settings file; `settings` (its fields)
    override it."""
    started = time.perf_counter()
    run = setup(data, Path(out), resolve_config(CleanVsOriginalConfig, config, **settings))
    audited, cleaned = audit_and_clean(run)
    files = {"original": run.train_file, "cleaned": Path(cleaned["output"])}
    trained = {name: train(run, name, path) for name, path in files.items()}
    wr, scores = evaluate(run)
    summary = report(run, data, audited, cleaned, trained, wr, scores,
                     time.perf_counter() - started)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (run.out / "report.md").write_text(report_markdown(summary))
    return summary


def setup(data: str | Path, out: Path, config: CleanVsOriginalConfig) -> Run:
    """Check a rerun is the same experiment, write config.toml, split the pairs."""
    config = replace(config, dpo=replace(config.dpo, seed=config.seed))  # both: one seed
    return start_run(Run(out, config), data)


def audit_and_clean(run: Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """Audit the train pairs with the committee, then clean them."""
    from preflab.audit.audit_pairs import audit
    from preflab.clean.clean_pairs import clean

    c, out = run.config, run.out
    audited = run.stage(out / "audit" / "summary.json", "audit",
                        lambda: audit(run.train_file, out=out / "audit",
                                      committee=c.committee, seed=c.seed))
    cleaned = run.stage(out / "clean" / "summary.json", "clean",
                        lambda: clean(run.train_file, out / "audit", method=c.method,
                                      out=out / "clean"))
    return audited, cleaned


def train(run: Run, name: str, pairs: Path) -> dict[str, Any]:
    """DPO of the policy on `pairs` into ``dpo-NAME``."""
    from preflab.train.dpo import train_dpo

    folder = run.out / f"dpo-{name}"
    return run.stage(folder / SUMMARY, f"dpo-{name}",
                     lambda: train_dpo(pairs, folder, run.config.dpo))


def evaluate(run: Run) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Cleaned vs original judged in both orders; with a reward model, each one's mean
    reward and perplexity on the eval pairs."""
    from preflab.eval.policy import eval_policy
    from preflab.eval.winrate import winrate

    c, out = run.config, run.out
    common = {"limit": c.eval_limit, "max_new_tokens": c.max_new_tokens, "seed": c.seed,
              "device": c.dpo.device, "threads": c.dpo.threads}
    wr = run.stage(out / "winrate" / "summary.json", "winrate",
                   lambda: winrate(str(out / "dpo-cleaned"), str(out / "dpo-original"),
                                   run.eval_file, c.judge, out / "winrate", task=c.task,
                                   temperature=c.temperature, **common))
    scores = {}
    for name in MODELS if c.reward else ():
        scores[name] = run.stage(
            out / f"eval-{name}" / "summary.json", f"eval-{name}",
            lambda n=name: eval_policy(str(out / f"dpo-{n}"), run.eval_file, c.reward,
                                       out / f"eval-{n}", temperatures=[c.temperature],
                                       heldout=run.eval_file, **common))
    return wr, scores


def model_rows(trained: dict[str, dict[str, Any]], scores: dict[str, dict[str, Any]],
               temperature: float) -> list[dict[str, Any]]:
    """One row per model: its DPO run and, when scored, its reward and perplexity."""
    rows = []
    for name, t in trained.items():
        row = {"model": name, "train_pairs": t["tokens"]["n_pairs"], "steps": t["steps"],
               "dpo_seconds": t["seconds"], "final_loss": late_loss(t["log"]),
               "mean_train_loss": t["train_loss"]}
        if name in scores:
            s = scores[name]["reward"][str(temperature)]
            row.update(reward=s["mean"], reward_ci95=s["ci95"],
                       perplexity=scores[name]["perplexity"])
        rows.append(row)
    return rows


def report(run: Run, data: str | Path, audited: dict[str, Any], cleaned: dict[str, Any],
           trained: dict[str, dict[str, Any]], wr: dict[str, Any],
           scores: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The summary: what the audit and the cleaning did, the two models, the verdicts."""
    from preflab.committee.spec import load_committee
    from preflab.eval.policy import compare_evals

    c, out = run.config, run.out
    difference = (compare_evals(out / "eval-cleaned", out / "eval-original", c.seed)
                  [str(c.temperature)] if c.reward else None)
    judge_votes = any(m.kind == "judge" and m.options.get("model") == c.judge
                      for m in load_committee(c.committee).members)
    return {
        "data": str(data), "committee": c.committee, "method": c.method, "seed": c.seed,
        "judge": c.judge, "judge_in_committee": judge_votes, "task": c.task,
        "reward_model": c.reward, "temperature": c.temperature,
        "audit": {k: audited.get(k) for k in (
            "n_pairs", "low_or_no_agreement_fraction", "committee_agreement_with_labels",
            "fleiss_kappa")},
        "cleaning": {k: cleaned.get(k) for k in ("n_input", "keep", "flip", "remove",
                                                  "relabel", "n_output",
                                                  "sources_of_changed_pairs")},
        "dpo": asdict(c.dpo), "models": model_rows(trained, scores, c.temperature),
        "reward_cleaned_minus_original": difference,
        "winrate_cleaned_vs_original": {k: wr[k] for k in (
            "n", "wins", "ties", "losses", "win_rate", "ci95", "mean_p_a", "lc_win_rate",
            "order_agreement")},
        "stage_seconds": run.timings,
        "all_stage_seconds": merge_timings(out / "stage_seconds.json", run.timings),
        "seconds": round(seconds, 1)}


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
