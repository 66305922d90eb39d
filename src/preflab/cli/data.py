"""Commands that read, convert, inspect, split and build preference data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from preflab.cli.console import (
    out,
    print_json,
    user_errors,
    warn,
)
from preflab.cli.options import (
    AllowEmptyOpt,
    FormatOpt,
    JsonOpt,
    OnErrorChoice,
    OnErrorOpt,
    OverwriteOpt,
    RejectsOpt,
    SeedOpt,
    Target,
)

# numpy's generators take no negative seeds
DataSeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Random seed.")]


@user_errors
def inspect_cmd(
    data: Annotated[str, typer.Argument(help="File, datasets folder or hub dataset name.")],
    as_json: JsonOpt = False,
    tokenizer: Annotated[str | None, typer.Option(
        help="Tokenizer for token lengths: a preset, hub id or path; 'none' counts words."
    )] = "smollm2-135m-instruct",
    format: FormatOpt = "auto",
    on_error: OnErrorOpt = OnErrorChoice.skip,
    rejects: RejectsOpt = None,
    max_tokens: Annotated[int | None, typer.Option(
        min=1, help="Count prompts and replies longer than this many tokens.",
        show_default="the tokenizer's model_max_length when it has a real one")] = None,
    allow_empty: AllowEmptyOpt = False,
) -> None:
    """Report what a preference file holds: pairs, rejects, subsets, lengths, problems.

    Bad records are counted and reported by reason (use `--on-error fail` to stop at
    the first). An input with no records is an error unless `--allow-empty`.

    Example: `preflab inspect harmless-base-test.jsonl.gz --json`
    """
    from preflab.data.inspect import inspect
    from preflab.models.offline import OfflineModelMissing, load_tokenizer

    name = None if tokenizer in (None, "none") else tokenizer
    tok = None
    if name is not None:
        try:
            tok = load_tokenizer(name)
        except OfflineModelMissing:
            warn(f"tokenizer {name} is not installed; counted words")
    report = inspect(data, tokenizer=tok, tokenizer_name=name if tok is not None else None,
                     format=format, on_error=on_error.value, rejects_path=rejects,
                     max_tokens=max_tokens if max_tokens is not None else "auto",
                     allow_empty=allow_empty)
    if as_json:
        print_json(report)
        return
    table = Table(title=escape(f"{data} ({report['format']})"), show_header=False)
    for key, value in report.items():
        if key in ("source", "format"):
            continue
        shown = (", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict)
                 else "-" if value is None else str(value))
        table.add_row(key, escape(shown or "-"))
    out.print(table)


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
    overwrite: OverwriteOpt = False,
    allow_empty: AllowEmptyOpt = False,
) -> None:
    """Convert preference data between formats; pair ids stay the same.

    An existing output (or rejects file) is replaced only with `--overwrite`; an input
    with no records, or none that became a pair, is an error unless `--allow-empty`.

    Example: `preflab convert harmless-base-test.jsonl.gz hh-trl.jsonl --to trl`
    """
    from preflab.data.convert import convert as convert_fn

    report = convert_fn(src, dst, to=to.value if to else None, format=format,
                        on_error=on_error.value, rejects_path=rejects, subset=subset,
                        overwrite=overwrite, allow_empty=allow_empty)
    print_json(report)


@user_errors
def split(
    data: Annotated[str, typer.Argument(help="Preference pairs to split.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train.jsonl and "
                                                        "test.jsonl.")] = Path("split"),
    test_fraction: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of pairs held out (strictly between 0 and 1).")] = 0.5,
    seed: DataSeedOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Split pairs into a seeded random train and test part; pairs with the same
    prompt stay on one side, so no test prompt was trained on.

    Rerunning into a folder split wrote before (it holds `.preflab-split.json`)
    replaces its train.jsonl and test.jsonl; any other non-empty folder needs
    `--overwrite`.

    Example: `preflab split harmless-base-test.jsonl.gz --test-fraction 0.5 --out hh-split`
    """
    from preflab.data.split import split as split_fn

    print_json(split_fn(data, out_dir, test_fraction=test_fraction, seed=seed,
                        overwrite=overwrite))


@user_errors
def data_demo(
    out_path: Annotated[Path, typer.Option("--out", help="Output file (.jsonl, .parquet).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of pairs.")] = 2000,
    flip_rate: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Fraction of labels flipped.")] = 0.25,
    seed: SeedOpt = 0,
    negatives: Annotated[str, typer.Option(
        help="Rejected reply: 'other' (from another conversation) or 'later' (harder: a "
             "later message of the same speaker).")] = "other",
    max_turns: Annotated[int, typer.Option(
        min=1, help="Turns of context kept in the prompt.")] = 6,
    overwrite: OverwriteOpt = False,
) -> None:
    """Build demo preference data with known truth from real conversations.

    An existing output file is replaced only with `--overwrite`.

    Example: `preflab data demo --out demo.jsonl --n 2000 --flip-rate 0.25`
    """
    from preflab.data.demo import demo

    report = demo(out_path, n=n, flip_rate=flip_rate, seed=seed, negatives=negatives,
                  max_turns=max_turns, overwrite=overwrite)  # type: ignore[arg-type]
    print_json(report)
