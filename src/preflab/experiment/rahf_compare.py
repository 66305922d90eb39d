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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from preflab.experiment.config import RAHF_METHODS, RAHFCompareConfig
from preflab.experiment.stages import ExperimentRun, merge_timings, start_run
from preflab.models.reward_folder import SUMMARY
from preflab.settings import resolve_config

METHODS = RAHF_METHODS


@dataclass
class Run(ExperimentRun[RAHFCompareConfig]):
    """One experiment's folder, settings, split and stage timings, and the pairs whose
    chosen replies measure perplexity."""

    ppl_file: Path = Path()


def rahf_compare(data: str | Path, reward: str | None = None,
                 out: str | Path = "rahf-compare",
                 config: RAHFCompareConfig | str | Path | None = None,
                 **settings: Any) -> dict[str, Any]:
    """Run the comparison; returns (and writes) the summary with its table. `config` is
    a :class:`RAHFCompareConfig` or a settings file; `reward` and `settings` (its
    fields) override it."""
    started = time.perf_counter()
    config = resolve_config(RAHFCompareConfig, config, **settings,
                            **({"reward": reward} if reward else {}))
    run = setup(data, Path(out), config)
    trained = train_methods(run)
    if "steering" in run.config.methods:
        trained["steering"] = run.stage(run.out / "steering" / "summary.json", "steering",
                                        lambda: extract_vector(run))
    evals = evaluate(run)
    rates = win_rates(run)
    probed = run.stage(run.out / "probe" / "summary.json", "probe", lambda: probe_sft(run))
    summary = report(run, data, trained, evals, rates, probed, time.perf_counter() - started)
    (run.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (run.out / "report.md").write_text(report_markdown(summary))
    return summary


def setup(data: str | Path, out: Path, config: RAHFCompareConfig) -> Run:
    """Resolve the settings (every method shares the policy's seed, lengths and device),
    check a rerun is the same experiment, write config.toml, split the pairs. (The
    methods are checked by :class:`RAHFCompareConfig`.)"""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.write import write_pairs

    if not config.reward:
        raise ValueError("--reward is required: a reward model scores every method")
    policy = replace(config.policy, seed=config.seed)
    rahf = replace(config.rahf, base=policy.policy, seed=config.seed,
                   max_length=policy.max_length, batch_size=policy.batch_size,
                   grad_accum=policy.grad_accum, epochs=policy.epochs,
                   step1_epochs=policy.epochs, save_steps=policy.save_steps,
                   device=policy.device, precision=policy.precision)
    config = replace(config, policy=policy, rahf=rahf)
    run = start_run(Run(out, config), data)
    run.ppl_file = out / "split" / "perplexity.jsonl"
    if not run.ppl_file.exists():
        write_pairs(list(iter_pairs(load_pairs(run.eval_file)))[:config.perplexity_pairs],
                    run.ppl_file)
    return run


def train_methods(run: Run) -> dict[str, dict[str, Any]]:
    """Every method that trains, in METHODS order: RAHF-Dual's preferred model is the
    Preferred-SFT model, and its dispreferred one is trained with the same settings."""
    from preflab.train.dpo import train_dpo
    from preflab.train.rahf import train_rahf
    from preflab.train.scit import train_hir
    from preflab.train.sft import train_sft

    c, data = run.config, run.train_file
    good = str(run.out / "preferred-sft") if "preferred-sft" in c.methods else None

    def dual(folder: Path) -> dict[str, Any]:
        bad = folder / "step1-bad"
        if not (bad / SUMMARY).exists():
            train_sft(data, bad, c.policy, side="rejected")
        return train_rahf(data, folder, replace(c.rahf, variant="dual", good_model=good,
                                                bad_model=str(bad), learning_rate=c.dual_lr))

    recipes = {
        "preferred-sft": lambda f: train_sft(data, f, c.policy),
        "hir": lambda f: train_hir(data, f, c.policy),
        "dpo": lambda f: train_dpo(data, f, c.policy),
        "rahf-scit": lambda f: train_rahf(data, f, replace(c.rahf, variant="scit")),
        "rahf-dual": dual,
    }
    return {name: run.stage(run.out / name / SUMMARY, name,
                            lambda f=run.out / name, n=name: recipes[n](f))
            for name in METHODS if name in c.methods and name in recipes}


def extract_vector(run: Run) -> dict[str, Any]:
    """The steering vector of the SFT policy (no training)."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.train.extract_steering import extract_steering

    c = run.config
    vector = run.out / "steering" / "vector.safetensors"
    pairs = list(iter_pairs(load_pairs(run.train_file)))
    v = extract_steering(c.policy.policy, pairs, c.rahf.layers,
                         max_length=c.policy.max_length, device=c.policy.device,
                         source=str(run.train_file))
    v.save(vector)
    summary = {"vector": str(vector), "coeff": c.steer_coeff, **v.meta}
    (run.out / "steering" / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def evaluate(run: Run) -> dict[str, dict[str, Any]]:
    """Each method's reward scores at every temperature and perplexity."""
    from preflab.eval.policy import eval_policy

    c, out = run.config, run.out
    vector = out / "steering" / "vector.safetensors"
    evals = {}
    for name in c.methods:
        model = c.policy.policy if name in ("sft", "steering") else str(out / name)
        evals[name] = run.stage(
            out / f"eval-{name}" / "summary.json", f"eval-{name}",
            lambda n=name, m=model: eval_policy(
                m, run.eval_file, c.reward, out / f"eval-{n}", heldout=run.ppl_file,
                temperatures=c.temperatures, limit=c.eval_limit,
                max_new_tokens=c.max_new_tokens, seed=c.seed, device=c.policy.device,
                instruction="good" if n == "hir" else None,
                steer=str(vector) if n == "steering" else None, coeff=c.steer_coeff))
    return evals


def win_rates(run: Run) -> dict[str, dict[str, Any]]:
    """Each method's replies at the first temperature judged against SFT's."""
    from preflab.eval.winrate import winrate

    c, out = run.config, run.out
    t0 = c.temperatures[0]
    base_gen = str(out / "eval-sft" / f"generations_t{t0}.jsonl")
    return {name: run.stage(
        out / f"winrate-{name}" / "summary.json", f"winrate-{name}",
        lambda n=name: winrate(str(out / f"eval-{n}" / f"generations_t{t0}.jsonl"),
                               base_gen, run.eval_file, c.judge, out / f"winrate-{n}",
                               task=c.task, limit=c.eval_limit, temperature=t0,
                               max_new_tokens=c.max_new_tokens, seed=c.seed,
                               device=c.policy.device))
        for name in c.methods if name != "sft"}


def probe_sft(run: Run) -> dict[str, Any]:
    """A linear probe on the SFT model's activations: chosen vs rejected replies."""
    from preflab.eval.config import ProbeConfig
    from preflab.eval.probe import probe

    c = run.config
    return probe(run.train_file, run.eval_file, run.out / "probe", ProbeConfig(
        model=c.policy.policy, max_length=c.policy.max_length, seed=c.seed,
        device=c.policy.device))


def method_row(run: Run, name: str, evaluated: dict[str, Any], trained: dict[str, Any],
               rate: dict[str, Any] | None) -> dict[str, Any]:
    """A method's row of the table."""
    from preflab.eval.policy import compare_evals

    row: dict[str, Any] = {"method": name, "train_seconds": _train_seconds(trained),
                           "eval_seconds": evaluated["seconds"],
                           "perplexity": evaluated["perplexity"]}
    for temp in run.config.temperatures:
        r = evaluated["reward"][str(temp)]
        row[f"reward_t{temp}"], row[f"reward_t{temp}_ci95"] = r["mean"], r["ci95"]
    if rate is not None:
        row.update({k: rate[k] for k in ("wins", "ties", "losses", "win_rate", "ci95",
                                         "lc_win_rate")})
        # same prompts and per-sample seeds as SFT: the paired difference is tighter
        row["reward_minus_sft"] = compare_evals(run.out / f"eval-{name}",
                                                run.out / "eval-sft", run.config.seed)
    return row


def report(run: Run, data: str | Path, trained: dict[str, dict[str, Any]],
           evals: dict[str, dict[str, Any]], rates: dict[str, dict[str, Any]],
           probed: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The summary: one row per method, the probe, the stage times."""
    from preflab.data.read import iter_pairs, load_pairs

    c = run.config
    rows = [method_row(run, name, evals[name], trained.get(name, {}), rates.get(name))
            for name in c.methods]
    return {
        "data": str(data), "train_pairs": sum(1 for _ in iter_pairs(load_pairs(
            run.train_file))), "eval_prompts": evals["sft"]["n_prompts"],
        "reward_model": c.reward, "judge": c.judge, "task": c.task,
        "temperatures": c.temperatures, "seed": c.seed, "policy": asdict(c.policy),
        "rahf": asdict(c.rahf), "dual_lr": c.dual_lr, "steer_coeff": c.steer_coeff,
        "rows": rows,
        "probe": {"model": probed["model"], "selected_layer": probed["selected_layer"],
                  "train_pairs": probed["pairs"]["train"]["pairs"],
                  "heldout_pairs": probed["pairs"]["heldout"]["pairs"],
                  **{k: round(v, 4) for k, v in probed["heldout"].items()}},
        "stage_seconds": run.timings, "all_stage_seconds": merge_timings(
            run.out / "stage_seconds.json", run.timings),
        "seconds": round(seconds, 1)}


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
