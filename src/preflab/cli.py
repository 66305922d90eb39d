"""The ``preflab`` command line: parses arguments and calls library functions of the same names."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from preflab.audit.committee import CommitteeError
from preflab.errors import FieldError, FormatError, PairError
from preflab.models.presets import PresetMissing

app = typer.Typer(help="preflab: read, audit, clean, label and train on preference feedback.",
                  no_args_is_help=True, rich_markup_mode="markdown",
                  pretty_exceptions_enable=False)
models_app = typer.Typer(help="Offline model presets.", no_args_is_help=True)
data_app = typer.Typer(help="Built-in data.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that measure a method against its baselines.",
                        no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


class Target(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"
    trl = "trl"
    hh = "hh"


def user_errors(fn: F) -> F:
    """Show errors a user must fix as one clear line and exit 2, not as a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (PairError, FieldError, FormatError, PresetMissing, FileNotFoundError,
                KeyError, ValueError, CommitteeError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


OnErrorOpt = Annotated[OnErrorChoice, typer.Option(
    "--on-error", help="fail: stop at the first bad record; skip: record it and go on.")]
RejectsOpt = Annotated[Path | None, typer.Option(
    "--rejects", help="With --on-error skip: write every rejected record and its reason here.")]
FormatOpt = Annotated[str, typer.Option(
    "--format", help="Input format: auto (from content), hh, trl or preflab.")]


@app.command("inspect")
@user_errors
def inspect_cmd(
    data: Annotated[str, typer.Argument(help="File, datasets folder or hub dataset name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    tokenizer: Annotated[str | None, typer.Option(
        help="Tokenizer for token lengths: a preset, hub id or path; 'none' counts words."
    )] = "smollm2-135m-instruct",
    format: FormatOpt = "auto",
    on_error: OnErrorOpt = OnErrorChoice.skip,
    rejects: RejectsOpt = None,
) -> None:
    """Report what a preference file holds: pairs, rejects, subsets, lengths, problems.

    Bad records are counted and reported by reason (use `--on-error fail` to stop at
    the first).

    Example: `preflab inspect harmless-base-test.jsonl.gz --json`
    """
    from preflab.data.inspect import inspect

    tok = None if tokenizer in (None, "none") else tokenizer
    report = inspect(data, tokenizer=tok, format=format, on_error=on_error.value,
                     rejects_path=rejects, words_if_missing=True)
    if tok is not None and report["tokenizer"] == "whitespace":
        err.print(f"[yellow]warning:[/] tokenizer {tok} is not installed; counted words")
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title=f"{data} ({report['format']})", show_header=False)
    for key, value in report.items():
        if key in ("source", "format"):
            continue
        shown = (", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict)
                 else str(value))
        table.add_row(key, shown or "-")
    out.print(table)


@app.command()
@user_errors
def convert(
    src: Annotated[str, typer.Argument(help="Input file, datasets folder or hub name.")],
    dst: Annotated[Path, typer.Argument(help="Output file (.gz compresses JSONL).")],
    to: Annotated[Target | None, typer.Option(
        help="jsonl (preflab), parquet, trl (conversational) or hh (transcripts); "
             "default from the extension.")] = None,
    format: FormatOpt = "auto",
    on_error: OnErrorOpt = OnErrorChoice.fail,
    rejects: RejectsOpt = None,
    subset: Annotated[str | None, typer.Option(help="Subset for pairs that have none.")] = None,
) -> None:
    """Convert preference data between formats; pair ids stay the same.

    Example: `preflab convert harmless-base-test.jsonl.gz hh-trl.jsonl --to trl`
    """
    from preflab.data.convert import convert as convert_fn

    report = convert_fn(src, dst, to=to.value if to else None, format=format,
                        on_error=on_error.value, rejects_path=rejects, subset=subset)
    out.print(json.dumps(report))


