"""`preflab clean` and `preflab bench noise`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from preflab.clean.config import CleanConfig, NoiseBenchConfig
from preflab.cli.console import out, print_json, user_errors, warn
from preflab.cli.from_config import options_from
from preflab.cli.options import (
    AuditDirOpt,
    AuditedDataArg,
    JsonOpt,
    OutDirOpt,
    OverwriteOpt,
    RejectsOpt,
)


@user_errors
@options_from(CleanConfig)
def clean(
    data: AuditedDataArg,
    config: CleanConfig,
    audit_dir: AuditDirOpt,
    out_dir: OutDirOpt = Path("clean"),
    show_params: Annotated[bool, typer.Option(
        "--show-params", help="List the method's parameters and defaults, then exit.")] = False,
    rejects: RejectsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Keep, flip, remove or soft-relabel each audited pair, and say why.

    Writes the cleaned data, manifest.parquet (every input pair: action, reason,
    method, parameters, best-guess source of unreliability), summary.json and
    config.toml (`--config` it to rerun). A folder clean wrote before (it holds
    `.preflab-clean.json`) is written again; any other non-empty folder needs
    `--overwrite`. Data audited with `--on-error skip` is cleaned with it too (the
    same records are skipped).

    Example: `preflab clean hh.jsonl.gz --audit audit-hh --method sac --out hh-clean`
    """
    if show_params:
        from preflab.clean.methods import method_params, resolve_method

        print_json(method_params(resolve_method(config.method)[0]))
        return
    from preflab.clean.clean_pairs import clean as clean_fn  # streams: flat in memory

    summary = clean_fn(data, audit_dir, config, out=out_dir, overwrite=overwrite,
                       rejects=rejects, notify=warn)
    print_clean(summary)
    if as_json:
        print_json(summary)


def print_clean(summary: dict) -> None:
    """The cleaning run's console summary: actions, sources, recorded flips, review."""
    method = summary["method"]
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


@user_errors
@options_from(NoiseBenchConfig)
def bench_noise(
    data: Annotated[str, typer.Argument(help="Preference data; its labels count as truth.")],
    config: NoiseBenchConfig,
    out_dir: OutDirOpt = Path("bench-noise"),
    as_json: JsonOpt = False,
) -> None:
    """Inject label flips, audit, clean with every method; precision, recall, F1, pairs
    kept and the noise left among them. Writes config.toml (`--config` it to rerun).

    Example: `preflab bench noise harmless-base-test.jsonl.gz --rate 0.1,0.25 --methods all`
    """
    from preflab.clean.noise import bench_noise as bench_fn

    report = bench_fn(data, config, out=out_dir)
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
