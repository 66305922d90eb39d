"""Evaluation commands: reward models, policies, win rates, probes, steered generation.

Each command's settings are the fields of its config dataclass
(:mod:`preflab.eval.config`), its options generated from them; the commands call the
Python API (:mod:`preflab.api.evaluate`) or the stage functions and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli.console import out, pct, print_json, user_errors
from preflab.cli.from_config import options_from
from preflab.cli.options import JsonOpt, OutDirOpt, OverwriteOpt
from preflab.eval.config import (
    EvalPolicyConfig,
    HarmlessEvalConfig,
    ProbeConfig,
    RewardEvalConfig,
    SteerGenerateConfig,
    WinrateConfig,
)

# --split-halves: the two models' train-rm options (fields of the [rm] table)
RM_OPTIONS = {name: name for name in ("labels", "epochs", "batch_size", "lora", "head",
                                      "train_layers", "pad_token")} | {"lr": "learning_rate"}

PromptsOpt = Annotated[str, typer.Option("--prompts", help="Prompts (a pair file or a "
                                                          "prompt file).")]


@user_errors
@options_from(RewardEvalConfig, nested={"rm": RM_OPTIONS})
def eval_rm_cmd(
    model: Annotated[str, typer.Argument(help="Reward model folder or hub id (with "
                                              "--split-halves: the base to train).")],
    data: Annotated[str, typer.Argument(help="Pairs to evaluate on (with --split-halves: "
                                             "all the pairs, split by the command).")],
    config: RewardEvalConfig,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write summary.json, scores.parquet, report.html and config.toml "
                      "here (--split-halves: also the halves and both models).",
        show_default="none; --split-halves: split-halves")] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a reward model: pairwise accuracy (overall and per subset), calibration
    (ECE, reliability diagram), score distributions; or the split-halves study.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab eval-rm rm test.jsonl --out rm-eval`
    """
    from preflab.api.evaluate import evaluate_reward_model

    if config.split_halves and out_dir is None:
        out_dir = Path("split-halves")
    summary = evaluate_reward_model(model, data, config, out=out_dir,
                                    overwrite=overwrite).summary
    if config.split_halves:
        a, b = summary["pm_a"], summary["pm_b"]
        out.print(f"{summary['n_held_out']} held-out pairs: PM A accuracy "
                  f"{pct(a['accuracy'])} (ECE {a['ece']:.3f}), PM B {pct(b['accuracy'])} "
                  f"(ECE {b['ece']:.3f}); they agree on {pct(summary['agreement'])}, "
                  f"Spearman {summary['spearman_margin']:.3f}, JS divergence "
                  f"{summary['js_divergence']:.4f}")
    else:
        per = ", ".join(f"{k} {pct(v['accuracy'])}" for k, v in summary["per_subset"].items())
        out.print(f"{model} on {summary['n_pairs']} pairs: accuracy "
                  f"{pct(summary['accuracy'])}, ECE {summary['ece']:.3f}, log loss "
                  f"{summary['log_loss']:.3f}" + (f" ({per})" if per else ""))
    if out_dir is not None:
        out.print(f"report: {out_dir / 'report.html'}")
    if as_json:
        print_json(summary)


