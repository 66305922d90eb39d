"""Options shared by several commands, declared once: one name, one meaning, on
every command that has the option (the stages' settings are generated from their
dataclasses, :mod:`preflab.cli.from_config`)."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from preflab.committee.spec import preset_names
from preflab.engine.executor import ExecutorOptions
from preflab.settings import flag_of


class OnErrorChoice(StrEnum):
    fail = "fail"
    skip = "skip"


class Target(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"
    trl = "trl"
    hh = "hh"


OnErrorOpt = Annotated[OnErrorChoice, typer.Option(
    "--on-error", help="fail: stop at the first bad record; skip: record it and go on.")]


RejectsOpt = Annotated[Path | None, typer.Option(
    "--rejects", help="With --on-error skip: write every rejected record and its reason here.")]


FormatOpt = Annotated[str, typer.Option(
    "--format", help="Input format: auto (from content), hh, trl or preflab.")]


OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing output file, or write into a non-empty folder "
                        "this command did not write.")]


AllowEmptyOpt = Annotated[bool, typer.Option(
    "--allow-empty", help="Accept an input with no records (or no pairs) instead of failing.")]


# One name, one meaning, on every command that has the option.
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print the summary as one JSON object on the last line of stdout.")]


OutDirOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]


ModelOutOpt = Annotated[Path, typer.Option("--out", help="Output model folder.")]


PairsArg = Annotated[str, typer.Argument(help="Preference pairs.")]


TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]


ReplyBatchOpt = Annotated[int, typer.Option(help="Replies sampled at once.")]


SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]


ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", min=1, help="CPU threads for torch (default: torch's choice).")]


DeviceOpt = Annotated[str, typer.Option("--device", help="auto (cuda when present), cpu or cuda.")]


LimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Only the first N pairs.")]


SampleOpt = Annotated[int | None, typer.Option(
    "--sample", min=1, help="A seeded random sample of N pairs (in input order).")]


CommitteeOpt = Annotated[str, typer.Option(
    "--committee", help=f"Committee preset ({', '.join(preset_names())}) or a TOML file.")]


# Where scoring batches run: the fields of preflab.engine.executor.ExecutorOptions, by the
# option that sets each (--executor, --ray-address, --actors, --actor-cpus, --actor-gpus),
# for options_from(..., nested={"executor": EXECUTOR_OPTIONS}).
EXECUTOR_OPTIONS = {flag_of(f)[2:].replace("-", "_"): f.name for f in fields(ExecutorOptions)
                    if f.metadata.get("cli", True)}


def set_threads(threads: int | None) -> None:
    """``--threads N``: torch's CPU threads in this process (None: torch's choice). A
    committee member's own ``threads`` setting still applies while it runs."""
    if threads:
        import torch

        torch.set_num_threads(threads)


PConfig = Annotated[Path | None, typer.Option(
    "--config", help="TOML/JSON file of settings (a model's preflab-train.json works); "
                     "options given here override it.")]


PLoraR = Annotated[int | None, typer.Option("--lora-r", help="LoRA rank. [default: 16]")]


PDevice = Annotated[str | None, typer.Option("--device", help="auto, cpu or cuda.")]


ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="Resume an interrupted run from its last checkpoint in OUT.")]


PJson = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


PPrompts = Annotated[str, typer.Argument(help="Prompts: a pair file (its prompts) or JSON "
                                              "lines / Parquet with a 'prompt' field.")]


PLimit = Annotated[int | None, typer.Option("--limit", help="Use the first N prompts.")]


PMaxNew = Annotated[int, typer.Option("--max-new-tokens", help="Reply length limit.")]


PThreads = Annotated[int | None, typer.Option("--threads", help="CPU threads.")]


def ints(text: str | None, name: str) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{name} {text!r}: expected comma-separated layer numbers") from None


class Rm:
    """The reward-model training options: `preflab train-rm`'s, and `preflab eval-rm
    --split-halves`'s (it trains two). None: not given (the --config file's value, else
    the default)."""

    Config = PConfig  # these four are the policy trainers' options, one definition each
    LoraR = PLoraR
    Device = PDevice
    Threads = PThreads
    Limit = LimitOpt  # the pairs: the first N, a seeded sample (as on every command)
    Sample = SampleOpt

    Labels = Annotated[str | None, typer.Option(
        "--labels", help="hard (Bradley-Terry on chosen > rejected), soft (cross-entropy "
                         "against p_chosen, e.g. AI labels) or auto (soft if any p_chosen < 1).")]

    MaxLength = Annotated[int | None, typer.Option(
        "--max-length", help="Tokens per (context, reply); contexts lose their oldest tokens "
                             "first, a reply that does not fit is refused. [default: 512]")]

    Margin = Annotated[float | None, typer.Option(
        "--margin", help="Bradley-Terry margin m: -log sigmoid(r_c - r_r - m) (per pair: "
                         "meta.margin).")]

    SubsetWeight = Annotated[list[str] | None, typer.Option(
        "--subset-weight", help="SUBSET=W: loss weight of a subset, e.g. harmless-base=0.5 for "
                                "L = L_help + 0.5 L_harm (repeatable).")]

    Epochs = Annotated[float | None, typer.Option("--epochs", help="Epochs. [default: 2]")]

    Lr = Annotated[float | None, typer.Option(
        "--lr", help="Learning rate. [default: per head: 2e-5 bi-encoder, 1e-4 cls encoder, "
                     "1e-5 decoder (last token), 2e-4 with LoRA]")]

    Batch = Annotated[int | None, typer.Option("--batch-size", help="Pairs per step. "
                                                                    "[default: 8]")]

    Lora = Annotated[bool | None, typer.Option("--lora/--full", help="LoRA adapters (merged "
                                                                     "into the saved model) "
                                                                     "or full fine-tuning.")]

    Head = Annotated[str | None, typer.Option(
        "--head", help="Encoders: cls (a [CLS] cross-encoder), bi-encoder (context and reply "
                       "encoded alone, cosine head starting from the zero-shot cosine; loads "
                       "elsewhere with trust_remote_code) or auto: bi-encoder for a BERT "
                       "sentence-transformers folder pooled by the mean (the minilm-l6 preset; "
                       "hub ids are not inspected), else cls. [default: auto]")]

    TrainLayers = Annotated[int | None, typer.Option(
        "--train-layers", help="Train only the top N transformer layers and the head.")]

    Pad = Annotated[str | None, typer.Option(
        "--pad-token", help="Pad token for a tokenizer that has none ('eos' or a token).")]

    Seed = Annotated[int | None, typer.Option("--seed", help="Seed (head, order, split).")]


PromptLimitOpt = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Only the first N prompts. [default: all]")]
