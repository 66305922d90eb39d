"""End-to-end experiments, one command each."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli.console import (
    out,
    print_json,
    user_errors,
)
from preflab.cli.from_config import (
    C,
    ConfigOpt,
    typed_options,
)
from preflab.cli.options import (
    DeviceOpt,
    JsonOpt,
    PairsArg,
    PMaxNew,
    SeedOpt,
    ThreadsOpt,
    floats,
)
from preflab.experiment.config import (
    RAHF_METHODS,
    CleanVsOriginalConfig,
    OverOptimizationConfig,
    RAHFCompareConfig,
)

CVO = CleanVsOriginalConfig()
RC = RAHFCompareConfig()
OO = OverOptimizationConfig()


def nested_config(cls: type[C], ctx: typer.Context, config_file: Path | None,
                  tables: dict[str, dict[str, str]], **convert: Any) -> C:
    """`cls` from its defaults, `config_file` and the options given on the command line;
    `tables` maps a nested table (e.g. ``dpo``) to {option name: its field there}."""
    from preflab.settings import load_config

    given = {k: convert[k](v) if k in convert else v for k, v in typed_options(ctx).items()}
    top = {f.name for f in fields(cls)} - set(tables)  # type: ignore[arg-type]
    config = load_config(cls, config_file, **{k: v for k, v in given.items() if k in top})
    for table, names in tables.items():
        inner = {name: given[option] for option, name in names.items() if option in given}
        if inner:
            config = replace(config, **{table: replace(getattr(config, table), **inner)})
    return config


OutDir = Annotated[Path, typer.Option("--out", help="Output folder (a rerun resumes).")]
Judge = Annotated[str, typer.Option(help="Win-rate judge: a model or a URL.")]
Task = Annotated[str, typer.Option(help="The judge's task.")]
EvalFraction = Annotated[float, typer.Option(help="Share of the pairs held out for "
                                                  "evaluation.")]
TrainSample = Annotated[int | None, typer.Option(
    help="Train on a seeded random sample of N of the training pairs. [default: all]")]
EvalLimit = Annotated[int | None, typer.Option(help="Use the first N evaluation prompts.")]
Epochs = Annotated[float, typer.Option(help="Epochs of every training stage.")]
MaxLength = Annotated[int, typer.Option(help="Max tokens per prompt+reply.")]
Batch = Annotated[int, typer.Option(help="Pairs per micro-batch.")]
Accum = Annotated[int, typer.Option(help="Gradient accumulation steps.")]

DPO_OPTIONS = {"policy": "policy", "loss": "loss", "beta": "beta", "epochs": "epochs",
               "lr": "learning_rate", "lora": "lora", "max_length": "max_length",
               "batch_size": "batch_size", "grad_accum": "grad_accum", "device": "device",
               "threads": "threads"}


@user_errors
def clean_vs_original_cmd(
    ctx: typer.Context,
    data: PairsArg,
    config_file: ConfigOpt = None, out_dir: OutDir = Path("clean-vs-original"),
    committee: Annotated[str, typer.Option(help="Audit committee: preset or TOML.")
                         ] = CVO.committee,
    method: Annotated[str, typer.Option(help="Cleaning method.")] = CVO.method,
    policy: Annotated[str, typer.Option(help="Policy both DPO runs start from.")
                      ] = CVO.dpo.policy,
    loss: Annotated[str, typer.Option(help="DPO loss.")] = CVO.dpo.loss,
    beta: Annotated[float, typer.Option(help="DPO beta.")] = CVO.dpo.beta,
    epochs: Epochs = CVO.dpo.epochs,
    lr: Annotated[float | None, typer.Option(
        "--lr", help="DPO learning rate. [default: 5e-6; x10 with LoRA]")] = None,
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA or full fine-tuning.")
                    ] = CVO.dpo.lora,
    max_length: MaxLength = CVO.dpo.max_length, batch_size: Batch = CVO.dpo.batch_size,
    grad_accum: Accum = CVO.dpo.grad_accum, judge: Judge = CVO.judge, task: Task = CVO.task,
    reward: Annotated[str | None, typer.Option(
        help="Reward model for mean reward scores. [default: none]")] = None,
    eval_fraction: EvalFraction = CVO.eval_fraction, train_sample: TrainSample = None,
    eval_limit: EvalLimit = CVO.eval_limit, max_new_tokens: PMaxNew = CVO.max_new_tokens,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the "
                                                    "evaluation replies.")] = CVO.temperature,
    seed: SeedOpt = CVO.seed, device: DeviceOpt = CVO.dpo.device, threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Split, audit, clean, DPO on the original and on the cleaned data (same seed and
    settings), then win rate and reward score of one against the other. OUT/config.toml
    holds the settings (`--config` it to rerun; DPO settings in its [dpo] table).

    Example: `preflab experiment clean-vs-original hh.jsonl.gz --reward rm --out cvo`
    """
    from preflab.experiment.clean_vs_original import clean_vs_original

    config = nested_config(CleanVsOriginalConfig, ctx, config_file, {"dpo": DPO_OPTIONS})
    s = clean_vs_original(data, out_dir, config)
    out.print((out_dir / "report.md").read_text())
    if s["seconds"]:
        out.print(f"{s['seconds']:.0f} s")
    if as_json:
        print_json(s)


