"""Training commands: reward models, SFT, DPO, best-of-N, RL, RAHF, HIR, steering."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from preflab.cli.console import (
    out,
    print_json,
    user_errors,
)
from preflab.cli.from_config import (
    ConfigOpt,
    policy_config,
    rm_config,
    stage_config,
)
from preflab.cli.options import (
    DeviceOpt,
    JsonOpt,
    ModelOutOpt,
    OutDirOpt,
    PAccum,
    PairsArg,
    PBatch,
    PConfig,
    PDevice,
    PEpochs,
    PGc,
    PJson,
    PLayers,
    PLora,
    PLoraR,
    PLr,
    PMaxLength,
    PMaxNew,
    PPrecision,
    PPrompts,
    PResume,
    PromptLimitOpt,
    PSeed,
    PThreads,
    ReplyBatchOpt,
    Rm,
    SeedOpt,
    TemperatureOpt,
    ThreadsOpt,
    ints,
    set_threads,
)
from preflab.train.config import BestOfNConfig, RLConfig

BON = BestOfNConfig()
RL = RLConfig()


@user_errors
def train_rm_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs to train on.")],
    base: Annotated[str | None, typer.Option(
        help="Base model: a causal LM (reward at the last token) or an encoder; preset, "
             "folder or hub id. [default: minilm-l6]")] = None,
    out_dir: ModelOutOpt = Path("reward-model"),
    config_file: Rm.Config = None, labels: Rm.Labels = None, max_length: Rm.MaxLength = None,
    margin: Rm.Margin = None, subset_weight: Rm.SubsetWeight = None, epochs: Rm.Epochs = None,
    lr: Rm.Lr = None, batch_size: Rm.Batch = None, lora: Rm.Lora = None, head: Rm.Head = None,
    lora_r: Rm.LoraR = None, train_layers: Rm.TrainLayers = None, pad_token: Rm.Pad = None,
    pmp: Annotated[str | None, typer.Option(
        help="Preference-model pretraining: train on this comparison set first, then "
             "fine-tune on DATA.")] = None,
    pmp_epochs: Annotated[float | None, typer.Option(help="Epochs of --pmp. [default: 1]")
                          ] = None,
    limit: Rm.Limit = None, sample: Rm.Sample = None,
    seed: Rm.Seed = None, device: Rm.Device = None, threads: Rm.Threads = None,
    precision: PPrecision = None, resume: PResume = True, as_json: PJson = False,
) -> None:
    """Train a scalar reward model (Bradley-Terry, soft labels, weights, PMP); the output
    folder loads with `AutoModelForSequenceClassification`, and its config.toml
    (`--config OUT/config.toml`) reruns the training.

    Example: `preflab train-rm train.jsonl --base minilm-l6 --out rm`
    """
    from preflab.train.reward_model import train_rm

    config = rm_config(config_file, subset_weight, base=base, labels=labels,
                        max_length=max_length, margin=margin, epochs=epochs,
                        learning_rate=lr, batch_size=batch_size, lora=lora, lora_r=lora_r,
                        head=head,
                        train_layers=train_layers, pad_token=pad_token, pmp=pmp,
                        pmp_epochs=pmp_epochs, limit=limit, sample=sample, seed=seed,
                        device=device, threads=threads, precision=precision)
    summary = train_rm(data, out_dir, config, resume=resume)
    last = summary["stages"][-1]
    out.print(f"reward model: {out_dir} ({config.base}, {last['labels']} labels, "
              f"{last['n_pairs']} pairs, {last['steps']} steps, final train loss "
              f"{last['train_loss']}, {last['seconds']:.0f} s)")
    print_truncation(last["tokens"], config.max_length)
    if as_json:
        print_json(summary)


@user_errors
def sft(
    data: Annotated[str, typer.Argument(help="Pairs (or prompt/chosen data): trains on the "
                                             "chosen replies.")],
    base: Annotated[str | None, typer.Option(
        help="Causal LM to fine-tune: preset, folder or hub id. "
             "[default: smollm2-135m-instruct]")] = None,
    out_dir: ModelOutOpt = Path("sft"),
    side: Annotated[str, typer.Option(help="Train on the chosen replies, or on the rejected "
                                           "ones (RAHF's dispreferred model).")] = "chosen",
    config_file: PConfig = None, max_length: PMaxLength = None, epochs: PEpochs = None,
    lr: PLr = None, batch_size: PBatch = None, grad_accum: PAccum = None,
    lora: PLora = None, lora_r: PLoraR = None, gradient_checkpointing: PGc = None,
    seed: PSeed = None, device: PDevice = None, precision: PPrecision = None,
    threads: PThreads = None, resume: PResume = True, as_json: PJson = False,
) -> None:
    """Supervised fine-tuning on chosen replies: the initial policy and DPO's reference.
    OUT/config.toml holds the settings (`--config` it to rerun; --side is not in it).

    Example: `preflab sft train.jsonl --base smollm2-135m-instruct --lora --out sft`
    """
    from preflab.train.sft import train_sft

    config = policy_config(config_file, policy=base, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, lora_r=lora_r,
                            gradient_checkpointing=gradient_checkpointing, seed=seed,
                            device=device, precision=precision, threads=threads)
    print_training(train_sft(data, out_dir, config, resume=resume, side=side), as_json)


@user_errors
def dpo(
    data: PairsArg,
    policy: Annotated[str | None, typer.Option(
        help="Policy to align (e.g. a `preflab sft` folder). [default: smollm2-135m-instruct]")
                      ] = None,
    reference: Annotated[str | None, typer.Option(
        help="Reference model. [default: the policy before training]")] = None,
    out_dir: ModelOutOpt = Path("dpo"),
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
    threads: PThreads = None, resume: PResume = True, as_json: PJson = False,
) -> None:
    """Align a policy with DPO or a noise-robust / soft-label variant. Reference
    log-probs are computed once and cached on disk; OUT/config.toml holds the settings
    (`--config` it to rerun).

    Example: `preflab dpo train.jsonl --policy sft --loss robust --eps 0.2 --lora --out dpo`
    """
    from preflab.train.dpo import train_dpo

    config = policy_config(config_file, policy=policy, reference=reference, loss=loss,
                            beta=beta, eps=eps, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, lora_r=lora_r,
                            gradient_checkpointing=gradient_checkpointing,
                            share_prefix=share_prefix, seed=seed, device=device,
                            precision=precision, threads=threads)
    summary = train_dpo(data, out_dir, config, resume=resume)
    last = summary["log"][-1] if summary["log"] else {}
    if "rewards/accuracy" in last:
        out.print(f"last step: reward accuracy {last['rewards/accuracy']:.2f}, margin "
                  f"{last['rewards/margin']:.3f}")
    print_training(summary, as_json)


Policy = Annotated[str, typer.Option(help="Policy to sample from.")]
BonReward = Annotated[str, typer.Option(help="Reward model (e.g. a `preflab train-rm` folder) "
                                             "or a committee (a preset name or a TOML file "
                                             "of pointwise members: their standardised "
                                             "rewards are averaged; members take device and "
                                             "threads from the file). Required.")]
BonN = Annotated[int, typer.Option("--n", help="Samples per prompt.")]
TopP = Annotated[float, typer.Option(help="Nucleus sampling.")]


@user_errors
def bon(
    ctx: typer.Context, prompts: PPrompts, config_file: ConfigOpt = None,
    policy: Policy = BON.policy, reward: BonReward = BON.reward, n: BonN = BON.n,
    temperature: TemperatureOpt = BON.temperature, top_p: TopP = BON.top_p,
    max_new_tokens: PMaxNew = BON.max_new_tokens, limit: PromptLimitOpt = None,
    out_dir: OutDirOpt = Path("bon"),
    seed: SeedOpt = BON.seed, batch_size: ReplyBatchOpt = BON.batch_size,
    device: DeviceOpt = BON.device, threads: ThreadsOpt = None, as_json: JsonOpt = False,
) -> None:
    """Best-of-N rejection sampling: sample N replies per prompt, keep the one the reward
    model scores best; writes selected.jsonl (an SFT set; worst reply as rejected) and
    config.toml (`--config OUT/config.toml` reruns it).

    Example: `preflab bon prompts.jsonl --policy sft --reward rm --n 16 --out bon`
    """
    from preflab.train.best_of_n import best_of_n

    config = stage_config(BestOfNConfig, ctx, config_file)
    s = best_of_n(prompts, out=out_dir, config=config)
    ks = ", ".join(f"{k.replace('best_of_', 'best-of-')} {v:.4f}" for k, v in s.items()
                   if k.startswith("best_of_"))
    out.print(f"{s['n_prompts']} prompts, mean reward: {ks}; {s['selected']} selected "
              f"-> {out_dir / 'selected.jsonl'} ({s['seconds']:.0f} s)")
    for name, table in s.get("members", {}).items():
        ks = ", ".join(f"{k.replace('best_of_', 'best-of-')} {v:.4f}" for k, v in table.items())
        out.print(f"  {name}: {ks}")
    if as_json:
        print_json(s)


RlPolicy = Annotated[str, typer.Option(help="Starting (SFT) policy; also the KL reference.")]
RlReward = Annotated[str, typer.Option(help="Reward model, or the judge with --direct. "
                                            "Required.")]
RlDirect = Annotated[bool, typer.Option(help="Direct RLAIF: the judge's 1-10 rating, "
                                             "rescaled to [-1, 1], is the reward.")]
RlTask = Annotated[str, typer.Option(help="The direct judge's task.")]
RlBeta = Annotated[float, typer.Option(help="KL weight: reward (1-beta) r - beta KL.")]
RlSteps = Annotated[int, typer.Option(help="Policy-gradient steps.")]
RlBatch = Annotated[int, typer.Option(help="Prompts per step.")]
RlSamples = Annotated[int, typer.Option(
    help="Replies sampled per prompt each step (they share its KV cache).")]
RlBaseline = Annotated[str, typer.Option(
    help="value (A2C: a learned value head) or loo (mean return of the prompt's other "
         "samples, RLOO; needs 2+ samples per prompt).")]
RlWhiten = Annotated[bool, typer.Option(help="Scale each batch's advantages to mean 0, "
                                             "std 1.")]
RlLr = Annotated[float, typer.Option("--lr", help="LoRA learning rate.")]
RlValueLr = Annotated[float, typer.Option("--value-lr", help="Value head learning rate.")]
RlPromptTokens = Annotated[int, typer.Option(help="Longest prompt (its last tokens kept).")]
RlLoraR = Annotated[int, typer.Option("--lora-r", help="LoRA rank.")]
RlSave = Annotated[int, typer.Option(help="Checkpoint every N steps.")]


@user_errors
def rl_cmd(
    ctx: typer.Context, prompts: PPrompts, config_file: ConfigOpt = None,
    policy: RlPolicy = RL.policy, reward: RlReward = RL.reward, direct: RlDirect = RL.direct,
    task: RlTask = RL.task, beta: RlBeta = RL.beta, steps: RlSteps = RL.steps,
    batch_size: RlBatch = RL.batch_size, samples_per_prompt: RlSamples = RL.samples_per_prompt,
    baseline: RlBaseline = RL.baseline, whiten: RlWhiten = RL.whiten,
    learning_rate: RlLr = RL.learning_rate, value_learning_rate: RlValueLr = RL.value_learning_rate,
    max_new_tokens: PMaxNew = RL.max_new_tokens,
    max_prompt_tokens: RlPromptTokens = RL.max_prompt_tokens, lora_r: RlLoraR = RL.lora_r,
    limit: PromptLimitOpt = None, save_steps: RlSave = RL.save_steps,
    out_dir: ModelOutOpt = Path("rl"),
    seed: SeedOpt = RL.seed, device: DeviceOpt = RL.device, threads: ThreadsOpt = None,
    resume: PResume = True, as_json: JsonOpt = False,
) -> None:
    """RL from a reward model (A2C-style REINFORCE with a learned value baseline, KL to
    the starting policy), or direct RLAIF with --direct. OUT/config.toml holds the
    settings (`--config` it to rerun).

    Example: `preflab rl prompts.jsonl --policy sft --reward rm --steps 30 --out rl`
    """
    from preflab.train.rl import rl

    config = stage_config(RLConfig, ctx, config_file)
    s = rl(prompts, out_dir, config, resume=resume)
    out.print(f"rl: {out_dir} ({s['steps']} steps): mean reward {s['reward_first5']:.4f} "
              f"(first 5 steps) -> {s['reward_last5']:.4f} (last 5), KL {s['kl_last5']:.3f} "
              f"(max {s['kl_max']:.3f}), {s['seconds']:.0f} s; curve in rl_log.jsonl")
    if as_json:
        print_json(s)


@user_errors
def rahf_cmd(
    data: PairsArg,
    variant: Annotated[str | None, typer.Option(
        help="scit (one model, contrastive instruction tuning) or dual (preferred + "
             "dispreferred models). [default: scit, or the --config file's]")] = None,
    base: Annotated[str | None, typer.Option(
        help="Model to align. [default: smollm2-135m-instruct]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder (step-1 "
                                                        "models in step1-*).")] = Path("rahf"),
    layers: PLayers = None,
    alpha: Annotated[float | None, typer.Option(help="Shift: base + alpha * v. "
                                                     "[default: 5]")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Step-2 learning rate. [default: "
                                                          "3e-4 SCIT, 9e-6 Dual]")] = None,
    step1_lr: Annotated[float | None, typer.Option(
        "--step1-lr", help="Step-1 learning rate (LoRA). [default: 2e-4]")] = None,
    epochs: PEpochs = None,
    step1_epochs: Annotated[float | None, typer.Option(
        "--step1-epochs", help="Step-1 epochs. [default: 1]")] = None,
    lora_r: Annotated[int | None, typer.Option("--lora-r", help="Step-2 LoRA rank. "
                                                               "[default: 8]")] = None,
    lora_targets: Annotated[str | None, typer.Option(
        "--lora-targets", help="Step-2 LoRA modules. [default: q_proj,v_proj]")] = None,
    scit_model: Annotated[str | None, typer.Option(help="An existing SCIT model (skips "
                                                        "step 1).")] = None,
    good_model: Annotated[str | None, typer.Option(help="Dual: an existing preferred "
                                                        "model, e.g. a `preflab sft` one.")
                          ] = None,
    bad_model: Annotated[str | None, typer.Option(help="Dual: an existing dispreferred "
                                                       "model.")] = None,
    config_file: PConfig = None, max_length: PMaxLength = None, batch_size: PBatch = None,
    grad_accum: PAccum = None, seed: PSeed = None, device: PDevice = None,
    precision: PPrecision = None, threads: ThreadsOpt = None, resume: PResume = True,
    as_json: PJson = False,
) -> None:
    """Representation alignment (RAHF): a preference-aware model (step 1), then LoRA
    trained to move the base's hidden states by alpha * (good - bad) (step 2).
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab rahf train.jsonl --variant dual --good-model sft --out rahf-dual`
    """
    from preflab.train.rahf import RAHFConfig, train_rahf

    given = {"variant": variant, "base": base, "layers": ints(layers, "--layers"),
             "alpha": alpha, "learning_rate": lr, "step1_learning_rate": step1_lr,
             "epochs": epochs, "step1_epochs": step1_epochs, "lora_r": lora_r,
             "lora_targets": lora_targets.split(",") if lora_targets else None,
             "scit_model": scit_model, "good_model": good_model, "bad_model": bad_model,
             "max_length": max_length, "batch_size": batch_size, "grad_accum": grad_accum,
             "seed": seed, "device": device, "precision": precision}
    given = {k: v for k, v in given.items() if v is not None}
    config = (RAHFConfig.from_file(config_file, **given) if config_file
              else RAHFConfig(**given))
    set_threads(threads)
    s = train_rahf(data, out_dir, config, resume=resume)
    log = s["log"]
    out.print(f"rahf-{config.variant}: {out_dir} (layers {s['rahf']['layers']}, "
              f"{s['steps']} steps, {s['seconds']:.0f} s): distance to target "
              f"{log[0]['distance_ratio']:.3f} -> {log[-1]['distance_ratio']:.3f} of the "
              f"shift (mean shift {log[-1]['target_shift']:.2f})" if log else str(out_dir))
    if as_json:
        print_json(s)


@user_errors
def hir_cmd(
    data: PairsArg,
    base: Annotated[str | None, typer.Option(
        help="Model to fine-tune. [default: smollm2-135m-instruct]")] = None,
    out_dir: ModelOutOpt = Path("hir"),
    config_file: PConfig = None, max_length: PMaxLength = None, epochs: PEpochs = None,
    lr: PLr = None, batch_size: PBatch = None, grad_accum: PAccum = None, lora: PLora = None,
    seed: PSeed = None, device: PDevice = None, precision: PPrecision = None,
    threads: PThreads = None, resume: PResume = True, as_json: PJson = False,
) -> None:
    """HIR baseline: SFT with hindsight-relabelled instructions (good instruction before
    chosen replies, bad before rejected ones); sample with `--instruction good`.

    Example: `preflab hir train.jsonl --lora --out hir`
    """
    from preflab.train.scit import train_hir

    config = policy_config(config_file, policy=base, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, seed=seed, device=device, precision=precision,
                            threads=threads)
    print_training(train_hir(data, out_dir, config, resume=resume), as_json)


@user_errors
def steer_extract(
    data: PairsArg,
    model: Annotated[str, typer.Option(help="Model to steer.")] = "smollm2-135m-instruct",
    out_file: Annotated[Path, typer.Option("--out", help="Vector file (.safetensors).")
                        ] = Path("steering.safetensors"),
    layers: PLayers = None,
    stimulus: Annotated[str, typer.Option(
        help="instruction (chosen reply after the good vs the bad instruction) or reply "
             "(chosen vs rejected reply).")] = "instruction",
    limit: Annotated[int | None, typer.Option("--limit", help="Use the first N pairs. "
                                                              "[default: all]")] = None,
    sample: Annotated[int | None, typer.Option("--sample", help="Use a seeded random sample "
                                                                "of N pairs (of the first "
                                                                "--limit). [default: all]")
                      ] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per prompt+reply.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
) -> None:
    """Extract a steering vector: per layer, the first principal direction of the
    good-minus-bad activation differences over reply tokens (no training).

    Example: `preflab steer extract train.jsonl --out harmless.safetensors`
    """
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs
    from preflab.train.extract_steering import extract_steering

    pairs = list(iter_pairs(load_pairs(data)))
    pairs = sample_pairs(pairs[:limit] if limit is not None else pairs, sample, seed)
    set_threads(threads)
    v = extract_steering(model, pairs, ints(layers, "--layers"), stimulus, max_length,
                         device=device, source=data)
    v.save(out_file)
    info = ", ".join(f"{k}: explained {x['explained']:.2f}, scale {x['scale']:.2f}"
                     for k, x in v.meta["layers"].items())
    out.print(f"steering vector from {len(pairs)} pairs -> {out_file} (layers {info})")


def print_truncation(tokens: dict[str, Any], max_length: int) -> None:
    """What fitting sequences into --max-length did, when it did anything."""
    if tokens["reply_truncated"] or tokens["context_truncated"]:
        out.print(f"[yellow]truncated to --max-length {max_length}[/]: "
                  f"{tokens['context_truncated']} contexts lost their oldest tokens, "
                  f"{tokens['reply_truncated']} replies were cut")


def print_training(summary: dict[str, Any], as_json: bool) -> None:
    tokens = summary["tokens"]
    out.print(f"{summary['stage']}: {escape(str(summary['model']))} "
              f"({escape(str(summary['config']['policy']))}, "
              f"{tokens['n_pairs']} pairs, {summary['steps']} steps, final train loss "
              f"{summary['train_loss']}, {summary['seconds']:.0f} s, "
              f"{summary['tokens_per_s']:.0f} tokens/s)")
    print_truncation(tokens, summary["config"]["max_length"])
    if as_json:
        print_json(summary)
