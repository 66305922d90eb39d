"""RAHF against its baselines, the paper's comparison at small scale.

1. Split the pairs (seeded) into train and eval.
2. From the same policy ("SFT", the starting model, untrained here) and the same
   settings: Preferred-SFT (SFT on the chosen replies), HIR, DPO, RAHF-SCIT,
   RAHF-Dual (its preferred model is the Preferred-SFT model) and a steering vector
   (no training).
3. Each model's replies to the eval prompts at each temperature are scored by a
   reward model; at the first temperature they are judged against the SFT model's
   replies in both orders (win rate with its interval).
4. A linear probe on the SFT model's activations tells chosen from rejected replies
   on the eval pairs.

Every stage writes into its own folder under `out` and is skipped on a rerun, so an
interrupted experiment resumes. ``report.md`` holds the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from preflab.experiment.stages import check_settings, merge_timings, prepare_split, run_stage
from preflab.train.rahf import RAHFConfig
from preflab.train.recipe import SUMMARY, PolicyConfig

METHODS = ("sft", "preferred-sft", "hir", "dpo", "rahf-scit", "rahf-dual", "steering")


def rahf_compare(data: str | Path, reward: str, out: str | Path = "rahf-compare",
                 policy: PolicyConfig | None = None, rahf: RAHFConfig | None = None,
                 dual_lr: float | None = None, steer_coeff: float = 1.0,
                 judge: str = "smollm2-135m-instruct", task: str = "harmless",
                 eval_fraction: float = 0.2, train_limit: int | None = None,
                 eval_limit: int | None = 100, perplexity_pairs: int = 100,
                 temperatures: Sequence[float] = (0.7, 1.0), max_new_tokens: int = 96,
                 methods: Sequence[str] = METHODS, seed: int = 0) -> dict[str, Any]:
    """Run the comparison; returns (and writes) the summary with its table."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.write import write_pairs
    from preflab.eval.policy import compare_evals, eval_policy
    from preflab.eval.probe import probe
    from preflab.eval.winrate import winrate
    from preflab.train.dpo import train_dpo
    from preflab.train.extract_steering import extract_steering
    from preflab.train.rahf import train_rahf
    from preflab.train.scit import train_hir
    from preflab.train.sft import train_sft

    unknown = sorted(set(methods) - set(METHODS))
    if unknown or "sft" not in methods:
        raise ValueError(f"methods must include 'sft' and come from {', '.join(METHODS)}; "
                         f"unknown: {unknown}")
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    policy = replace(policy or PolicyConfig(lora=True), seed=seed)
    rahf = replace(rahf or RAHFConfig(), base=policy.policy, seed=seed,
                   max_length=policy.max_length, batch_size=policy.batch_size,
                   grad_accum=policy.grad_accum, epochs=policy.epochs,
                   step1_epochs=policy.epochs, save_steps=policy.save_steps,
                   device=policy.device,
                   precision=policy.precision)
    temperatures = [float(t) for t in temperatures]
    settings = {"data": str(data), "reward": reward, "policy": asdict(policy),
                "rahf": asdict(rahf), "dual_lr": dual_lr, "steer_coeff": steer_coeff,
                "judge": judge, "task": task, "eval_fraction": eval_fraction,
                "train_limit": train_limit, "eval_limit": eval_limit,
                "perplexity_pairs": perplexity_pairs, "temperatures": temperatures,
                "max_new_tokens": max_new_tokens, "methods": list(methods), "seed": seed}
    check_settings(out / "settings.json", settings)
    timings: dict[str, float] = {}
    train_file, eval_file = prepare_split(data, out / "split", eval_fraction, train_limit,
                                          seed)
    ppl_file = out / "split" / "perplexity.jsonl"
    if not ppl_file.exists():
        write_pairs(list(iter_pairs(load_pairs(eval_file)))[:perplexity_pairs], ppl_file)

    # 2. training, in METHODS order: RAHF-Dual's preferred model is the Preferred-SFT
    # model, and its dispreferred one is trained with the same settings
    good = str(out / "preferred-sft") if "preferred-sft" in methods else None

    def dual(folder: Path) -> dict[str, Any]:
        bad = folder / "step1-bad"
        if not (bad / SUMMARY).exists():
            train_sft(train_file, bad, policy, side="rejected")
        return train_rahf(train_file, folder, replace(rahf, variant="dual", good_model=good,
                                                      bad_model=str(bad),
                                                      learning_rate=dual_lr))

    recipes = {
        "preferred-sft": lambda f: train_sft(train_file, f, policy),
        "hir": lambda f: train_hir(train_file, f, policy),
        "dpo": lambda f: train_dpo(train_file, f, policy),
        "rahf-scit": lambda f: train_rahf(train_file, f, replace(rahf, variant="scit")),
        "rahf-dual": dual,
    }
    trained: dict[str, dict[str, Any]] = {}
    for name in METHODS:
        if name in methods and name in recipes:
            folder = out / name
            trained[name] = run_stage(folder / SUMMARY, name,
                                      lambda f=folder, n=name: recipes[n](f), timings)
    vector = out / "steering" / "vector.safetensors"
    if "steering" in methods:
        def steer() -> dict[str, Any]:
            pairs = list(iter_pairs(load_pairs(train_file)))
            v = extract_steering(policy.policy, pairs, rahf.layers,
                                 max_length=policy.max_length, device=policy.device,
                                 source=str(train_file))
            v.save(vector)
            summary = {"vector": str(vector), "coeff": steer_coeff, **v.meta}
            (out / "steering" / "summary.json").write_text(json.dumps(summary, indent=1))
            return summary
        trained["steering"] = run_stage(out / "steering" / "summary.json", "steering",
                                        steer, timings)

    # 3. evaluation
    evals, rates = {}, {}
    for name in methods:
        model = policy.policy if name in ("sft", "steering") else str(out / name)
        evals[name] = run_stage(
            out / f"eval-{name}" / "summary.json", f"eval-{name}",
            lambda n=name, m=model: eval_policy(
                m, eval_file, reward, out / f"eval-{n}", temperatures, heldout=ppl_file,
                limit=eval_limit, max_new_tokens=max_new_tokens, seed=seed,
                device=policy.device, instruction="good" if n == "hir" else None,
                steer=vector if n == "steering" else None, coeff=steer_coeff), timings)
    t0 = temperatures[0]
    base_gen = str(out / "eval-sft" / f"generations_t{t0}.jsonl")
    for name in methods:
        if name == "sft":
            continue
        rates[name] = run_stage(
            out / f"winrate-{name}" / "summary.json", f"winrate-{name}",
            lambda n=name: winrate(str(out / f"eval-{n}" / f"generations_t{t0}.jsonl"),
                                   base_gen, eval_file, judge, out / f"winrate-{n}",
                                   task=task, limit=eval_limit, temperature=t0,
                                   max_new_tokens=max_new_tokens, seed=seed,
                                   device=policy.device), timings)

    # 4. the probe
    probed = run_stage(out / "probe" / "summary.json", "probe",
                       lambda: probe(policy.policy, train_file, eval_file, out / "probe",
                                     max_length=policy.max_length, seed=seed,
                                     device=policy.device), timings)

    rows = []
    for name in methods:
        e, t, w = evals[name], trained.get(name, {}), rates.get(name)
        row: dict[str, Any] = {"method": name, "train_seconds": _train_seconds(t),
                               "eval_seconds": e["seconds"], "perplexity": e["perplexity"]}
        for temp in temperatures:
            r = e["reward"][str(temp)]
            row[f"reward_t{temp}"], row[f"reward_t{temp}_ci95"] = r["mean"], r["ci95"]
        if w is not None:
            row.update({k: w[k] for k in ("wins", "ties", "losses", "win_rate", "ci95",
                                          "lc_win_rate")})
            # same prompts and per-sample seeds as SFT: the paired difference is tighter
            row["reward_minus_sft"] = compare_evals(out / f"eval-{name}", out / "eval-sft",
                                                    seed)
        rows.append(row)
    summary = {"data": str(data), "train_pairs": sum(1 for _ in iter_pairs(load_pairs(
        train_file))), "eval_prompts": evals["sft"]["n_prompts"], "reward_model": reward,
        "judge": judge, "task": task, "temperatures": temperatures, "seed": seed,
        "policy": asdict(policy), "rahf": asdict(rahf), "dual_lr": dual_lr,
        "steer_coeff": steer_coeff, "rows": rows,
        "probe": {"model": probed["model"], "selected_layer": probed["selected_layer"],
                  "train_pairs": probed["pairs"]["train"]["pairs"],
                  "heldout_pairs": probed["pairs"]["heldout"]["pairs"],
                  **{k: round(v, 4) for k, v in probed["heldout"].items()}},
        "stage_seconds": timings, "all_stage_seconds": merge_timings(
            out / "stage_seconds.json", timings),
        "seconds": round(time.perf_counter() - started, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(report_markdown(summary))
    return summary


def _train_seconds(summary: dict[str, Any]) -> float | None:
    """Training time of a method, its step-1 models included (RAHF-Dual's preferred
    model is the Preferred-SFT one: its time is in both rows)."""
    if "seconds" not in summary or "stage" not in summary:
        return None
    total = float(summary["seconds"])
    for folder in summary.get("step1_models", []):
        path = Path(folder) / SUMMARY
        if path.exists():
            total += float(json.loads(path.read_text())["seconds"])
    return round(total, 1)


def report_markdown(s: dict[str, Any]) -> str:
    """The comparison as Markdown."""
    temps = s["temperatures"]
    head = "| method | " + " | ".join(f"reward T={t} (95% CI)" for t in temps) + " | " + \
        " | ".join(f"minus SFT, T={t} (paired CI)" for t in temps) + \
        f" | win rate vs SFT, T={temps[0]} (95% CI) | W/T/L | LC win rate | perplexity | " \
        "train s (with step 1) |"
    lines = [f"# RAHF and baselines: {s['data']}", "",
             f"{s['train_pairs']} training pairs, {s['eval_prompts']} eval prompts; reward "
             f"model `{s['reward_model']}`, judge `{s['judge']}` ({s['task']}), policy "
             f"`{s['policy']['policy']}`.", "", head,
             "|" + "---|" * (2 * len(temps) + 6)]
    for r in s["rows"]:
        cells = [f"{r[f'reward_t{t}']:.3f} ({r[f'reward_t{t}_ci95'][0]:.2f}, "
                 f"{r[f'reward_t{t}_ci95'][1]:.2f})" for t in temps]
        if "win_rate" in r:
            d = r["reward_minus_sft"]
            cells += [f"{d[str(t)]['mean_diff']:+.3f} ({d[str(t)]['ci95'][0]:+.2f}, "
                      f"{d[str(t)]['ci95'][1]:+.2f})" for t in temps]
            cells += [f"{r['win_rate']:.3f} ({r['ci95'][0]:.2f}, {r['ci95'][1]:.2f})",
                      f"{r['wins']}/{r['ties']}/{r['losses']}", f"{r['lc_win_rate']:.3f}"]
        else:
            cells += ["-"] * len(temps) + ["(reference)", "-", "-"]
        cells += [f"{r['perplexity']:.2f}", str(r["train_seconds"] or "-")]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    p = s["probe"]
    lines += ["", f"Linear probe on `{p['model']}` activations (layer "
                  f"{p['selected_layer']}, chosen by CV on {p['train_pairs']} training pairs), "
                  f"{p['heldout_pairs']} held-out pairs: accuracy {p['accuracy']:.3f}, "
                  f"precision {p['precision']:.3f}, recall {p['recall']:.3f}, F1 "
              f"{p['f1']:.3f}, AUC {p['auc']:.3f}, pairwise {p['pairwise_accuracy']:.3f}."]
    every = s["all_stage_seconds"]
    lines += ["", f"Stage times over all runs of this experiment (total "
              f"{sum(every.values()):.0f} s): {every}."]
    return "\n".join(lines) + "\n"