@app.command()
@user_errors
def audit(
    data: Annotated[str, typer.Argument(help="Preference data (any format preflab reads).")],
    committee: Annotated[str, typer.Option(
        help="Committee preset (cpu, tiny, gold) or a TOML file.")] = "cpu",
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("audit"),
    limit: Annotated[int | None, typer.Option(help="Audit only the first N pairs.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Padded tokens per batch.")] = 4096,
    cache: Annotated[Path | None, typer.Option(
        help="Score cache (SQLite); default $PREFLAB_CACHE/scores.sqlite.")] = None,
    combine: Annotated[str, typer.Option(
        help="Committee probability: factor (members weighed by a one-factor model of "
             "their margins), stacked (weights fitted on the labels) or mean.")
    ] = "factor",
    seed: Annotated[int, typer.Option(help="Seed for folds and stacking.")] = 0,
) -> None:
    """Score every pair with a committee and report how many members agree with each label.

    Writes audit.parquet (per pair: each member's margin and vote, agreement, bin,
    the committee's P(chosen better)), summary.json and a self-contained report.html.
    Scores are cached on disk: an interrupted audit resumes where it stopped.

    Example: `preflab audit harmless-base-test.jsonl.gz --committee cpu --out audit-hh`
    """
    from preflab.audit.run import audit as audit_fn
    from preflab.engine import EngineOptions

    summary = audit_fn(data, committee=committee, out=out_dir, limit=limit, combine=combine,
                       seed=seed, engine_options=EngineOptions(max_tokens=max_tokens,
                                                               cache_path=cache))
    overall = summary["bins"]["overall"]
    table = Table("bin", "pairs", "share", title=f"audit of {summary['n_pairs']} pairs")
    for name, row in overall.items():
        table.add_row(name, str(row["count"]), f"{row['fraction']:.1%}")
    out.print(table)
    out.print(f"low or no agreement: [bold]{summary['low_or_no_agreement_fraction']:.1%}[/]")
    if "flip_detection_auc" in summary:
        out.print(f"flip detection AUC (committee): "
                  f"{summary['flip_detection_auc']['committee']:.3f}")
    out.print(f"report: {out_dir / 'report.html'}")


@app.command()
@user_errors
def clean(
    data: Annotated[str, typer.Argument(help="The preference data that was audited.")],
    audit_dir: Annotated[Path, typer.Option("--audit", help="Folder written by `preflab audit`.")],
    method: Annotated[str, typer.Option(
        help="sac, or a baseline: random, vote-all, vote-maj, reward-gap, judge, "
             "confident-learning, loss, ifd-gap; or a named variant such as vote-all-flip, "
             "sac-remove, sac-soft, sac-keep.")] = "sac",
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A method parameter as key=value (repeatable), e.g. "
                              "-p flip_p=0.1 -p action=flip.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("clean"),
    to: Annotated[Target | None, typer.Option(
        help="Output format; default: the input's.")] = None,
    show_params: Annotated[bool, typer.Option(
        "--show-params", help="List the method's parameters and defaults, then exit.")] = False,
) -> None:
    """Keep, flip, remove or soft-relabel each audited pair, and say why.

    Writes the cleaned data, manifest.parquet (every input pair: action, reason,
    method, parameters, best-guess source of unreliability) and summary.json.

    Example: `preflab clean hh.jsonl.gz --audit audit-hh --method sac --out hh-clean`
    """
    from preflab.clean.methods import method_params, parse_params, resolve_method
    from preflab.clean.run import clean as clean_fn

    if show_params:
        out.print(json.dumps(method_params(resolve_method(method)[0])))
        return
    params = parse_params(method, param or [])
    summary = clean_fn(data, audit_dir, method=method, params=params, out=out_dir,
                       to=to.value if to else None)
    table = Table("action", "pairs", title=f"{method} on {summary['n_input']} pairs")
    for action in ("keep", "flip", "remove", "relabel"):
        table.add_row(action, str(summary[action]))
    out.print(table)
    if summary["sources_of_changed_pairs"]:
        out.print("sources of changed pairs: " + ", ".join(
            f"{k} {v}" for k, v in summary["sources_of_changed_pairs"].items()))
    if "against_recorded_flips" in summary:
        m = summary["against_recorded_flips"]
        out.print(f"against the recorded flips: {m['flagged']} flagged, precision "
                  f"{m['precision'] if m['precision'] is None else round(m['precision'], 3)}, "
                  f"recall {m['recall']:.3f}, residual noise {m['residual_noise']:.1%} "
                  f"(was {m['noise_before']:.1%}), kept {m['kept_fraction']:.1%}")
    out.print(f"cleaned data: {summary['output']}")


