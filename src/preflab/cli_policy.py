"""``preflab sft`` and ``preflab dpo``: policy training commands (registered on the main app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli import app, out, user_errors

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
    if tokens["context_truncated"] or tokens["reply_truncated"]:
        out.print(f"[yellow]truncated to --max-length {summary['config']['max_length']}[/]: "
                  f"{tokens['context_truncated']} contexts lost their oldest tokens, "
                  f"{tokens['reply_truncated']} replies were cut")
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
    _report(train_sft(data, out_dir, config, resume=resume), as_json)


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
