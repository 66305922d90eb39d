"""End-to-end experiments, one command each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli.common import PMaxNew, out, user_errors


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
    from preflab.train.recipe import PolicyConfig

    dpo_config = PolicyConfig(policy=policy, loss=loss, beta=beta, epochs=epochs,
                              learning_rate=lr, lora=lora, max_length=max_length,
                              batch_size=batch_size, grad_accum=grad_accum, seed=seed)
    s = clean_vs_original(data, out_dir, committee, method, dpo_config, judge, task, reward,
                          eval_fraction, train_limit, eval_limit, max_new_tokens, seed=seed)
    out.print((out_dir / "report.md").read_text())
    if s["seconds"]:
        out.print(f"{s['seconds']:.0f} s")


@user_errors
def rahf_experiment_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    reward: Annotated[str, typer.Option(help="Reward model for mean reward scores.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder (a rerun resumes).")
                       ] = Path("rahf-compare"),
    policy: Annotated[str, typer.Option(help="The SFT policy every method starts from.")
                      ] = "smollm2-135m-instruct",
    epochs: Annotated[float, typer.Option(help="Epochs of every training stage.")] = 1.0,
    max_length: Annotated[int, typer.Option(help="Max tokens per prompt+reply.")] = 512,
    batch_size: Annotated[int, typer.Option(help="Pairs per micro-batch.")] = 4,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 1,
    alpha: Annotated[float, typer.Option(help="RAHF step-2 alpha.")] = 5.0,
    scit_lr: Annotated[float | None, typer.Option(help="RAHF-SCIT step-2 lr. [default: 3e-4]"
                                                  )] = None,
    dual_lr: Annotated[float | None, typer.Option(help="RAHF-Dual step-2 lr. [default: 9e-6]"
                                                  )] = None,
    steer_coeff: Annotated[float, typer.Option(help="Steering coefficient.")] = 1.0,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = ",".join(
        ("sft", "preferred-sft", "hir", "dpo", "rahf-scit", "rahf-dual", "steering")),
    judge: Annotated[str, typer.Option(help="Win-rate judge: a model or a URL.")
                     ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help="The judge's task.")] = "harmless",
    eval_fraction: Annotated[float, typer.Option(help="Pairs held out for evaluation.")
                             ] = 0.2,
    train_limit: Annotated[int | None, typer.Option(help="Train on a seeded sample of N.")
                           ] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Evaluation prompts.")] = 100,
    temperatures: Annotated[str, typer.Option(help="Comma-separated temperatures.")
                            ] = "0.7,1.0",
    max_new_tokens: PMaxNew = 96,
    seed: Annotated[int, typer.Option(help="Seed of every stage.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """RAHF-SCIT, RAHF-Dual and steering against SFT, Preferred-SFT, HIR and DPO: same
    split, settings and seed; reward scores, win rates vs SFT, a probe; one report.

    Example: `preflab experiment rahf hh.jsonl.gz --reward rm --train-limit 200 --out rahf`
    """
    from preflab.cli_policy import floats
    from preflab.experiment.rahf_compare import rahf_compare
    from preflab.train.rahf import RAHFConfig
    from preflab.train.recipe import PolicyConfig

    config = PolicyConfig(policy=policy, lora=True, epochs=epochs, max_length=max_length,
                          batch_size=batch_size, grad_accum=grad_accum, seed=seed,
                          device=device)
    rahf = RAHFConfig(alpha=alpha, learning_rate=scit_lr)
    s: dict[str, Any] = rahf_compare(
        data, reward, out_dir, config, rahf, dual_lr, steer_coeff, judge, task,
        eval_fraction, train_limit, eval_limit,
        temperatures=floats(temperatures, "--temperatures"), max_new_tokens=max_new_tokens,
        methods=[m.strip() for m in methods.split(",") if m.strip()], seed=seed)
    out.print((out_dir / "report.md").read_text())
    out.print(f"{s['seconds']:.0f} s")
