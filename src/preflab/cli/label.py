"""`preflab label`: AI-feedback labels from a judge."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from preflab.cli.console import (
    out,
    pct,
    print_json,
    user_errors,
    warn,
)
from preflab.cli.from_config import options_from
from preflab.cli.options import (
    EXECUTOR_OPTIONS,
    JsonOpt,
    OutDirOpt,
    OverwriteOpt,
    RejectsOpt,
)
from preflab.label.config import LabelConfig

if TYPE_CHECKING:
    import pandas as pd


@user_errors
@options_from(LabelConfig, nested={"executor": EXECUTOR_OPTIONS})
def label_cmd(
    data: Annotated[str, typer.Argument(help="Preference data to label.")],
    config: LabelConfig,
    out_dir: OutDirOpt = Path("labels"),
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    rejects: RejectsOpt = None,
) -> None:
    """Label pairs with an LLM judge (log-prob soft labels, both orders averaged) and
    measure alignment with the human labels.

    Writes labels.parquet (id, p_ai, each order's P, consistency), summary.json
    (alignment; alignment_chosen_first / _second, each order alone, whose gap is
    position bias; position_consistency, first_position_rate, seconds) and config.toml
    (`--config OUT/config.toml` reruns it). A folder label wrote before is written
    again; any other non-empty folder needs `--overwrite`. `--on-error skip` skips bad
    records (counted, listed in `--rejects FILE`).

    Example: `preflab label harmless-base-test.jsonl.gz --task harmless --sample 300 --grid`
    """
    from preflab.api.label import label, label_grid

    if config.grid:
        grid = label_grid(data, config, out=out_dir, overwrite=overwrite, rejects=rejects,
                          notify=warn)
        _print_grid(grid.table, grid.config)
        if as_json:
            print(grid.table.to_json(orient="records"))
        return
    result = label(data, config, out=out_dir, overwrite=overwrite, rejects=rejects,
                   notify=warn)
    _print_summary(result.summary, config, out_dir)
    if as_json:
        print_json(result.summary)


def _print_grid(frame: pd.DataFrame, config: LabelConfig) -> None:
    table = Table("prompt", "alignment", "position consistency", "first position",
                  "failed", title=f"{config.judge} on {config.sample or config.limit} pairs "
                                  f"({config.task})")
    for _, r in frame.iterrows():
        name = f"{r['preamble'].capitalize()}{' + CoT' if r['cot'] else ''} " \
               f"{r['shots']}-shot"
        table.add_row(name, pct(r["alignment"]), pct(r["position_consistency"]),
                      pct(r["first_position_rate"]), str(r["n_failed"]))
    out.print(table)


def _print_summary(summary: dict[str, Any], config: LabelConfig, out_dir: Path) -> None:
    c = config
    out.print(f"{summary['n_labelled']} of {summary['n_pairs']} pairs labelled by {c.judge} "
              f"({c.task}, {c.preamble}, {c.shots}-shot{', CoT' if c.cot else ''}"
              f"{f', SC {c.sc}' if c.sc > 1 else ''}): alignment with the human labels "
              f"{pct(summary.get('alignment'))}, position consistency "
              f"{pct(summary.get('position_consistency'))}, first position preferred "
              f"{pct(summary.get('first_position_rate'))}")
    if summary.get("alignment_chosen_first") is not None:
        out.print(f"alignment of each order alone: {pct(summary['alignment_chosen_first'])} "
                  f"with the chosen reply shown first, {pct(summary['alignment_chosen_second'])}"
                  " shown second (the gap is position bias; both orders are averaged)")
    _print_truncation(summary)
    if summary["n_failed"]:
        out.print(f"[yellow]{summary['n_failed']} pairs got no label[/]: "
                  + "; ".join(f"{n} x {reason}" for reason, n in summary["failures"].items()))
    out.print(f"labels: {out_dir / 'labels.parquet'}")


def _print_truncation(summary: dict[str, Any]) -> None:
    """How the prompts computed in this run were fitted into the judge, if they were."""
    if summary.get("context_truncated"):
        budget = summary["context_budget"]
        cap = budget["max_context_tokens"]
        out.print(f"[yellow]{summary['context_truncated']} conversations were shortened[/] "
                  f"to what --max-length {budget['max_length']} leaves beside the template "
                  f"and the replies{f' (at most {cap} tokens)' if cap else ''}: kept "
                  f"{escape(summary['context_kept'])}")
    if summary.get("truncated"):
        out.print(f"[yellow]{summary['truncated']} prompts were over --max-length[/] "
                  f"{summary['context_budget']['max_length']} even so and lost their start")