@app.command("label")
@user_errors
def label_cmd(
    data: Annotated[str, typer.Argument(help="Preference data to label.")],
    judge: Annotated[str, typer.Option(help="The labeler: a causal-LM preset, folder or "
                                            "hub id, or the URL of an OpenAI-compatible "
                                            "server (e.g. `preflab serve`).")
                     ] = "smollm2-135m-instruct",
    task: Annotated[str, typer.Option(help="helpful, harmless (asks for the MORE harmful "
                                           "reply; the label is inverted) or summary.")
                    ] = "helpful",
    preamble: Annotated[str, typer.Option(help="base or detailed.")] = "base",
    shots: Annotated[int, typer.Option(help="Exemplars (seeded, drawn from pairs that are "
                                            "not labelled).")] = 0,
    template: Annotated[Path | None, typer.Option(
        help="TOML file overriding template keys (base, detailed, sample, ending, "
             "cot_ending, invert).")] = None,
    limit: Annotated[int | None, typer.Option(help="Label a seeded sample of N pairs.")
                     ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample, the exemplars and sampled "
                                           "rationales.")] = 0,
    cot: Annotated[bool, typer.Option(help="Chain of thought: the judge explains first "
                                           "(greedy), then is scored.")] = False,
    sc: Annotated[int, typer.Option(help="Self-consistency: sample K rationales (with "
                                         "--cot) and average the distributions.")] = 1,
    cot_tokens: Annotated[int, typer.Option(help="Longest rationale, in tokens.")] = 128,
    direct: Annotated[bool, typer.Option(help="Rate each reply 1-10 on its own (expected "
                                              "score on [-1, 1]) instead of comparing.")
                      ] = False,
    temperature: Annotated[float, typer.Option(help="Temperature of the --sc rationales.")
                           ] = 1.0,
    grid: Annotated[bool, typer.Option(help="Run base/detailed x 0/1/2-shot x without/with "
                                            "CoT on the sample and print the alignment "
                                            "table (Table 2 of the paper).")] = False,
    no_cot_grid: Annotated[bool, typer.Option("--no-cot-grid", help="Leave CoT out of "
                                              "--grid.")] = False,
    tokenizer: Annotated[str | None, typer.Option(
        help="HTTP judge: the tokenizer that renders its prompts (default: the served "
             "model's).")] = None,
    concurrency: Annotated[int, typer.Option(help="HTTP judge: requests in flight.")] = 4,
    timeout: Annotated[float, typer.Option(help="HTTP judge: seconds per request.")] = 120.0,
    retries: Annotated[int, typer.Option(help="HTTP judge: retries of a failed request.")
                       ] = 3,
    top_logprobs: Annotated[int, typer.Option(help="HTTP judge: top log-probs asked for "
                                                   "(the labels must be among them).")] = 20,
    write_data: Annotated[bool, typer.Option(
        help="Also write labelled.jsonl with p_chosen = the AI label.")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("labels"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (or grid) as "
                                                         "JSON on the last line.")] = False,
) -> None:
    """Label pairs with an LLM judge (log-prob soft labels, both orders averaged) and
    measure alignment with the human labels.

    Writes labels.parquet (id, p_ai, each order's P, consistency) and summary.json
    (alignment, position_consistency, first_position_rate, seconds).

    Example: `preflab label harmless-base-test.jsonl.gz --task harmless --limit 300 --grid`
    """
    from preflab.label.run import is_url, label_grid
    from preflab.label.run import label as label_fn

    http = {"tokenizer": tokenizer, "concurrency": concurrency, "timeout": timeout,
            "retries": retries, "top_logprobs": top_logprobs} if is_url(judge) else None
    common = dict(task=task, seed=seed, template=template, cot_tokens=cot_tokens,
                  temperature=temperature, sc=sc, http=http)
    if grid:
        frame = label_grid(data, judge, out=out_dir, limit=limit or 300, cot=not no_cot_grid,
                           **common)
        table = Table("prompt", "alignment", "position consistency", "first position",
                      "failed", title=f"{judge} on {limit or 300} pairs ({task})")
        for _, r in frame.iterrows():
            name = f"{r['preamble'].capitalize()}{' + CoT' if r['cot'] else ''} " \
                   f"{r['shots']}-shot"
            table.add_row(name, _pct(r["alignment"]), _pct(r["position_consistency"]),
                          _pct(r["first_position_rate"]), str(r["n_failed"]))
        out.print(table)
        if as_json:
            print(frame.to_json(orient="records"))
        return
    summary = label_fn(data, judge, out=out_dir, preamble=preamble, shots=shots, limit=limit,
                       cot=cot, write_data=write_data, direct=direct, **common)
    out.print(f"{summary['n_labelled']} of {summary['n_pairs']} pairs labelled by {judge} "
              f"({task}, {preamble}, {shots}-shot{', CoT' if cot else ''}"
              f"{f', SC {sc}' if sc > 1 else ''}): alignment with the human labels "
              f"{_pct(summary.get('alignment'))}, position consistency "
              f"{_pct(summary.get('position_consistency'))}, first position preferred "
              f"{_pct(summary.get('first_position_rate'))}")
    if summary["n_failed"]:
        out.print(f"[yellow]{summary['n_failed']} pairs got no label[/]: "
                  + "; ".join(f"{n} x {reason}" for reason, n in summary["failures"].items()))
    out.print(f"labels: {out_dir / 'labels.parquet'}")
    if as_json:
        print(json.dumps(summary))