POLICY_OPTIONS = {"policy": "policy", "epochs": "epochs", "max_length": "max_length",
                  "batch_size": "batch_size", "grad_accum": "grad_accum", "device": "device",
                  "threads": "threads"}
RAHF_OPTIONS = {"alpha": "alpha", "scit_lr": "learning_rate"}


@user_errors
def rahf_experiment_cmd(
    ctx: typer.Context,
    data: PairsArg,
    config_file: ConfigOpt = None,
    reward: Annotated[str, typer.Option(help="Reward model for mean reward scores. "
                                             "Required (here or in --config).")] = RC.reward,
    out_dir: OutDir = Path("rahf-compare"),
    policy: Annotated[str, typer.Option(help="The SFT policy every method starts from.")
                      ] = RC.policy.policy,
    epochs: Epochs = RC.policy.epochs, max_length: MaxLength = RC.policy.max_length,
    batch_size: Batch = RC.policy.batch_size, grad_accum: Accum = RC.policy.grad_accum,
    alpha: Annotated[float, typer.Option(help="RAHF step-2 alpha.")] = RC.rahf.alpha,
    scit_lr: Annotated[float | None, typer.Option(help="RAHF-SCIT step-2 lr. [default: 3e-4]"
                                                  )] = None,
    dual_lr: Annotated[float | None, typer.Option(help="RAHF-Dual step-2 lr. [default: 9e-6]"
                                                  )] = None,
    steer_coeff: Annotated[float, typer.Option(help="Steering coefficient.")
                           ] = RC.steer_coeff,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")
                       ] = ",".join(RAHF_METHODS),
    judge: Judge = RC.judge, task: Task = RC.task,
    eval_fraction: EvalFraction = RC.eval_fraction, train_sample: TrainSample = None,
    eval_limit: EvalLimit = RC.eval_limit,
    perplexity_pairs: Annotated[int, typer.Option(help="Held-out pairs of the perplexity.")
                                ] = RC.perplexity_pairs,
    temperatures: Annotated[str, typer.Option(help="Comma-separated temperatures.")
                            ] = ",".join(map(str, RC.temperatures)),
    max_new_tokens: PMaxNew = RC.max_new_tokens, seed: SeedOpt = RC.seed,
    device: DeviceOpt = RC.policy.device, threads: ThreadsOpt = None, as_json: JsonOpt = False,
) -> None:
    """RAHF-SCIT, RAHF-Dual and steering against SFT, Preferred-SFT, HIR and DPO: same
    split, settings and seed; reward scores, win rates vs SFT, a probe; one report.
    OUT/config.toml holds the settings (`--config` it to rerun).

    Example: `preflab experiment rahf hh.jsonl.gz --reward rm --train-sample 200 --out rahf`
    """
    from preflab.experiment.rahf_compare import rahf_compare

    config = nested_config(
        RAHFCompareConfig, ctx, config_file, {"policy": POLICY_OPTIONS, "rahf": RAHF_OPTIONS},
        temperatures=lambda t: floats(t, "--temperatures"),
        methods=lambda m: [x.strip() for x in m.split(",") if x.strip()])
    s = rahf_compare(data, out=out_dir, config=config)
    out.print((out_dir / "report.md").read_text())
    out.print(f"{s['seconds']:.0f} s")
    if as_json:
        print_json(s)


