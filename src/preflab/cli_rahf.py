"""``preflab rahf``, ``hir``, ``steer``, ``probe`` and ``experiment rahf``: representation
alignment and its baselines (registered on the main app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from preflab.cli import app, out, user_errors
from preflab.cli_policy import (
    PAccum,
    PBatch,
    PConfig,
    PDevice,
    PEpochs,
    PJson,
    PLimit,
    PLora,
    PLr,
    PMaxLength,
    PMaxNew,
    PPrompts,
    PResume,
    PSeed,
    _policy_config,
    _report,
    experiment_app,
)


def _ints(text: str | None, name: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{name} {text!r}: expected comma-separated layer numbers") from None


PLayers = Annotated[str | None, typer.Option(
    "--layers", help="Comma-separated layers (1 = output of the first block). [default: "
                     "RAHF's, scaled to the model's depth]")]


@app.command("rahf")
@user_errors
def rahf_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    variant: Annotated[str, typer.Option(help="scit (one model, contrastive instruction "
                                              "tuning) or dual (preferred + dispreferred "
                                              "models).")] = "scit",
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
    step1_epochs: Annotated[float | None, typer.Option("--step1-epochs")] = None,
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
    resume: PResume = True, as_json: PJson = False,
) -> None:
    """Representation alignment (RAHF): a preference-aware model (step 1), then LoRA
    trained to move the base's hidden states by alpha * (good - bad) (step 2).

    Example: `preflab rahf train.jsonl --variant dual --good-model sft --out rahf-dual`
    """
    from preflab.train.rahf import RAHFConfig, train_rahf

    given = {"variant": variant, "base": base, "layers": _ints(layers, "--layers"),
             "alpha": alpha, "learning_rate": lr, "step1_learning_rate": step1_lr,
             "epochs": epochs, "step1_epochs": step1_epochs, "lora_r": lora_r,
             "lora_targets": lora_targets.split(",") if lora_targets else None,
             "scit_model": scit_model, "good_model": good_model, "bad_model": bad_model,
             "max_length": max_length, "batch_size": batch_size, "grad_accum": grad_accum,
             "seed": seed, "device": device}
    given = {k: v for k, v in given.items() if v is not None}
    config = (RAHFConfig.from_file(config_file, **given) if config_file
              else RAHFConfig(**given))
    s = train_rahf(data, out_dir, config, resume=resume)
    log = s["log"]
    out.print(f"rahf-{config.variant}: {out_dir} (layers {s['rahf']['layers']}, "
              f"{s['steps']} steps, {s['seconds']:.0f} s): distance to target "
              f"{log[0]['distance_ratio']:.3f} -> {log[-1]['distance_ratio']:.3f} of the "
              f"shift (mean shift {log[-1]['target_shift']:.2f})" if log else str(out_dir))
    if as_json:
        print(json.dumps(s, default=str))


@app.command("hir")
@user_errors
def hir_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    base: Annotated[str | None, typer.Option(
        help="Model to fine-tune. [default: smollm2-135m-instruct]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder.")] = Path("hir"),
    config_file: PConfig = None, max_length: PMaxLength = None, epochs: PEpochs = None,
    lr: PLr = None, batch_size: PBatch = None, grad_accum: PAccum = None, lora: PLora = None,
    seed: PSeed = None, device: PDevice = None, resume: PResume = True,
    as_json: PJson = False,
) -> None:
    """HIR baseline: SFT with hindsight-relabelled instructions (good instruction before
    chosen replies, bad before rejected ones); sample with `--instruction good`.

    Example: `preflab hir train.jsonl --lora --out hir`
    """
    from preflab.train.scit import train_hir

    config = _policy_config(config_file, policy=base, max_length=max_length, epochs=epochs,
                            learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
                            lora=lora, seed=seed, device=device)
    _report(train_hir(data, out_dir, config, resume=resume), as_json)


steer_app = typer.Typer(help="Steering vectors: extract from preference pairs, generate "
                             "with one.", no_args_is_help=True)
app.add_typer(steer_app, name="steer")


@steer_app.command("extract")
@user_errors
def steer_extract(
    data: Annotated[str, typer.Argument(help="Preference pairs.")],
    model: Annotated[str, typer.Option(help="Model to steer.")] = "smollm2-135m-instruct",
    out_file: Annotated[Path, typer.Option("--out", help="Vector file (.safetensors).")
                        ] = Path("steering.safetensors"),
    layers: PLayers = None,
    stimulus: Annotated[str, typer.Option(
        help="instruction (chosen reply after the good vs the bad instruction) or reply "
             "(chosen vs rejected reply).")] = "instruction",
    limit: Annotated[int | None, typer.Option("--limit", help="Use a seeded sample of N "
                                                              "pairs.")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per prompt+reply.")] = 512,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Extract a steering vector: per layer, the first principal direction of the
    good-minus-bad activation differences over reply tokens (no training).

    Example: `preflab steer extract train.jsonl --out harmless.safetensors`
    """
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.engine.steering import extract_steering
    from preflab.label.run import sample_pairs

    pairs = sample_pairs(list(iter_pairs(load_pairs(data))), limit, seed)
    v = extract_steering(model, pairs, _ints(layers, "--layers"), stimulus, max_length,
                         device=device, source=data)
    v.save(out_file)
    info = ", ".join(f"{k}: explained {x['explained']:.2f}, scale {x['scale']:.2f}"
                     for k, x in v.meta["layers"].items())
    out.print(f"steering vector from {len(pairs)} pairs -> {out_file} (layers {info})")


