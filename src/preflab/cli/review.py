"""`preflab review init | serve | export`: people judge the pairs the committee doubts."""

from __future__ import annotations

import errno
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from preflab.cli.common import (
    JsonOpt,
    OnErrorChoice,
    OnErrorOpt,
    OutDirOpt,
    OverwriteOpt,
    SeedOpt,
    err,
    out,
    print_json,
    user_errors,
    warn,
)

DbArg = Annotated[Path, typer.Argument(help="The review project (an SQLite file).")]


class Strata(StrEnum):
    bin = "bin"
    source = "source"


@user_errors
def review_init(
    data: Annotated[str, typer.Argument(help="The preference data that was audited.")],
    audit_dir: Annotated[Path, typer.Option("--audit", help="Folder written by `preflab audit`.")],
    db: Annotated[Path, typer.Option("--db", help="The review project to create or add to.")
                  ] = Path("review.sqlite"),
    sample: Annotated[int | None, typer.Option(
        "--sample", min=1, help="Review N pairs: the lowest-agreement N, or with --strata a "
                                "seeded sample spread over the strata.")] = None,
    strata: Annotated[Strata | None, typer.Option(
        help="Draw --sample evenly per audit bin or per audit source.")] = None,
    per_pair: Annotated[int, typer.Option(
        "--per-pair", min=1, help="Reviewers per pair.")] = 3,
    reviewers: Annotated[str, typer.Option(
        help="Reviewer names, comma-separated (new ones get a token).")] = "",
    seed: SeedOpt = 0,
    on_error: OnErrorOpt = OnErrorChoice.fail,
    as_json: JsonOpt = False,
) -> None:
    """Choose the pairs people review, assign each to --per-pair reviewers and print one
    access token per new reviewer (shown once: the project keeps only a hash).

    Default: every pair in the none and low agreement bins. Run again on the same --db to
    add pairs or reviewers; nothing already judged changes.

    Example: `preflab review init hh.jsonl.gz --audit audit-hh --db review.sqlite
    --sample 30 --strata bin --reviewers alice,bob,carol`
    """
    from preflab.review.project import init_review

    result = init_review(data, audit_dir, db, sample=sample,
                         strata=strata.value if strata else None, per_pair=per_pair,
                         reviewers=reviewers.split(","), seed=seed, on_error=on_error.value,
                         notify=warn)
    out.print(f"{'created' if result['created'] else 'updated'} {result['db']}: "
              f"{result['pairs']} pairs ({result['pairs_added']} new), "
              f"{len(result['reviewers'])} reviewers, {result['assignments']} assignments "
              f"({result['assignments_added']} new)", highlight=False)
    if result["tokens"]:
        out.print("access links (after the server's address; give each reviewer theirs, "
                  "they are not shown again):", highlight=False)
        for name, token in result["tokens"].items():  # one line each, never cut
            out.print(f"  {escape(name)}  /?token={token}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)


@user_errors
def review_serve(
    db: DbArg,
    host: Annotated[str, typer.Option(help="Address to listen on (others than 127.0.0.1 "
                                           "expose the project to the network).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8765,
    secure_cookie: Annotated[bool, typer.Option(
        "--secure-cookie", help="Mark the login cookie Secure (behind an HTTPS proxy).")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="Do not log requests.")] = False,
) -> None:
    """Serve the reviewers' page. Each reviewer opens http://HOST:PORT/?token=THEIRS.

    Prints `serving review at http://HOST:PORT` once it accepts requests; SIGINT or
    SIGTERM stops it. Every vote is committed to the project as it arrives.

    Example: `preflab review serve review.sqlite --port 8765`
    """
    from preflab.review.server import is_loopback, make_server

    if not is_loopback(host):
        warn(f"--host {host}: the review page is reachable from other machines; anyone who "
             "can see the traffic can read tokens unless an HTTPS proxy is in front "
             "(then add --secure-cookie)")
    try:
        server = make_server(db, host, port, quiet=quiet, banner=True,
                             secure_cookie=secure_cookie)
    except OSError as e:
        if isinstance(e, FileNotFoundError | PermissionError):
            raise
        message = (f"port {port} is already in use on {host}; pick another with --port"
                   if e.errno == errno.EADDRINUSE else f"cannot listen on {host}:{port}: {e}")
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    server.serve_forever()


@user_errors
def review_export(
    db: DbArg,
    out_dir: OutDirOpt = Path("review-export"),
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """People's consensus per pair (mapped back to chosen/rejected), Fleiss kappa overall
    and per audit bin, each reviewer's agreement, choice and source shares, and the
    committee's bins against people: reviews.parquet, votes.parquet, summary.json,
    report.html. `preflab clean --review OUT` then acts on the consensus.

    Example: `preflab review export review.sqlite --out review-export`
    """
    from preflab.review.export import export_review

    summary = export_review(db, out_dir, overwrite=overwrite)
    k = summary["fleiss_kappa"]["overall"]
    out.print(f"{summary['n_pairs']} pairs, {summary['n_judgements']} judgements "
              f"({summary['n_vote_rows']} rows), Fleiss kappa {k['kappa']} over "
              f"{k['n_pairs']} pairs", highlight=False)
    table = Table("verdict", "pairs (consensus)", "share of judgements")
    for v, share in summary["choice_shares"].items():
        table.add_row(v, str(summary["consensus"][v]), f"{share:.1%}")
    table.add_row("no majority", str(summary["consensus"]["no_majority"]), "")
    out.print(table)
    out.print(f"written: {out_dir / 'reviews.parquet'}, {out_dir / 'summary.json'}, "
              f"{out_dir / 'report.html'}", highlight=False)
    if as_json:
        print_json(summary)
