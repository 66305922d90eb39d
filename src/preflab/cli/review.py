"""`preflab review init | add-pairs | add-reviewers | tokens | status | serve | export`:
people judge the pairs the committee doubts."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from preflab.cli.console import err, out, print_json, user_errors, warn
from preflab.cli.from_config import options_from
from preflab.cli.options import (
    AuditDirOpt,
    AuditedDataArg,
    JsonOpt,
    OutDirOpt,
    OverwriteOpt,
)
from preflab.review.config import ReviewConfig

DbArg = Annotated[Path, typer.Argument(help="The review project (an SQLite file).")]
MinVotesOpt = Annotated[int | None, typer.Option(
    "--min-votes", min=1, help="Votes a pair needs before people's verdict counts.",
    show_default="a strict majority of the reviewers assigned to it, 2 of 3")]
PerPairOpt = Annotated[int | None, typer.Option(
    "--per-pair", min=1, show_default="the project's",
    help="Top every pair up to K reviewers (the project's from now on); raise it to give "
         "new reviewers pairs that are full.")]


@user_errors
@options_from(ReviewConfig)
def review_init(
    data: AuditedDataArg,
    config: ReviewConfig,
    audit_dir: AuditDirOpt,
    db: Annotated[Path, typer.Option("--db", help="The review project to create.")
                  ] = Path("review.sqlite"),
    as_json: JsonOpt = False,
) -> None:
    """Choose the pairs people review, assign each to --per-pair reviewers and print one
    access token per new reviewer (shown once: the project keeps only a hash).

    Default: every pair in the none and low agreement bins. An existing --db is refused:
    add to a project with `preflab review add-pairs` and `preflab review add-reviewers`.
    The settings are written beside the project (DB.config.toml; `--config` it with
    another --db to choose and assign the same pairs).

    Example: `preflab review init hh.jsonl.gz --audit audit-hh --db review.sqlite
    --sample 30 --strata bin --reviewers alice,bob,carol`
    """
    from preflab.review.project import init_review

    result = init_review(data, audit_dir, db, config, notify=warn)
    _print_counts("created", result)
    out.print(f"settings: {result['config']}", highlight=False, soft_wrap=True)
    _print_links(result["tokens"])
    if as_json:
        print_json(result)


def _print_counts(what: str, result: dict) -> None:
    out.print(f"{what} {result['db']}: {result['pairs']} pairs ({result['pairs_added']} new), "
              f"{len(result['reviewers'])} reviewers, {result['assignments']} assignments "
              f"({result['assignments_added']} new), {result['per_pair']} reviewers per pair",
              highlight=False)


def _print_links(tokens: dict[str, str]) -> None:
    if tokens:
        out.print("access links (after the server's address; give each reviewer theirs, "
                  "they are not shown again):", highlight=False)
        for name, token in tokens.items():  # one line each, never cut
            out.print(f"  {escape(name)}  /?token={token}", highlight=False, soft_wrap=True)


@user_errors
@options_from(ReviewConfig, skip=("reviewers",))
def review_add_pairs(
    data: AuditedDataArg,
    config: ReviewConfig,
    audit_dir: AuditDirOpt,
    db: Annotated[Path, typer.Option("--db", help="The review project to add to.")
                  ] = Path("review.sqlite"),
    per_pair: PerPairOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add pairs to a review project, chosen as `review init` chooses them (pairs already
    in it are never chosen again), each assigned to --per-pair of its reviewers.

    Example: `preflab review add-pairs hh.jsonl.gz --audit audit-hh --db review.sqlite
    --sample 20 --select active` (a round of the pairs whose verdict would move the
    committee most; see --select)
    """
    from preflab.review.project import add_pairs

    result = add_pairs(data, audit_dir, db, config, per_pair=per_pair)
    _print_counts("updated", result)
    if as_json:
        print_json(result)


