"""Options shared by several commands, declared once: one name, one meaning, on
every command that has the option (the stages' settings are generated from their
dataclasses, :mod:`preflab.cli.from_config`)."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

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


# What clean and review read beside an audit.
AuditedDataArg = Annotated[str, typer.Argument(help="The preference data that was audited.")]


AuditDirOpt = Annotated[Path, typer.Option("--audit", help="Folder written by `preflab audit`.")]


SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]


# Where scoring batches run: the fields of preflab.engine.executor.ExecutorOptions, by the
# option that sets each (--executor, --ray-address, --actors, --actor-cpus, --actor-gpus),
# for options_from(..., nested={"executor": EXECUTOR_OPTIONS}).
EXECUTOR_OPTIONS = {flag_of(f)[2:].replace("-", "_"): f.name for f in fields(ExecutorOptions)
                    if f.metadata.get("cli", True)}


ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="Resume an interrupted run from its last checkpoint in OUT.")]


PromptsArg = Annotated[str, typer.Argument(help="Prompts: a pair file (its prompts) or JSON "
                                                "lines / Parquet with a 'prompt' field.")]
