"""`preflab audit`: score every pair with a committee and report agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from preflab.cli.common import (
    CommitteeOpt,
    JsonOpt,
    LimitOpt,
    OnErrorChoice,
    OnErrorOpt,
    OutDirOpt,
    OverwriteOpt,
    RejectsOpt,
    out,
    print_json,
    user_errors,
    warn,
)


@user_errors
def audit(
    data: Annotated[str, typer.Argument(help="Preference data (any format preflab reads).")],
    committee: CommitteeOpt = "cpu",
    out_dir: OutDirOpt = Path("audit"),
    limit: LimitOpt = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Padded tokens per batch.")] = 4096,
    cache: Annotated[Path | None, typer.Option(
        help="Score cache (SQLite); default $PREFLAB_CACHE/scores.sqlite.")] = None,
    combine: Annotated[str, typer.Option(
        help="Committee probability (near-collinear members merged first): stacked "
             "(weights fitted on the other folds' labels, cross-fitted), selected (the "
             "same after forward selection), latent (latent-truth model, no labels), "
             "factor (one-factor model) or mean.")
    ] = "stacked",
    seed: Annotated[int, typer.Option(help="Seed for folds and stacking.")] = 0,
    on_error: OnErrorOpt = OnErrorChoice.fail,
    rejects: RejectsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Score every pair with a committee and report how many members agree with each label.

    Writes audit.parquet (per pair: each member's margin and vote, agreement, bin,
    the committee's P(chosen better)), summary.json and a self-contained report.html.
    Scores are cached on disk: an interrupted audit resumes where it stopped. A folder
    audit wrote before (it holds `.preflab-audit.json`) is written again; any other
    non-empty folder needs `--overwrite`. `--on-error skip` skips bad records (counted
    in the summary, listed in `--rejects FILE`).

    Example: `preflab audit harmless-base-test.jsonl.gz --committee cpu --out audit-hh`
    """
    from preflab.audit.audit_pairs import audit as audit_fn
    from preflab.engine import EngineOptions

    summary = audit_fn(data, committee=committee, out=out_dir, limit=limit, combine=combine,
                       seed=seed, engine_options=EngineOptions(max_tokens=max_tokens,
                                                               cache_path=cache),
                       on_error=on_error.value, rejects=rejects, overwrite=overwrite,
                       notify=warn)
    overall = summary["bins"]["overall"]
    table = Table("bin", "pairs", "share", title=f"audit of {summary['n_pairs']} pairs")
    for name, row in overall.items():
        table.add_row(name, str(row["count"]), f"{row['fraction']:.1%}")
    out.print(table)
    out.print(f"low or no agreement: [bold]{summary['low_or_no_agreement_fraction']:.1%}[/]")
    members = Table("member", "agrees with labels", "estimated accuracy", "weight",
                    title=f"members (combine={summary['committee_probability']['method']})")
    for name, d in summary["member_diagnostics"].items():
        members.add_row(name, f"{d['agreement_with_labels']:.1%}",
                        f"{d['estimated_accuracy']:.1%}", f"{d['weight']:+.3f}")
    out.print(members)
    for warning in summary["member_warnings"]:
        warn(warning)
    repeats = summary["repeats"]
    if repeats["duplicate_pairs"] or repeats["repeated_prompt_groups"]:
        out.print(f"{repeats['duplicate_pairs']} exact duplicate pairs; "
                  f"{repeats['pairs_in_repeated_prompt_groups']} pairs share a prompt with "
                  f"another ({repeats['repeated_prompt_groups']} prompts): each group stays "
                  "in one cross-fitting fold")
    if "flip_detection_auc" in summary:
        out.print(f"flip detection AUC (committee): "
                  f"{summary['flip_detection_auc']['committee']:.3f}")
    out.print(f"report: {out_dir / 'report.html'}")
    if as_json:
        print_json(summary)