@steer_app.command("generate")
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
    from preflab.engine.generate import Sampling
    from preflab.engine.models import Runtime
    from preflab.engine.steering import SteeringVector
    from preflab.eval.winrate import write_generations

    items = load_prompts(prompts, limit)
    from preflab.engine.policy import Policy

    policy = Policy(model, Runtime(device=device), steering=SteeringVector.load(vector),
                    coeff=coeff)
    replies = [r[0] for r in policy.generate([p.messages for p in items],
                                             [p.id for p in items], 1,
                                             Sampling(max_new_tokens, temperature), seed)]
    write_generations(items, replies, out_file)
    out.print(f"{len(items)} replies with {vector} x {coeff} -> {out_file}")


@app.command("probe")
@user_errors
def probe_cmd(
    train: Annotated[str, typer.Argument(help="Pairs to fit the probe on.")],
    heldout: Annotated[str, typer.Argument(help="Pairs to report it on.")],
    model: Annotated[str, typer.Option(help="Model whose activations are probed.")
                     ] = "smollm2-135m-instruct",
    layers: Annotated[str | None, typer.Option("--layers", help="Layers to try. [default: "
                                                                "all]")] = None,
    train_limit: Annotated[int | None, typer.Option(help="Seeded sample of N train pairs."
                                                    )] = None,
    heldout_limit: Annotated[int | None, typer.Option(help="Seeded sample of N held-out "
                                                           "pairs.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("probe"),
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

    s = probe(model, train, heldout, out_dir, _ints(layers, "--layers"), train_limit,
              heldout_limit, max_length, seed=seed, device=device)
    m = s["heldout"]
    out.print(f"layer {s['selected_layer']} (CV accuracy {m['cv_accuracy']:.3f}); "
              f"{s['pairs']['heldout']['pairs']} held-out pairs: accuracy {m['accuracy']:.3f}, "
              f"precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, "
              f"AUC {m['auc']:.3f}, pairwise {m['pairwise_accuracy']:.3f}")
    if as_json:
        print(json.dumps(s))


@experiment_app.command("rahf")
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
    from preflab.cli_policy import _floats
    from preflab.experiment.rahf_compare import rahf_compare
    from preflab.train.policy import PolicyConfig
    from preflab.train.rahf import RAHFConfig

    config = PolicyConfig(policy=policy, lora=True, epochs=epochs, max_length=max_length,
                          batch_size=batch_size, grad_accum=grad_accum, seed=seed,
                          device=device)
    rahf = RAHFConfig(alpha=alpha, learning_rate=scit_lr)
    s: dict[str, Any] = rahf_compare(
        data, reward, out_dir, config, rahf, dual_lr, steer_coeff, judge, task,
        eval_fraction, train_limit, eval_limit,
        temperatures=_floats(temperatures, "--temperatures"), max_new_tokens=max_new_tokens,
        methods=[m.strip() for m in methods.split(",") if m.strip()], seed=seed)
    out.print((out_dir / "report.md").read_text())
    out.print(f"{s['seconds']:.0f} s")