RM_OPTIONS = {"base": "base", "rm_epochs": "epochs", "rm_max_length": "max_length"}
RL_OPTIONS = {"rl_batch_size": "batch_size", "rl_beta": "beta"}


def _ns(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--n {text!r}: expected comma-separated integers, e.g. 1,2,4,8"
                         ) from None
    if not values or min(values) < 1:
        raise ValueError(f"--n {text!r}: every N must be at least 1")
    return values


@user_errors
def overoptimization_cmd(
    ctx: typer.Context,
    data: PairsArg,
    config_file: ConfigOpt = None, out_dir: OutDir = Path("overoptimization"),
    base: Annotated[str, typer.Option(help="Base of the train PM and the test PM.")
                    ] = OO.rm.base,
    policy: Annotated[str, typer.Option(help="The policy optimised against the train PM.")
                      ] = OO.policy,
    n: Annotated[str, typer.Option("--n", help="Comma-separated best-of-N values.")
                 ] = ",".join(map(str, OO.n)),
    rl_steps: Annotated[int, typer.Option(help="RL steps against the train PM (0: none).")
                        ] = OO.rl_steps,
    rl_checkpoints: Annotated[int, typer.Option(help="RL checkpoints scored.")
                              ] = OO.rl_checkpoints,
    rl_batch_size: Annotated[int, typer.Option(help="RL prompts per step.")
                             ] = OO.rl.batch_size,
    rl_beta: Annotated[float, typer.Option(help="RL KL coefficient.")] = OO.rl.beta,
    rm_epochs: Annotated[float, typer.Option(help="Epochs of each PM.")] = OO.rm.epochs,
    rm_max_length: Annotated[int, typer.Option(help="PM tokens per (context, reply).")
                             ] = OO.rm.max_length,
    prompts: Annotated[int, typer.Option(help="Held-out prompts optimised on.")
                       ] = OO.prompts,
    eval_fraction: EvalFraction = OO.eval_fraction, train_sample: TrainSample = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of best-of-N.")
                           ] = OO.temperature,
    max_new_tokens: PMaxNew = OO.max_new_tokens,
    batch_size: Annotated[int, typer.Option(help="Replies sampled at once.")
                          ] = OO.batch_size,
    seed: SeedOpt = OO.seed, device: DeviceOpt = OO.device, threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reward over-optimisation (Bai et al. 2022): a train PM and a test PM on the two
    halves of the data (split by prompt), best-of-N (and with --rl-steps, RL) against
    the train PM on held-out prompts, both PMs' scores against KL. Writes summary.json,
    curve.csv, curve.png and report.md; a rerun resumes. OUT/config.toml holds the
    settings (`--config` it to rerun; PM settings in its [rm] table, RL's in [rl]).

    Example: `preflab experiment overoptimization hh.jsonl.gz --n 1,2,4,8,16 --out oo`
    """
    from preflab.experiment.overoptimization.run import overoptimization

    config = nested_config(OverOptimizationConfig, ctx, config_file,
                           {"rm": RM_OPTIONS, "rl": RL_OPTIONS}, n=_ns)
    s = overoptimization(data, out_dir, config)
    out.print((out_dir / "report.md").read_text())
    out.print(f"{s['seconds']:.0f} s")
    if as_json:
        print_json(s)
