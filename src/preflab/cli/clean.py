"""`preflab clean` and `preflab bench noise`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from preflab.cli.console import (
    out,
    print_json,
    user_errors,
    warn,
)
from preflab.cli.options import (
    CommitteeOpt,
    JsonOpt,
    OnErrorChoice,
    OnErrorOpt,
    OutDirOpt,
    OverwriteOpt,
    RejectsOpt,
    Target,
)


class Uncertain(StrEnum):
    keep = "keep"
    remove = "remove"


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
    out_dir: OutDirOpt = Path("clean"),
    to: Annotated[Target | None, typer.Option(
        help="Output format; default: the input's.")] = None,
    show_params: Annotated[bool, typer.Option(
        "--show-params", help="List the method's parameters and defaults, then exit.")] = False,
    on_error: OnErrorOpt = OnErrorChoice.fail,
    rejects: RejectsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    review: Annotated[Path | None, typer.Option(
        "--review", help="Folder written by `preflab review export`: where people reached a "
                         "consensus it overrides the method (reason 'human review').")] = None,
    uncertain: Annotated[Uncertain, typer.Option(
        help="With --review: keep or remove the pairs people judged uncertain.")
    ] = Uncertain.keep,
    min_votes: Annotated[int | None, typer.Option(
        "--min-votes", min=1,
        help="With --review: votes a pair needs before people's verdict counts. "
             "[default: the quorum the export was made with; its default: a strict "
             "majority of the reviewers assigned to the pair, 2 of 3]")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1,
        help="Clean only the first N pairs, as `preflab audit --limit N` audited them "
             "(an audit made with --limit is cleaned that way without it).")] = None,
) -> None:
    """Keep, flip, remove or soft-relabel each audited pair, and say why.

    Writes the cleaned data, manifest.parquet (every input pair: action, reason,
    method, parameters, best-guess source of unreliability) and summary.json. A folder
    clean wrote before (it holds `.preflab-clean.json`) is written again; any other
    non-empty folder needs `--overwrite`. Data audited with `--on-error skip` is
    cleaned with it too (the same records are skipped).

    Example: `preflab clean hh.jsonl.gz --audit audit-hh --method sac --out hh-clean`
    """
    from preflab.clean.clean_pairs import clean as clean_fn
    from preflab.clean.methods import method_params, parse_params, resolve_method

    if show_params:
        print_json(method_params(resolve_method(method)[0]))
        return
    params = parse_params(method, param or [])
    summary = clean_fn(data, audit_dir, method=method, params=params, out=out_dir,
                       to=to.value if to else None, on_error=on_error.value, rejects=rejects,
                       overwrite=overwrite, notify=warn, review=review,
                       uncertain=uncertain.value, min_votes=min_votes, limit=limit)
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
    if "human_review" in summary:
        h = summary["human_review"]
        out.print(f"human review: {h['with_consensus']} of {h['reviewed']} reviewed pairs with "
                  f"a consensus ({', '.join(f'{a} {n}' for a, n in h['actions'].items())}); "
                  f"{h['changed_from_method']} differ from {method}; {h['below_quorum']} "
                  f"below quorum, {h['no_majority']} without a majority (left to {method}); "
                  f"{h['quorum']}", highlight=False)
    out.print(f"cleaned data: {summary['output']}")
    if as_json:
        print_json(summary)


@user_errors
def bench_noise(
    data: Annotated[str, typer.Argument(help="Preference data; its labels count as truth.")],
    rate: Annotated[str, typer.Option(help="Flip rates, comma-separated.")] = "0.1,0.25",
    methods: Annotated[str, typer.Option(help="all, or comma-separated method variants.")
                       ] = "all",
    committee: CommitteeOpt = "cpu",
    out_dir: OutDirOpt = Path("bench-noise"),
    seed: Annotated[int, typer.Option(help="Seed of the injected flips and the audit.")] = 0,
    pairs: Annotated[int | None, typer.Option(min=1, help="Use only the first N pairs.")] = None,
    as_json: JsonOpt = False,
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
        print_json({r: {m: {k: row[k] for k in keys} if "error" not in row else row
                        for m, row in by.items()}
                    for r, by in report["results"].items()})