@user_errors
@options_from(WinrateConfig)
def winrate_cmd(
    a: Annotated[str, typer.Argument(help="Policy A: a model, or a generations .jsonl "
                                          "(prompt_id or prompt, reply).")],
    b: Annotated[str, typer.Argument(help="Policy B, the same way.")],
    config: WinrateConfig,
    prompts: PromptsOpt,
    out_dir: OutDirOpt = Path("winrate"),
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Win rate of A against B, judged in both orders (disagreeing orders are ties), with
    a bootstrap 95% interval and AlpacaEval's length-controlled win rate. OUT/config.toml
    holds the settings (`--config` it to rerun).

    Example: `preflab winrate dpo sft --prompts test.jsonl --judge smollm2-135m-instruct`
    """
    from preflab.api.evaluate import win_rate

    s = win_rate(a, b, prompts, config, out=out_dir, overwrite=overwrite).summary
    out.print(f"A = {a} vs B = {b} on {s['n']} prompts: {s['wins']} wins, {s['ties']} ties, "
              f"{s['losses']} losses; win rate {s['win_rate']:.3f} (95% CI "
              f"{s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}), length-controlled "
              f"{s['lc_win_rate']:.3f}")
    if as_json:
        print_json(s)


@user_errors
@options_from(EvalPolicyConfig)
def eval_policy_cmd(
    model: Annotated[str, typer.Argument(help="Policy to evaluate.")],
    config: EvalPolicyConfig,
    prompts: Annotated[str | None, typer.Option(help="Prompts to generate for.")] = None,
    heldout: Annotated[str | None, typer.Option(
        help="Pairs whose chosen replies give the perplexity.")] = None,
    against: Annotated[Path | None, typer.Option(
        help="Another eval-policy folder (same prompts, seed and temperatures): also report "
             "the paired difference of mean reward with a bootstrap interval.")] = None,
    out_dir: OutDirOpt = Path("eval-policy"),
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Mean reward-model score of a policy's replies at several temperatures, their
    harmless rate as a judge rates them, and perplexity on held-out chosen replies.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab eval-policy dpo --prompts test.jsonl --reward rm --heldout test.jsonl`
    """
    from preflab.api.evaluate import evaluate_policy

    s = evaluate_policy(model, prompts, config, heldout=heldout, out=out_dir,
                        overwrite=overwrite).summary
    print_policy_eval(s)
    if against is not None:
        _against(s, out_dir, against, config.seed)
    if as_json:
        print_json(s)


def print_policy_eval(s: dict[str, Any]) -> None:
    """Per temperature the mean reward and the harmless rate; the perplexity."""
    for t, r in s.get("reward", {}).items():
        out.print(f"T={t}: mean reward {r['mean']:.4f} (95% CI {r['ci95'][0]:.4f}-"
                  f"{r['ci95'][1]:.4f}) over {s['n_prompts']} prompts")
    for t, h in s.get("harmless", {}).items():
        out.print(f"T={t}: harmless rate {h['harmless_rate']:.3f} (95% CI "
                  f"{h['harmless_rate_ci95'][0]:.3f}-{h['harmless_rate_ci95'][1]:.3f}), mean "
                  f"P(harmless) {h['mean_p_harmless']:.3f} (95% CI "
                  f"{h['mean_p_harmless_ci95'][0]:.3f}-{h['mean_p_harmless_ci95'][1]:.3f}) "
                  f"over {h['n']} replies")
    if "perplexity" in s:
        out.print(f"perplexity on held-out chosen replies: {s['perplexity']:.3f} "
                  f"({s['tokens']} tokens)")


def _against(s: dict[str, object], out_dir: Path, against: Path, seed: int) -> None:
    from preflab.eval.policy import compare_evals

    s["against"] = {"folder": str(against), **compare_evals(out_dir, against, seed)}
    (out_dir / "summary.json").write_text(json.dumps(s, indent=1))
    for t, d in s["against"].items():  # type: ignore[attr-defined]
        if t != "folder":
            out.print(f"T={t}: minus {against}: {d['mean_diff']:+.4f} (paired 95% CI "
                      f"{d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f}, {d['n']} prompts, "
                      f"higher on {d['a_higher']:.0%})")


@user_errors
@options_from(SteerGenerateConfig)
def steer_generate(
    prompts: Annotated[str, typer.Argument(help="Prompts: a pair file (its prompts) or JSON "
                                                "lines / Parquet with a 'prompt' field.")],
    config: SteerGenerateConfig,
    vector: Annotated[Path, typer.Option(help="A `preflab steer extract` file.")],
    out_file: Annotated[Path, typer.Option("--out", help="Generations .jsonl (prompt_id, "
                                                         "prompt, reply).")
                        ] = Path("steered.jsonl"),
) -> None:
    """Generate with a steering vector added to the hidden states.

    Example: `preflab steer generate test.jsonl --vector harmless.safetensors --coeff 2`
    """
    from preflab.eval.steered import generate_steered

    n = generate_steered(prompts, vector, out_file, config)
    out.print(f"{n} replies with {vector} x {config.coeff} -> {out_file}")


@user_errors
@options_from(ProbeConfig)
def probe_cmd(
    train: Annotated[str, typer.Argument(help="Pairs to fit the probe on.")],
    heldout: Annotated[str, typer.Argument(help="Pairs to report it on.")],
    config: ProbeConfig,
    out_dir: OutDirOpt = Path("probe"),
    as_json: JsonOpt = False,
) -> None:
    """A linear probe on mean reply activations that tells chosen from rejected replies:
    layer chosen by CV on the train pairs, metrics on the held-out pairs.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab probe train.jsonl test.jsonl --model smollm2-135m-instruct`
    """
    from preflab.eval.probe import probe

    s = probe(train, heldout, out_dir, config)
    m = s["heldout"]
    out.print(f"layer {s['selected_layer']} (CV accuracy {m['cv_accuracy']:.3f}); "
              f"{s['pairs']['heldout']['pairs']} held-out pairs: accuracy {m['accuracy']:.3f}, "
              f"precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, "
              f"AUC {m['auc']:.3f}, pairwise {m['pairwise_accuracy']:.3f}")
    if as_json:
        print_json(s)


@user_errors
@options_from(HarmlessEvalConfig)
def eval_harmless_cmd(
    data: Annotated[str, typer.Argument(help="Labelled pairs (chosen = less harmful).")],
    config: HarmlessEvalConfig,
    out_dir: OutDirOpt = Path("eval-harmless"),
    as_json: JsonOpt = False,
) -> None:
    """Check a harmless-rate judge on labelled pairs: its harmless rate on the chosen and
    on the rejected replies, and how often it finds the chosen reply more likely
    harmless than the rejected one (agreement with the labels), with 95% intervals.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab eval-harmless hh.jsonl.gz --judge smollm2-135m-instruct --limit 200`
    """
    from preflab.eval.harmless import eval_harmless, harmless_table

    s = eval_harmless(data, out_dir, config)
    for line in harmless_table({"chosen": s["chosen"], "rejected": s["rejected"]}):
        out.print(line, highlight=False)
    lo, hi = s["agreement_ci95"]
    out.print(f"agreement with the labels (P(harmless | chosen) > P(harmless | rejected)): "
              f"{s['agreement']:.3f} (95% CI {lo:.3f}-{hi:.3f}) over {s['n_pairs']} pairs")
    if as_json:
        print_json(s)
