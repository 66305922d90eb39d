"""Evaluation commands: reward models, policies, win rates, probes, steered generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from preflab.cli.console import (
    out,
    pct,
    print_json,
    user_errors,
)
from preflab.cli.from_config import (
    ConfigOpt,
    rm_config,
    stage_config,
)
from preflab.cli.options import (
    DeviceOpt,
    JsonOpt,
    OutDirOpt,
    PJson,
    PLimit,
    PMaxNew,
    PPrompts,
    PromptLimitOpt,
    ReplyBatchOpt,
    Rm,
    SeedOpt,
    TemperatureOpt,
    ThreadsOpt,
    floats,
    ints,
)
from preflab.eval.config import EvalPolicyConfig, WinrateConfig

WR = WinrateConfig()
EP = EvalPolicyConfig()


@user_errors
def eval_rm_cmd(
    model: Annotated[str, typer.Argument(help="Reward model folder or hub id (with "
                                              "--split-halves: the base to train).")],
    data: Annotated[str, typer.Argument(help="Pairs to evaluate on (with --split-halves: "
                                             "all the pairs, split by the command).")],
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write summary.json, scores.parquet and report.html here.")] = None,
    bins: Annotated[int, typer.Option(help="Calibration bins.")] = 10,
    split_halves: Annotated[bool, typer.Option(
        "--split-halves", help="Train two models on disjoint halves of DATA and compare "
                               "them on held-out pairs (agreement, rank correlation, "
                               "divergence).")] = False,
    test_fraction: Annotated[float, typer.Option(
        help="--split-halves: share of DATA held out for the comparison.")] = 0.2,
    config_file: Rm.Config = None, labels: Rm.Labels = None, max_length: Rm.MaxLength = None,
    epochs: Rm.Epochs = None, lr: Rm.Lr = None, batch_size: Rm.Batch = None,
    lora: Rm.Lora = None, head: Rm.Head = None, train_layers: Rm.TrainLayers = None,
    pad_token: Rm.Pad = None, seed: Rm.Seed = None, device: Rm.Device = None,
    threads: Rm.Threads = None, as_json: JsonOpt = False,
) -> None:
    """Evaluate a reward model: pairwise accuracy (overall and per subset), calibration
    (ECE, reliability diagram), score distributions; or the split-halves study.

    Example: `preflab eval-rm rm test.jsonl --out rm-eval`
    """
    from preflab.eval.reward_model import eval_rm
    from preflab.experiment.split_halves import split_halves as split_halves_fn

    if split_halves:
        config = rm_config(config_file, base=model, labels=labels, max_length=max_length,
                            epochs=epochs, learning_rate=lr, batch_size=batch_size, lora=lora,
                            head=head,
                            train_layers=train_layers, pad_token=pad_token, seed=seed,
                            device=device, threads=threads)
        summary = split_halves_fn(data, out_dir or Path("split-halves"), config,
                                  test_fraction=test_fraction, seed=config.seed, bins=bins)
        out.print(f"{summary['n_held_out']} held-out pairs: PM A accuracy "
                  f"{pct(summary['pm_a']['accuracy'])} (ECE {summary['pm_a']['ece']:.3f}), "
                  f"PM B {pct(summary['pm_b']['accuracy'])} (ECE "
                  f"{summary['pm_b']['ece']:.3f}); they agree on "
                  f"{pct(summary['agreement'])}, Spearman {summary['spearman_margin']:.3f}, "
                  f"JS divergence {summary['js_divergence']:.4f}")
    else:
        summary = eval_rm(model, data, out=out_dir, max_length=max_length, bins=bins,
                          device=device or "auto", threads=threads)
        per = ", ".join(f"{k} {pct(v['accuracy'])}" for k, v in summary["per_subset"].items())
        out.print(f"{model} on {summary['n_pairs']} pairs: accuracy "
                  f"{pct(summary['accuracy'])}, ECE {summary['ece']:.3f}, log loss "
                  f"{summary['log_loss']:.3f}" + (f" ({per})" if per else ""))
    if out_dir is not None:
        out.print(f"report: {out_dir / 'report.html'}")
    if as_json:
        print_json(summary)


PolicyArg = Annotated[str, typer.Argument(help="Policy A: a model, or a generations .jsonl "
                                                "(prompt_id or prompt, reply).")]
Judge = Annotated[str, typer.Option(help="Judge: a causal LM or an OpenAI-compatible URL.")]
Task = Annotated[str, typer.Option(help="helpful, harmless or summary.")]
Preamble = Annotated[str, typer.Option(help="base or detailed.")]
MaxContext = Annotated[int | None, typer.Option(
    help="The judge's tokens of conversation before the replies (oldest cut first).")]


@user_errors
def winrate_cmd(
    ctx: typer.Context, a: PolicyArg,
    b: Annotated[str, typer.Argument(help="Policy B, the same way.")],
    prompts: Annotated[str, typer.Option(help="Prompts (a pair file or a prompt file).")],
    config_file: ConfigOpt = None, judge: Judge = WR.judge, task: Task = WR.task,
    preamble: Preamble = WR.preamble, temperature: TemperatureOpt = WR.temperature,
    max_new_tokens: PMaxNew = WR.max_new_tokens, limit: PromptLimitOpt = None,
    max_context_tokens: MaxContext = WR.max_context_tokens,
    batch_size: ReplyBatchOpt = WR.batch_size, out_dir: OutDirOpt = Path("winrate"),
    seed: SeedOpt = WR.seed, device: DeviceOpt = WR.device, threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Win rate of A against B, judged in both orders (disagreeing orders are ties), with
    a bootstrap 95% interval and AlpacaEval's length-controlled win rate. OUT/config.toml
    holds the settings (`--config` it to rerun).

    Example: `preflab winrate dpo sft --prompts test.jsonl --judge smollm2-135m-instruct`
    """
    from preflab.eval.winrate import winrate

    config = stage_config(WinrateConfig, ctx, config_file)
    s = winrate(a, b, prompts, out=out_dir, config=config)
    out.print(f"A = {a} vs B = {b} on {s['n']} prompts: {s['wins']} wins, {s['ties']} ties, "
              f"{s['losses']} losses; win rate {s['win_rate']:.3f} (95% CI "
              f"{s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}), length-controlled "
              f"{s['lc_win_rate']:.3f}")
    if as_json:
        print_json(s)