def print_truncation(tokens: dict[str, Any], max_length: int) -> None:
    """What fitting sequences into --max-length did, when it did anything."""
    if tokens["reply_truncated"] or tokens["context_truncated"]:
        out.print(f"[yellow]truncated to --max-length {max_length}[/]: "
                  f"{tokens['context_truncated']} contexts lost their oldest tokens, "
                  f"{tokens['reply_truncated']} replies were cut")


# Reward-model settings shared by train-rm and eval-rm --split-halves. None = the value
# of --config FILE, else RewardConfig's default.
RmLabels = Annotated[str | None, typer.Option(
    "--labels", help="hard (Bradley-Terry on chosen > rejected), soft (cross-entropy "
                     "against p_chosen, e.g. AI labels) or auto (soft if any p_chosen < 1).")]
RmMaxLength = Annotated[int | None, typer.Option(
    "--max-length", help="Tokens per (context, reply); contexts lose their oldest tokens "
                         "first, a reply that does not fit is refused. [default: 512]")]
RmMargin = Annotated[float | None, typer.Option(
    "--margin", help="Bradley-Terry margin m: -log sigmoid(r_c - r_r - m) (per pair: "
                     "meta.margin).")]
RmSubsetWeight = Annotated[list[str] | None, typer.Option(
    "--subset-weight", help="SUBSET=W: loss weight of a subset, e.g. harmless-base=0.5 for "
                            "L = L_help + 0.5 L_harm (repeatable).")]
RmEpochs = Annotated[float | None, typer.Option("--epochs", help="Epochs. [default: 2]")]
RmLr = Annotated[float | None, typer.Option(
    "--lr", help="Learning rate. [default: 1e-4 encoders, 1e-5 decoders, 2e-4 LoRA]")]
RmBatch = Annotated[int | None, typer.Option("--batch-size", help="Pairs per step. "
                                                                  "[default: 8]")]
RmLora = Annotated[bool | None, typer.Option("--lora/--full", help="LoRA adapters (merged "
                                                                   "into the saved model) "
                                                                   "or full fine-tuning.")]
RmHead = Annotated[str | None, typer.Option(
    "--head", help="Encoders: cls (a [CLS] cross-encoder), bi-encoder (context and reply "
                   "encoded alone, cosine head starting from the zero-shot cosine; loads "
                   "elsewhere with trust_remote_code) or auto: bi-encoder for a BERT "
                   "sentence-transformers folder pooled by the mean (the minilm-l6 preset; "
                   "hub ids are not inspected), else cls. [default: auto]")]
RmLoraR = Annotated[int | None, typer.Option("--lora-r", help="LoRA rank. [default: 16]")]
RmTrainLayers = Annotated[int | None, typer.Option(
    "--train-layers", help="Train only the top N transformer layers and the head.")]
RmPad = Annotated[str | None, typer.Option(
    "--pad-token", help="Pad token for a tokenizer that has none ('eos' or a token).")]
RmSeed = Annotated[int | None, typer.Option("--seed", help="Seed (head, order, split).")]
RmConfig = Annotated[Path | None, typer.Option(
    "--config", help="TOML/JSON file of settings (a model's preflab-train.json works); "
                     "options given here override it.")]
RmThreads = Annotated[int | None, typer.Option("--threads", help="CPU threads.")]
RmDevice = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")]


