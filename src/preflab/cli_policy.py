"""``preflab sft`` and ``preflab dpo``: policy training commands (registered on the main app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli import app, out, print_truncation, user_errors

PConfig = Annotated[Path | None, typer.Option(
    "--config", help="TOML/JSON file of settings (a model's preflab-train.json works); "
                     "options given here override it.")]
PMaxLength = Annotated[int | None, typer.Option(
    "--max-length", help="Tokens per prompt+reply; the context loses its oldest tokens "
                         "first, a reply that does not fit alone is cut (counted). "
                         "[default: 1024]")]
PEpochs = Annotated[float | None, typer.Option("--epochs", help="Epochs. [default: 1]")]
PLr = Annotated[float | None, typer.Option(
    "--lr", help="Learning rate. [default: SFT 2e-5, DPO 5e-6; x10 with LoRA]")]
PBatch = Annotated[int | None, typer.Option("--batch-size", help="Pairs (DPO) or replies "
                                                                 "(SFT) per step. [default: 8]")]
PAccum = Annotated[int | None, typer.Option("--grad-accum", help="Gradient accumulation "
                                                                 "steps. [default: 1]")]
PLora = Annotated[bool | None, typer.Option("--lora/--full", help="LoRA adapters on every "
                                                                  "linear layer (merged into "
                                                                  "the saved model) or full "
                                                                  "fine-tuning.")]
PLoraR = Annotated[int | None, typer.Option("--lora-r", help="LoRA rank. [default: 16]")]
PGc = Annotated[bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing",
                                          help="Recompute activations in the backward pass.")]
PSeed = Annotated[int | None, typer.Option("--seed", help="Seed (order, LoRA init).")]
PDevice = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")]
PPrecision = Annotated[str | None, typer.Option(
    "--precision", help="fp32, or bf16 / fp16 mixed precision on a GPU.")]
PResume = Annotated[bool, typer.Option(help="Resume an interrupted run from its last "
                                            "checkpoint in OUT.")]
PJson = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _policy_config(config_file: Path | None, **given: Any) -> Any:
    from preflab.train.policy import PolicyConfig

    overrides = {k: v for k, v in given.items() if v is not None}
    if config_file is not None:
        return PolicyConfig.from_file(config_file, **overrides)
    return PolicyConfig(**overrides)


def _report(summary: dict[str, Any], as_json: bool) -> None:
    tokens = summary["tokens"]
    out.print(f"{summary['stage']}: {summary['model']} ({summary['config']['policy']}, "
              f"{tokens['n_pairs']} pairs, {summary['steps']} steps, final train loss "
              f"{summary['train_loss']}, {summary['seconds']:.0f} s, "
              f"{summary['tokens_per_s']:.0f} tokens/s)")
    print_truncation(tokens, summary["config"]["max_length"])
    if as_json:
        print(json.dumps(summary, default=str))


@app.command("sft")
@user_errors
def sft(
    data: Annotated[str, typer.Argument(help="Pairs (or prompt/chosen data): trains on the "
                                             "chosen replies.")],
    base: Annotated[str | None, typer.Option(
        help="Causal LM to fine-tune: preset, folder or hub id. "
             "[default: smollm2-135m-instruct]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder.")] = Path("sft"),
    side: Annotated[str, typer.Option(help="Train on the chosen replies, or on the rejected "
                                           "ones (RAHF's dispreferred model).")] = "chosen",
    config_file: PConfig = None, max_length: PMaxLength = None, epochs: PEpochs = None,
    lr: PLr = None, batch_size: PBatch = None, grad_accum: PAccum = None,
    lora: PLora = None, lora_r: PLoraR = None, gradient_checkpointing: PGc = None,
    seed: PSeed = None, device: PDevice = None, precision: PPrecision = None,
    resume: PResume = True, as_json: PJson = False,
) -> None:
    """Supervised fine-tuning on chosen replies: the initial policy and DPO's reference.

    Example: `preflab sft train.jsonl --base smollm2-135m-instruct --lora --out sft`
    """
    from preflab.train.sft import train_sft

    config = _policy_config(config_file, policy=base, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, lora_r=lora_r,
                            gradient_checkpointing=gradient_checkpointing, seed=seed,
                            device=device, precision=precision)
    _report(train_sft(data, out_dir, config, resume=resume, side=side), as_json)


@app.command("dpo")
@user_errors
def dpo(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    policy: Annotated[str | None, typer.Option(
        help="Policy to align (e.g. a `preflab sft` folder). [default: smollm2-135m-instruct]")
                      ] = None,
    reference: Annotated[str | None, typer.Option(
        help="Reference model. [default: the policy before training]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder.")] = Path("dpo"),
    loss: Annotated[str | None, typer.Option(
        help="sigmoid (DPO), cdpo (label smoothing --eps), robust (flip rate --eps), ipo, "
             "or soft (each pair's p_chosen as the target). [default: sigmoid]")] = None,
    beta: Annotated[float | None, typer.Option(help="beta (IPO: tau). [default: 0.1]")] = None,
    eps: Annotated[float | None, typer.Option(
        help="cdpo: label smoothing; robust: assumed flip rate. [default: 0.1]")] = None,
    config_file: PConfig = None, max_length: PMaxLength = None, epochs: PEpochs = None,
    lr: PLr = None, batch_size: PBatch = None, grad_accum: PAccum = None,
    lora: PLora = None, lora_r: PLoraR = None, gradient_checkpointing: PGc = None,
    share_prefix: Annotated[bool | None, typer.Option(
        "--share-prefix/--no-share-prefix", help="Run each pair's prompt once for both "
                                                 "replies. [default: on]")] = None,
    seed: PSeed = None, device: PDevice = None, precision: PPrecision = None,
    resume: PResume = True, as_json: PJson = False,
) -> None:
    """Align a policy with DPO or a noise-robust / soft-label variant. Reference
    log-probs are computed once and cached on disk.

    Example: `preflab dpo train.jsonl --policy sft --loss robust --eps 0.2 --lora --out dpo`
    """
    from preflab.train.dpo import train_dpo

    config = _policy_config(config_file, policy=policy, reference=reference, loss=loss,
                            beta=beta, eps=eps, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, lora_r=lora_r,
                            gradient_checkpointing=gradient_checkpointing,
                            share_prefix=share_prefix, seed=seed, device=device,
                            precision=precision)
    summary = train_dpo(data, out_dir, config, resume=resume)
    _report(summary, as_json)
    last = summary["log"][-1] if summary["log"] else {}
    if "rewards/accuracy" in last:
        out.print(f"last step: reward accuracy {last['rewards/accuracy']:.2f}, margin "
                  f"{last['rewards/margin']:.3f}")


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{name} {text!r}: expected comma-separated numbers") from None


PPrompts = Annotated[str, typer.Argument(help="Prompts: a pair file (its prompts) or JSON "
                                              "lines / Parquet with a 'prompt' field.")]
PLimit = Annotated[int | None, typer.Option("--limit", help="Use the first N prompts.")]
PMaxNew = Annotated[int, typer.Option("--max-new-tokens", help="Reply length limit.")]
PThreads = Annotated[int | None, typer.Option("--threads", help="CPU threads.")]


@app.command("bon")
@user_errors
def bon(
    prompts: PPrompts,
    policy: Annotated[str, typer.Option(help="Policy to sample from.")] = "smollm2-135m-instruct",
    reward: Annotated[str, typer.Option(help="Reward model (e.g. a `preflab train-rm` "
                                             "folder) or a committee (a preset name or a "
                                             "TOML file of pointwise members: their "
                                             "standardised rewards are averaged; members "
                                             "take device and threads from the file).")
                  ] = "",
    n: Annotated[int, typer.Option("--n", help="Samples per prompt.")] = 16,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling.")] = 1.0,
    max_new_tokens: PMaxNew = 128,
    limit: PLimit = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("bon"),
    seed: Annotated[int, typer.Option(help="Seed of every sample.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Replies sampled at once.")] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: PThreads = None,
) -> None:
    """Best-of-N rejection sampling: sample N replies per prompt, keep the one the reward
    model scores best; writes selected.jsonl (an SFT set; worst reply as rejected).

    Example: `preflab bon prompts.jsonl --policy sft --reward rm --n 16 --out bon`
    """
    from preflab.train.best_of_n import best_of_n

    if not reward:
        raise ValueError("--reward is required (a reward model or a committee)")
    s = best_of_n(prompts, policy, reward, out_dir, n=n, temperature=temperature, top_p=top_p,
                  max_new_tokens=max_new_tokens, limit=limit, seed=seed,
                  batch_size=batch_size, device=device, threads=threads)
    ks = ", ".join(f"{k.replace('best_of_', 'best-of-')} {v:.4f}" for k, v in s.items()
                   if k.startswith("best_of_"))
    out.print(f"{s['n_prompts']} prompts, mean reward: {ks}; {s['selected']} selected "
              f"-> {out_dir / 'selected.jsonl'} ({s['seconds']:.0f} s)")
    for name, table in s.get("members", {}).items():
        ks = ", ".join(f"{k.replace('best_of_', 'best-of-')} {v:.4f}" for k, v in table.items())
        out.print(f"  {name}: {ks}")


@app.command("rl")
@user_errors
def rl_cmd(
    prompts: PPrompts,
    policy: Annotated[str, typer.Option(help="Starting (SFT) policy; also the KL reference."
                                        )] = "smollm2-135m-instruct",
    reward: Annotated[str, typer.Option(help="Reward model, or the judge with --direct.")
                      ] = "",
    direct: Annotated[bool, typer.Option(help="Direct RLAIF: the judge's 1-10 rating, "
                                              "rescaled to [-1, 1], is the reward.")] = False,
    task: Annotated[str, typer.Option(help="The direct judge's task.")] = "helpful",
    beta: Annotated[float, typer.Option(help="KL weight: reward (1-beta) r - beta KL.")
                    ] = 0.05,
    steps: Annotated[int, typer.Option(help="Policy-gradient steps.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Prompts per step.")] = 8,
    samples_per_prompt: Annotated[int, typer.Option(
        help="Replies sampled per prompt each step (they share its KV cache).")] = 1,
    baseline: Annotated[str, typer.Option(
        help="value (A2C: a learned value head) or loo (mean return of the prompt's "
             "other samples, RLOO; needs 2+ samples per prompt).")] = "value",
    whiten: Annotated[bool, typer.Option(help="Scale each batch's advantages to mean 0, "
                                              "std 1.")] = False,
    lr: Annotated[float, typer.Option("--lr", help="LoRA learning rate.")] = 1e-4,
    max_new_tokens: PMaxNew = 48,
    limit: PLimit = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder.")] = Path("rl"),
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: PThreads = None,
    resume: PResume = True,
) -> None:
    """RL from a reward model (A2C-style REINFORCE with a learned value baseline, KL to
    the starting policy), or direct RLAIF with --direct.

    Example: `preflab rl prompts.jsonl --policy sft --reward rm --steps 30 --out rl`
    """
    from preflab.train.rl import RLConfig, rl

    config = RLConfig(policy=policy, reward=reward, direct=direct, task=task, beta=beta,
                      steps=steps, batch_size=batch_size,
                      samples_per_prompt=samples_per_prompt, baseline=baseline, whiten=whiten,
                      learning_rate=lr,
                      max_new_tokens=max_new_tokens, seed=seed,
                      device=device, threads=threads)
    s = rl(prompts, out_dir, config, limit=limit, resume=resume)
    out.print(f"rl: {out_dir} ({s['steps']} steps): mean reward {s['reward_first5']:.4f} "
              f"(first 5 steps) -> {s['reward_last5']:.4f} (last 5), KL {s['kl_last5']:.3f} "
              f"(max {s['kl_max']:.3f}), {s['seconds']:.0f} s; curve in rl_log.jsonl")


@app.command("winrate")
@user_errors
def winrate_cmd(
    a: Annotated[str, typer.Argument(help="Policy A: a model, or a generations .jsonl "
                                          "(prompt_id or prompt, reply).")],
    b: Annotated[str, typer.Argument(help="Policy B, the same way.")],
    prompts: Annotated[str, typer.Option(help="Prompts (a pair file or a prompt file).")],
    judge: Annotated[str, typer.Option(help="Judge: a causal LM or an OpenAI-compatible URL."
                                       )] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help="helpful, harmless or summary.")] = "helpful",
    preamble: Annotated[str, typer.Option(help="base or detailed.")] = "detailed",
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_new_tokens: PMaxNew = 128,
    limit: PLimit = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("winrate"),
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: PThreads = None,
    as_json: PJson = False,
) -> None:
    """Win rate of A against B, judged in both orders (disagreeing orders are ties), with
    a bootstrap 95% interval and AlpacaEval's length-controlled win rate.

    Example: `preflab winrate dpo sft --prompts test.jsonl --judge smollm2-135m-instruct`
    """
    from preflab.eval.winrate import winrate

    s = winrate(a, b, prompts, judge, out_dir, task=task, preamble=preamble, limit=limit,
                temperature=temperature, max_new_tokens=max_new_tokens, seed=seed,
                device=device, threads=threads)
    out.print(f"A = {a} vs B = {b} on {s['n']} prompts: {s['wins']} wins, {s['ties']} ties, "
              f"{s['losses']} losses; win rate {s['win_rate']:.3f} (95% CI "
              f"{s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}), length-controlled "
              f"{s['lc_win_rate']:.3f}")
    if as_json:
        print(json.dumps(s))


@app.command("eval-policy")
@user_errors
def eval_policy_cmd(
    model: Annotated[str, typer.Argument(help="Policy to evaluate.")],
    prompts: Annotated[str | None, typer.Option(help="Prompts to generate for.")] = None,
    reward: Annotated[str | None, typer.Option(help="Reward model scoring the replies.")
                      ] = None,
    temperatures: Annotated[str, typer.Option(help="Comma-separated sampling temperatures."
                                              )] = "0.7,1.0",
    heldout: Annotated[str | None, typer.Option(
        help="Pairs whose chosen replies give the perplexity.")] = None,
    max_new_tokens: PMaxNew = 128,
    limit: PLimit = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")
                       ] = Path("eval-policy"),
    instruction: Annotated[str | None, typer.Option(
        help="good, bad or a text written before each prompt's last user turn (HIR).")
                           ] = None,
    steer: Annotated[Path | None, typer.Option(help="A steering vector file to apply.")
                     ] = None,
    coeff: Annotated[float, typer.Option(help="The steering vector's coefficient.")] = 1.0,
    against: Annotated[Path | None, typer.Option(
        help="Another eval-policy folder (same prompts, seed and temperatures): also "
             "report the paired difference of mean reward with a bootstrap interval.")
                       ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: PThreads = None,
    as_json: PJson = False,
) -> None:
    """Mean reward-model score of a policy's replies at several temperatures, and
    perplexity on held-out chosen replies.

    Example: `preflab eval-policy dpo --prompts test.jsonl --reward rm --heldout test.jsonl`
    """
    from preflab.eval.policy import eval_policy

    if reward is not None and prompts is None:
        raise ValueError("--reward scores generations: give --prompts too")
    s = eval_policy(model, prompts or "", reward, out_dir, _floats(temperatures, "--temperatures"),
                    heldout, limit, max_new_tokens, seed, device=device, threads=threads,
                    instruction=instruction, steer=steer, coeff=coeff)
    for t, r in s.get("reward", {}).items():
        out.print(f"T={t}: mean reward {r['mean']:.4f} (95% CI {r['ci95'][0]:.4f}-"
                  f"{r['ci95'][1]:.4f}) over {s['n_prompts']} prompts")
    if "perplexity" in s:
        out.print(f"perplexity on held-out chosen replies: {s['perplexity']:.3f} "
                  f"({s['tokens']} tokens)")
    if against is not None:
        from preflab.eval.policy import compare_evals

        s["against"] = {"folder": str(against), **compare_evals(out_dir, against, seed)}
        (out_dir / "summary.json").write_text(json.dumps(s, indent=1))
        for t, d in s["against"].items():
            if t != "folder":
                out.print(f"T={t}: minus {against}: {d['mean_diff']:+.4f} (paired 95% CI "
                          f"{d['ci95'][0]:+.4f} to {d['ci95'][1]:+.4f}, {d['n']} prompts, "
                          f"higher on {d['a_higher']:.0%})")
    if as_json:
        print(json.dumps(s))


experiment_app = typer.Typer(help="End-to-end experiments, one command each.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("clean-vs-original")
@user_errors
def clean_vs_original_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (a rerun resumes).")
                       ] = Path("clean-vs-original"),
    committee: Annotated[str, typer.Option(help="Audit committee: preset or TOML.")] = "cpu",
    method: Annotated[str, typer.Option(help="Cleaning method.")] = "sac",
    policy: Annotated[str, typer.Option(help="Policy both DPO runs start from.")
                      ] = "smollm2-135m-instruct",
    loss: Annotated[str, typer.Option(help="DPO loss.")] = "sigmoid",
    beta: Annotated[float, typer.Option(help="DPO beta.")] = 0.1,
    epochs: Annotated[float, typer.Option(help="DPO epochs.")] = 1.0,
    lr: Annotated[float | None, typer.Option("--lr", help="DPO learning rate.")] = None,
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA or full fine-tuning.")
                    ] = True,
    max_length: Annotated[int, typer.Option(help="DPO max tokens per prompt+reply.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="DPO pairs per micro-batch.")] = 8,
    grad_accum: Annotated[int, typer.Option(help="DPO gradient accumulation steps.")] = 1,
    judge: Annotated[str, typer.Option(help="Win-rate judge: a model or a URL.")
                     ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help="The judge's task.")] = "harmless",
    reward: Annotated[str | None, typer.Option(help="Reward model for mean reward scores.")
                      ] = None,
    eval_fraction: Annotated[float, typer.Option(help="Pairs held out for evaluation.")
                             ] = 0.2,
    train_limit: Annotated[int | None, typer.Option(help="Train on a seeded sample of N.")
                           ] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Evaluation prompts.")] = 100,
    max_new_tokens: PMaxNew = 96,
    seed: Annotated[int, typer.Option(help="Seed of every stage.")] = 0,
) -> None:
    """Split, audit, clean, DPO on the original and on the cleaned data (same seed and
    settings), then win rate and reward score of one against the other.

    Example: `preflab experiment clean-vs-original hh.jsonl.gz --reward rm --out cvo`
    """
    from preflab.experiment.clean_vs_original import clean_vs_original
    from preflab.train.policy import PolicyConfig

    dpo_config = PolicyConfig(policy=policy, loss=loss, beta=beta, epochs=epochs,
                              learning_rate=lr, lora=lora, max_length=max_length,
                              batch_size=batch_size, grad_accum=grad_accum, seed=seed)
    s = clean_vs_original(data, out_dir, committee, method, dpo_config, judge, task, reward,
                          eval_fraction, train_limit, eval_limit, max_new_tokens, seed=seed)
    out.print((out_dir / "report.md").read_text())
    if s["seconds"]:
        out.print(f"{s['seconds']:.0f} s")


# after every name above exists: cli_rahf reuses them (also under `python -m preflab.cli`)
import preflab.cli_rahf  # noqa: E402, F401  (registers rahf, hir, steer, probe)