Temperatures = Annotated[str, typer.Option(help="Comma-separated sampling temperatures.")]
Instruction = Annotated[str | None, typer.Option(
    help="good, bad or a text written before each prompt's last user turn (HIR).")]
Steer = Annotated[str | None, typer.Option(help="A steering vector file to apply.")]
Coeff = Annotated[float, typer.Option(help="The steering vector's coefficient.")]
Against = Annotated[Path | None, typer.Option(
    help="Another eval-policy folder (same prompts, seed and temperatures): also report "
         "the paired difference of mean reward with a bootstrap interval.")]


@user_errors
def eval_policy_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Policy to evaluate.")],
    prompts: Annotated[str | None, typer.Option(help="Prompts to generate for.")] = None,
    heldout: Annotated[str | None, typer.Option(
        help="Pairs whose chosen replies give the perplexity.")] = None,
    config_file: ConfigOpt = None,
    reward: Annotated[str | None, typer.Option(help="Reward model scoring the replies.")
                      ] = None,
    temperatures: Temperatures = ",".join(map(str, EP.temperatures)),
    max_new_tokens: PMaxNew = EP.max_new_tokens, limit: PromptLimitOpt = None,
    instruction: Instruction = None, steer: Steer = None, coeff: Coeff = EP.coeff,
    harmless_judge: Annotated[str | None, typer.Option(
        help="Judge of the harmless rate (a model or an OpenAI-compatible URL).")] = None,
    against: Against = None, batch_size: ReplyBatchOpt = EP.batch_size,
    out_dir: OutDirOpt = Path("eval-policy"),
    seed: SeedOpt = EP.seed, device: DeviceOpt = EP.device, threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mean reward-model score of a policy's replies at several temperatures, their
    harmless rate as a judge rates them, and perplexity on held-out chosen replies.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab eval-policy dpo --prompts test.jsonl --reward rm --heldout test.jsonl`
    """
    from preflab.eval.policy import eval_policy

    config = stage_config(EvalPolicyConfig, ctx, config_file,
                          temperatures=lambda t: floats(t, "--temperatures"))
    s = eval_policy(model, prompts, out=out_dir, config=config, heldout=heldout)
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
    if against is not None:
        _against(s, out_dir, against, config.seed)
    if as_json:
        print_json(s)


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
def steer_generate(
    prompts: PPrompts,
    vector: Annotated[Path, typer.Option(help="A `preflab steer extract` file.")],
    model: Annotated[str, typer.Option(help="The model the vector was extracted from.")
                     ] = "smollm2-135m-instruct",
    coeff: Annotated[float, typer.Option(help="Coefficient (1 = one typical good-minus-bad "
                                              "difference; negative steers away).")] = 1.0,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_new_tokens: PMaxNew = 128,
    limit: PLimit = None,
    out_file: Annotated[Path, typer.Option("--out", help="Generations .jsonl (prompt_id, "
                                                         "prompt, reply).")
                        ] = Path("steered.jsonl"),
    seed: Annotated[int, typer.Option(help="Seed of every sample.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Generate with a steering vector added to the hidden states.

    Example: `preflab steer generate test.jsonl --vector harmless.safetensors --coeff 2`
    """
    from preflab.data.prompts import load_prompts
    from preflab.eval.winrate import write_generations
    from preflab.models.generate import Sampling
    from preflab.models.runtime import Runtime
    from preflab.models.steering import SteeringVector

    items = load_prompts(prompts, limit)
    from preflab.models.sampler import Policy

    policy = Policy(model, Runtime(device=device), steering=SteeringVector.load(vector),
                    coeff=coeff)
    replies = [r[0] for r in policy.generate([p.messages for p in items],
                                             [p.id for p in items], 1,
                                             Sampling(max_new_tokens, temperature), seed)]
    write_generations(items, replies, out_file)
    out.print(f"{len(items)} replies with {vector} x {coeff} -> {out_file}")


@user_errors
def probe_cmd(
    train: Annotated[str, typer.Argument(help="Pairs to fit the probe on.")],
    heldout: Annotated[str, typer.Argument(help="Pairs to report it on.")],
    model: Annotated[str, typer.Option(help="Model whose activations are probed.")
                     ] = "smollm2-135m-instruct",
    layers: Annotated[str | None, typer.Option("--layers", help="Layers to try. [default: "
                                                                "all]")] = None,
    train_sample: Annotated[int | None, typer.Option(
        help="Fit on a seeded random sample of N train pairs. [default: all]")] = None,
    heldout_sample: Annotated[int | None, typer.Option(
        help="Report on a seeded random sample of N held-out pairs. [default: all]")] = None,
    out_dir: OutDirOpt = Path("probe"),
    max_length: Annotated[int, typer.Option(help="Tokens per prompt+reply.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: PJson = False,
) -> None:
    """A linear probe on mean reply activations that tells chosen from rejected replies:
    layer chosen by CV on the train pairs, metrics on the held-out pairs.

    Example: `preflab probe train.jsonl test.jsonl --model smollm2-135m-instruct`
    """
    from preflab.eval.probe import probe

    s = probe(model, train, heldout, out_dir, ints(layers, "--layers"), train_sample,
              heldout_sample, max_length, seed=seed, device=device)
    m = s["heldout"]
    out.print(f"layer {s['selected_layer']} (CV accuracy {m['cv_accuracy']:.3f}); "
              f"{s['pairs']['heldout']['pairs']} held-out pairs: accuracy {m['accuracy']:.3f}, "
              f"precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, "
              f"AUC {m['auc']:.3f}, pairwise {m['pairwise_accuracy']:.3f}")
    if as_json:
        print_json(s)


@user_errors
def eval_harmless_cmd(
    data: Annotated[str, typer.Argument(help="Labelled pairs (chosen = less harmful).")],
    judge: Annotated[str, typer.Option(help="Judge: a causal LM or an OpenAI-compatible "
                                            "URL.")] = "smollm2-135m-instruct",
    limit: Annotated[int | None, typer.Option(help="The first N pairs.")] = 200,
    preamble: Preamble = "detailed",
    template: Annotated[Path | None, typer.Option(
        help="A TOML file overriding keys of the harmless-rate template.")] = None,
    max_context_tokens: MaxContext = 256,
    out_dir: OutDirOpt = Path("eval-harmless"),
    seed: SeedOpt = 0, device: DeviceOpt = "auto", threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a harmless-rate judge on labelled pairs: its harmless rate on the chosen and
    on the rejected replies, and how often it finds the chosen reply more likely
    harmless than the rejected one (agreement with the labels), with 95% intervals.

    Example: `preflab eval-harmless hh.jsonl.gz --judge smollm2-135m-instruct --limit 200`
    """
    from preflab.eval.harmless import eval_harmless, harmless_table

    s = eval_harmless(data, judge, out_dir, limit, preamble, template, max_context_tokens,
                      seed, device, threads)
    for line in harmless_table({"chosen": s["chosen"], "rejected": s["rejected"]}):
        out.print(line, highlight=False)
    lo, hi = s["agreement_ci95"]
    out.print(f"agreement with the labels (P(harmless | chosen) > P(harmless | rejected)): "
              f"{s['agreement']:.3f} (95% CI {lo:.3f}-{hi:.3f}) over {s['n_pairs']} pairs")
    if as_json:
        print_json(s)