def _rm_config(config_file: Path | None, subset_weight: list[str] | None = None,
               **given: Any) -> Any:
    """A RewardConfig from a file (if any) with the options the user gave on top."""
    from preflab.train.reward_model import RewardConfig

    overrides = {k: v for k, v in given.items() if v is not None}
    if subset_weight:
        weights = {}
        for item in subset_weight:
            name, _, value = item.partition("=")
            try:
                weights[name] = float(value)
            except ValueError:
                raise ValueError(f"--subset-weight {item!r}: expected SUBSET=NUMBER") from None
        overrides["subset_weights"] = weights
    if config_file is not None:
        return RewardConfig.from_file(config_file, **overrides)
    return RewardConfig(**overrides)


@app.command("train-rm")
@user_errors
def train_rm_cmd(
    data: Annotated[str, typer.Argument(help="Preference pairs to train on.")],
    base: Annotated[str | None, typer.Option(
        help="Base model: a causal LM (reward at the last token) or an encoder; preset, "
             "folder or hub id. [default: minilm-l6]")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output model folder.")
                       ] = Path("reward-model"),
    config_file: RmConfig = None,
    labels: RmLabels = None,
    max_length: RmMaxLength = None,
    margin: RmMargin = None,
    subset_weight: RmSubsetWeight = None,
    epochs: RmEpochs = None,
    lr: RmLr = None,
    batch_size: RmBatch = None,
    lora: RmLora = None,
    head: RmHead = None,
    lora_r: RmLoraR = None,
    train_layers: RmTrainLayers = None,
    pad_token: RmPad = None,
    pmp: Annotated[str | None, typer.Option(
        help="Preference-model pretraining: train on this comparison set first, then "
             "fine-tune on DATA.")] = None,
    pmp_epochs: Annotated[float | None, typer.Option(help="Epochs of --pmp. [default: 1]")
                          ] = None,
    seed: RmSeed = None,
    device: RmDevice = None,
    threads: RmThreads = None,
    resume: Annotated[bool, typer.Option(help="Resume an interrupted run from its last "
                                              "checkpoint in OUT.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
) -> None:
    """Train a scalar reward model (Bradley-Terry, soft labels, weights, PMP); the output
    folder loads with `AutoModelForSequenceClassification`.

    Example: `preflab train-rm train.jsonl --base minilm-l6 --out rm`
    """
    from preflab.train.reward_model import train_rm

    config = _rm_config(config_file, subset_weight, base=base, labels=labels,
                        max_length=max_length, margin=margin, epochs=epochs,
                        learning_rate=lr, batch_size=batch_size, lora=lora, lora_r=lora_r,
                        head=head,
                        train_layers=train_layers, pad_token=pad_token, pmp=pmp,
                        pmp_epochs=pmp_epochs, seed=seed, device=device, threads=threads)
    summary = train_rm(data, out_dir, config, resume=resume)
    last = summary["stages"][-1]
    out.print(f"reward model: {out_dir} ({config.base}, {last['labels']} labels, "
              f"{last['n_pairs']} pairs, {last['steps']} steps, final train loss "
              f"{last['train_loss']}, {last['seconds']:.0f} s)")
    print_truncation(last["tokens"], config.max_length)
    if as_json:
        print(json.dumps(summary, default=str))


@app.command("eval-rm")
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
    config_file: RmConfig = None,
    labels: RmLabels = None,
    max_length: RmMaxLength = None,
    epochs: RmEpochs = None,
    lr: RmLr = None,
    batch_size: RmBatch = None,
    lora: RmLora = None,
    head: RmHead = None,
    train_layers: RmTrainLayers = None,
    pad_token: RmPad = None,
    seed: RmSeed = None,
    device: RmDevice = None,
    threads: RmThreads = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
) -> None:
    """Evaluate a reward model: pairwise accuracy (overall and per subset), calibration
    (ECE, reliability diagram), score distributions; or the split-halves study.

    Example: `preflab eval-rm rm test.jsonl --out rm-eval`
    """
    from preflab.eval.reward_model import eval_rm
    from preflab.eval.reward_model import split_halves as split_halves_fn

    if split_halves:
        config = _rm_config(config_file, base=model, labels=labels, max_length=max_length,
                            epochs=epochs, learning_rate=lr, batch_size=batch_size, lora=lora,
                            head=head,
                            train_layers=train_layers, pad_token=pad_token, seed=seed,
                            device=device, threads=threads)
        summary = split_halves_fn(data, out_dir or Path("split-halves"), config,
                                  test_fraction=test_fraction, seed=config.seed, bins=bins)
        out.print(f"{summary['n_held_out']} held-out pairs: PM A accuracy "
                  f"{_pct(summary['pm_a']['accuracy'])} (ECE {summary['pm_a']['ece']:.3f}), "
                  f"PM B {_pct(summary['pm_b']['accuracy'])} (ECE "
                  f"{summary['pm_b']['ece']:.3f}); they agree on "
                  f"{_pct(summary['agreement'])}, Spearman {summary['spearman_margin']:.3f}, "
                  f"JS divergence {summary['js_divergence']:.4f}")
    else:
        summary = eval_rm(model, data, out=out_dir, max_length=max_length, bins=bins,
                          device=device or "auto", threads=threads)
        per = ", ".join(f"{k} {_pct(v['accuracy'])}" for k, v in summary["per_subset"].items())
        out.print(f"{model} on {summary['n_pairs']} pairs: accuracy "
                  f"{_pct(summary['accuracy'])}, ECE {summary['ece']:.3f}, log loss "
                  f"{summary['log_loss']:.3f}" + (f" ({per})" if per else ""))
    if out_dir is not None:
        out.print(f"report: {out_dir / 'report.html'}")
    if as_json:
        print(json.dumps(summary, default=str))


@app.command()
@user_errors
def split(
    data: Annotated[str, typer.Argument(help="Preference pairs to split.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train.jsonl and "
                                                        "test.jsonl.")] = Path("split"),
    test_fraction: Annotated[float, typer.Option(help="Share of pairs held out.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
) -> None:
    """Split pairs into a seeded random train and test part; pairs with the same
    prompt stay on one side, so no test prompt was trained on.

    Example: `preflab split harmless-base-test.jsonl.gz --test-fraction 0.5 --out hh-split`
    """
    from preflab.data.split import split as split_fn

    out.print(json.dumps(split_fn(data, out_dir, test_fraction=test_fraction, seed=seed)))


@app.command()
@user_errors
def serve(
    model: Annotated[str, typer.Argument(help="A causal-LM preset, folder or hub id.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    served_name: Annotated[str | None, typer.Option(
        help="Model name the API reports (default: MODEL).")] = None,
    quiet: Annotated[bool, typer.Option(help="Do not log requests.")] = False,
    max_logprobs: Annotated[int, typer.Option(help="Most top log-probs a request may ask "
                                                   "for.")] = 20,
) -> None:
    """Serve a local model over the OpenAI-compatible API a judge needs (/v1/completions
    with logprobs, /v1/chat/completions, /v1/models), so a team can share one judge:
    `preflab label DATA --judge http://HOST:PORT`.

    Prints `serving MODEL at http://HOST:PORT/v1` once it accepts requests.
    """
    from preflab.engine.serve import make_server

    server = make_server(model, host, port, served_name=served_name, quiet=quiet,
                         max_logprobs=max_logprobs)
    bound_host, bound_port = server.server_address[:2]
    print(f"serving {served_name or model} at http://{bound_host}:{bound_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.1%}"


@bench_app.command("noise")
@user_errors
def bench_noise(
    data: Annotated[str, typer.Argument(help="Preference data; its labels count as truth.")],
    rate: Annotated[str, typer.Option(help="Flip rates, comma-separated.")] = "0.1,0.25",
    methods: Annotated[str, typer.Option(help="all, or comma-separated method variants.")
                       ] = "all",
    committee: Annotated[str, typer.Option(help="Committee preset or TOML file.")] = "cpu",
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("bench-noise"),
    seed: Annotated[int, typer.Option(help="Seed of the injected flips and the audit.")] = 0,
    pairs: Annotated[int | None, typer.Option(help="Use only the first N pairs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as one JSON "
                                                         "object on the last line.")] = False,
) -> None:
    """Inject label flips, audit, clean with every method; precision, recall, F1, pairs
    kept and the noise left among them.

    Example: `preflab bench noise harmless-base-test.jsonl.gz --rate 0.1,0.25 --methods all`
    """
    from preflab.clean.noise import bench_noise as bench_fn

    rates = [float(r) for r in rate.split(",") if r.strip()]
    report = bench_fn(data, rates=rates, methods=methods, committee=committee, out=out_dir,
                      seed=seed, limit=pairs)
    for r, by in report["results"].items():
        auc = (report["audits"][r]["flip_detection_auc"] or {}).get("committee")
        title = f"{float(r):.0%} injected flips, {report['n_pairs']} pairs" + (
            f" (committee flip AUC {auc:.3f})" if auc is not None else "")
        table = Table("method", "flagged", "precision", "recall", "F1", "kept",
                      "residual noise", title=title)
        table.columns[0].no_wrap = True
        fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        for m, row in by.items():
            if "error" in row:
                table.add_row(m, "-", "-", "-", "-", "-", row["error"][:60])
                continue
            table.add_row(m, str(row["flagged"]), fmt(row["precision"], ".3f"),
                          fmt(row["recall"], ".3f"), fmt(row["f1"], ".3f"),
                          fmt(row["kept_fraction"], ".1%"), fmt(row["residual_noise"], ".1%"))
        out.print(table)
    out.print(f"written: {out_dir / 'noise.csv'}, {out_dir / 'noise.png'}")
    if as_json:
        keys = ("precision", "recall", "f1", "kept_fraction", "residual_noise")
        print(json.dumps({r: {m: {k: row[k] for k in keys} if "error" not in row else row
                              for m, row in by.items()}
                          for r, by in report["results"].items()}))


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the offline model presets, whether installed and prepared.

    Example: `preflab models list`
    """
    from preflab.models.presets import PRESETS, is_prepared, prepared_dir

    rows = [{"name": p.name, "kind": p.kind, "package": p.package,
             "installed": p.package_version() is not None,
             "prepared": p.package_version() is not None and is_prepared(p.name),
             "path": str(prepared_dir(p.name)) if p.gguf else "(inside the package)",
             "install": p.install, "license": p.license, "description": p.description}
            for p in PRESETS.values()]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("name", "kind", "installed", "prepared", "license", "install")
    for r in rows:
        table.add_row(r["name"], r["kind"], "yes" if r["installed"] else "no",
                      "yes" if r["prepared"] else "no", r["license"], r["install"])
    out.print(table)


@models_app.command("prepare")
@user_errors
def models_prepare(
    name: Annotated[str, typer.Argument(help="Preset name (see `preflab models list`).")],
    force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False,
) -> None:
    """Convert a preset once into the cache ($PREFLAB_CACHE), then time a load from it.

    Example: `preflab models prepare smollm2-135m-instruct`
    """
    import time

    from preflab.models.presets import PRESETS, load_causal_lm, prepare

    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    started = time.perf_counter()
    path = prepare(name, force=force)
    prepared = time.perf_counter() - started
    report: dict[str, Any] = {"preset": name, "path": str(path),
                              "prepare_seconds": round(prepared, 2)}
    if PRESETS[name].kind == "causal-lm":
        # Time the imports (once per process, paid by any transformers program)
        # apart from loading the weights out of the cache.
        started = time.perf_counter()
        from transformers import AutoConfig, AutoModelForCausalLM

        AutoModelForCausalLM._model_mapping[type(AutoConfig.from_pretrained(path))]
        report["import_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        load_causal_lm(name)
        report["load_seconds"] = round(time.perf_counter() - started, 2)
    out.print(json.dumps(report))


@data_app.command("demo")
@user_errors
def data_demo(
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.jsonl, .parquet).")],
    n: Annotated[int, typer.Option("--n", help="Number of pairs.")] = 2000,
    flip_rate: Annotated[float, typer.Option(help="Fraction of labels flipped.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    negatives: Annotated[str, typer.Option(
        help="Rejected reply: 'other' (from another conversation) or 'later' (harder: a "
             "later message of the same speaker).")] = "other",
    max_turns: Annotated[int, typer.Option(help="Turns of context kept in the prompt.")] = 6,
) -> None:
    """Build demo preference data with known truth from real conversations.

    Example: `preflab data demo --out demo.jsonl --n 2000 --flip-rate 0.25`
    """
    from preflab.data.demo import demo

    report = demo(out_path, n=n, flip_rate=flip_rate, seed=seed,
                  negatives=negatives, max_turns=max_turns)  # type: ignore[arg-type]
    out.print(json.dumps(report))


import preflab.cli_policy  # noqa: E402, F401  (registers sft, dpo, ...; it imports cli_rahf)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="preflab")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