@user_errors
def review_add_reviewers(
    db: DbArg,
    reviewers: Annotated[str, typer.Option(
        help="New reviewer names, comma-separated (each gets a token).")],
    per_pair: PerPairOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add reviewers to a review project; no pair is added. Each pair is topped up to
    --per-pair reviewers, the least loaded reviewer first (so the new ones take the free
    places); nothing assigned or judged changes.

    Example: `preflab review add-reviewers review.sqlite --reviewers dave --per-pair 4`
    """
    from preflab.review.project import add_reviewers

    result = add_reviewers(db, reviewers.split(","), per_pair=per_pair, notify=warn)
    _print_counts("updated", result)
    out.print("new reviewers' pairs: " + ", ".join(
        f"{escape(n)} {k}" for n, k in result["assigned_to"].items()), highlight=False)
    _print_links(result["tokens"])
    if as_json:
        print_json(result)


@user_errors
def review_tokens(
    db: DbArg,
    reissue: Annotated[str, typer.Option(
        "--reissue", help="The reviewer who gets a new access link (their old one stops "
                          "working).")],
    as_json: JsonOpt = False,
) -> None:
    """Replace a reviewer's access token (a lost or leaked link): the new link is printed
    once; the old token, and any browser logged in with it, is refused (401).

    Example: `preflab review tokens review.sqlite --reissue alice`
    """
    from preflab.review.project import reissue_token

    token = reissue_token(db, reissue)
    out.print(f"{escape(reissue)}: new access link; the old one no longer works",
              highlight=False)
    _print_links({reissue: token})
    if as_json:
        print_json({"reviewer": reissue, "token": token})


@user_errors
def review_status(
    db: DbArg,
    min_votes: MinVotesOpt = None,
    pairs: Annotated[bool, typer.Option(
        "--pairs/--no-pairs", help="List every pair (votes, quorum, missing votes).")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Where a review stands: per reviewer the pairs assigned and judged and when they
    were last seen; per pair its votes against its quorum.

    Example: `preflab review status review.sqlite`
    """
    from preflab.review.project import review_status as status_fn

    result = status_fn(db, min_votes)
    rows = result["pair_status"]
    out.print(f"{result['db']}: {result['pairs']} pairs, {len(result['reviewers'])} reviewers, "
              f"{result['per_pair']} per pair; {result['pairs_at_quorum']} pairs at quorum, "
              f"{result['pairs_with_consensus']} with a consensus, {result['votes_missing']} "
              "votes missing", highlight=False)
    table = Table("reviewer", "assigned", "judged", "open", "last seen")
    for r in result["reviewer_status"]:
        table.add_row(escape(r["reviewer"]), str(r["assigned"]), str(r["judged"]),
                      str(r["open"]), (r["last_seen"] or "never")[:19].replace("T", " "))
    out.print(table)
    if pairs and rows:
        table = Table("pair", "bin", "assigned", "votes", "quorum", "missing", "consensus")
        table.columns[0].min_width = max(len(r["pair_id"]) for r in rows)  # ids whole
        for r in rows:
            table.add_row(escape(r["pair_id"]), r["bin"], str(r["assigned"]), str(r["votes"]),
                          str(r["quorum"]), str(r["votes_missing"]), r["consensus"] or "-")
        out.print(table)
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
    session_days: Annotated[float, typer.Option(
        "--session-days", min=0.001, help="How long a reviewer stays logged in (the cookie "
                                          "survives a browser restart).")] = 30.0,
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
                             secure_cookie=secure_cookie, session_days=session_days)
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
    min_votes: MinVotesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """People's consensus per pair (mapped back to chosen/rejected), Fleiss kappa overall
    and per audit bin, each reviewer's agreement, choice and source shares, and the
    committee's bins against people: reviews.parquet, votes.parquet, summary.json,
    report.html. A pair's consensus needs its quorum (--min-votes; by default a strict
    majority of its assigned reviewers); each pair's missing votes are in reviews.parquet.
    `preflab clean --review OUT` then acts on the consensus.

    Example: `preflab review export review.sqlite --out review-export`
    """
    from preflab.review.export import export_review

    summary = export_review(db, out_dir, overwrite=overwrite, min_votes=min_votes)
    k = summary["fleiss_kappa"]["overall"]
    out.print(f"{summary['n_pairs']} pairs, {summary['n_judgements']} judgements "
              f"({summary['n_vote_rows']} rows), Fleiss kappa {k['kappa']} over "
              f"{k['n_pairs']} pairs", highlight=False)
    table = Table("verdict", "pairs (consensus)", "share of judgements")
    for v, share in summary["choice_shares"].items():
        table.add_row(v, str(summary["consensus"][v]), f"{share:.1%}")
    table.add_row("no majority", str(summary["consensus"]["no_majority"]), "")
    table.add_row("below quorum", str(summary["consensus"]["below_quorum"]), "")
    out.print(table)
    c = summary["consensus"]
    agreed = sum(c[v] for v in summary["choice_shares"])
    out.print(f"{agreed} pairs with a consensus; {c['below_quorum']} below their quorum "
              f"({summary['votes_missing']} votes missing; {summary['quorum_rule']})",
              highlight=False)
    if c["below_quorum"]:
        from preflab.review.export import missing_votes

        short = missing_votes(out_dir)
        table = Table("pair", "votes", "quorum", "missing", title="pairs below quorum")
        table.columns[0].overflow = "fold"
        for r in short[:20]:
            table.add_row(escape(r["pair_id"]), str(r["n_votes"]), str(r["quorum"]),
                          str(r["votes_missing"]))
        out.print(table)
        if len(short) > 20:
            out.print(f"... and {len(short) - 20} more (reviews.parquet, column "
                      "votes_missing)", highlight=False)
    out.print(f"written: {out_dir / 'reviews.parquet'}, {out_dir / 'summary.json'}, "
              f"{out_dir / 'report.html'}", highlight=False)
    if as_json:
        print_json(summary)
