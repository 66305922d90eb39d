"""`preflab audit`: score every pair with a committee and report agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Column, Table

from preflab.audit.config import AuditConfig
from preflab.cli.console import out, print_json, user_errors, warn
from preflab.cli.from_config import options_from
from preflab.cli.options import (
    JsonOpt,
    OutDirOpt,
    OverwriteOpt,
    RejectsOpt,
)


@user_errors
@options_from(AuditConfig)
def audit(
    data: Annotated[str, typer.Argument(help="Preference data (any format preflab reads).")],
    config: AuditConfig,
    out_dir: OutDirOpt = Path("audit"),
    rejects: RejectsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    plan: Annotated[bool, typer.Option(
        "--plan", help="Print what the run would cost per member (parameters, memory, "
                       "tokens after deduplication and prefix sharing, time on "
                       "--plan-device) without loading any weights, and stop.")] = False,
    plan_device: Annotated[str, typer.Option(
        help="Device the --plan times are for: h200, h100, a100-80gb, a100-40gb, l40s, "
             "cpu.")] = "h200",
) -> None:
    """Score every pair with a committee and report how many members agree with each label.

    Writes audit.parquet (per pair: each member's margin and vote, agreement, bin,
    the committee's P(chosen better)), summary.json, config.toml (`--config` it to
    rerun) and a self-contained report.html. Scores are cached on disk: an interrupted
    audit resumes where it stopped. A folder audit wrote before (it holds
    `.preflab-audit.json`) is written again; any other non-empty folder needs
    `--overwrite`. `--on-error skip` skips bad records (counted in the summary, listed
    in `--rejects FILE`).

    Example: `preflab audit harmless-base-test.jsonl.gz --committee cpu --out audit-hh`
    """
    from preflab.models.runtime import set_threads

    set_threads(config.threads)
    if plan:
        from preflab.committee.plan import plan_audit

        result = plan_audit(data, committee=config.committee, limit=config.limit,
                            device=plan_device, max_batch_tokens=config.max_tokens)
        out.print(plan_table(result))
        if as_json:
            print_json(result)
        return
    from preflab.api.audit import audit as audit_fn

    summary = audit_fn(data, config, out=out_dir, rejects=rejects, overwrite=overwrite,
                       notify=warn).summary
    print_audit(summary, out_dir)
    if as_json:
        print_json(summary)


def print_audit(summary: dict, out_dir: Path) -> None:
    """The audit's console summary: bins, voters, members, warnings, verdict, files."""
    from preflab.audit.report import FLAGGED_CSV, shown_bins, voters_line

    overall = summary["bins"]["overall"]
    failed = (f" ({summary['n_failed']} more FAILED: {summary['failures']})"
              if summary.get("n_failed") else "")
    table = Table("bin", "pairs", "share", title=f"audit of {summary['n_pairs']} pairs{failed}")
    for name in shown_bins(overall):
        table.add_row(name, str(overall[name]["count"]), f"{overall[name]['fraction']:.1%}")
    out.print(table)
    out.print(escape(voters_line(summary)), highlight=False)
    out.print(f"low or no agreement: [bold]{summary['low_or_no_agreement_fraction']:.1%}[/]")
    members = Table(Column("member", no_wrap=True), "agrees\nwith labels", "sign-test\nz",
                    "estimated\naccuracy", "orientation", "weight",
                    title=f"members (combine={summary['committee_probability']['method']}"
                          + (", fitted on people" if summary["committee_probability"]
                             .get("fitted_on") == "people" else "") + ")")
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for name, d in summary["member_diagnostics"].items():
        members.add_row(name, fmt(d["agreement_with_labels"], ".1%"),
                        fmt(d["sign_test_z"], "+.1f"), fmt(d["estimated_accuracy"], ".1%"),
                        f"{d.get('orientation', 1):+d}", fmt(d["weight"], ".3f")
                        + (f" [{d['weight_interval'][0]:.2f}, {d['weight_interval'][1]:.2f}]"
                           if d.get("weight_interval") else ""))
    out.print(members)
    out.print("orientation -1: the committee counts the member turned round; weight: its "
              "share of the verdict in that direction", highlight=False)
    for warning in summary["member_warnings"]:
        warn(warning)
    if "verdict" in summary:
        out.print(f"[bold]can this committee be trusted here?[/] "
                  f"{escape(summary['verdict']['text'])}", highlight=False)
    repeats = summary["repeats"]
    if repeats["duplicate_pairs"] or repeats["shared_groups"]:
        out.print(f"{repeats['duplicate_pairs']} exact duplicate pairs; "
                  f"{repeats['pairs_in_shared_groups']} pairs share a prompt or a reply with "
                  f"another ({repeats['shared_groups']} groups): each group stays "
                  "in one cross-fitting fold")
    if "flip_detection_auc" in summary:
        out.print(f"flip detection AUC (committee): "
                  f"{summary['flip_detection_auc']['committee']:.3f}")
    if summary.get("people"):
        print_people(summary["people"])
    out.print(f"report: {out_dir / 'report.html'}")
    out.print(f"flagged pairs (the committee doubts them): {out_dir / FLAGGED_CSV}")


def print_people(people: dict) -> None:
    """The audit against people's reviews: agreement with people and with the labels,
    and whether the committee's doubt predicts people's disagreement."""
    from preflab.audit.people import people_auc_lines, people_rows

    table = Table(Column("", no_wrap=True), "agrees with people\n[95% CI] (n)",
                  "agrees\nwith labels",
                  title=f"against people ({people['n_decided']} of {people['n_reviewed']} "
                        "reviewed pairs decided chosen or rejected)")
    for row in people_rows(people):
        table.add_row(*(escape(x) for x in row))
    out.print(table)
    for line in people_auc_lines(people):
        out.print(escape(line), highlight=False)


def plan_table(plan: dict) -> Table:
    """The ``--plan`` table: one row per member and the total."""
    def num(x: float | None, fmt: str) -> str:
        return "?" if x is None else format(x, fmt)

    table = Table("member", "params", "GiB", "tokens", "shared", f"min on {plan['device']}",
                  "notes", title=f"plan: committee {plan['committee']} on {plan['pairs']} pairs",
                  caption=f"~: tokens estimated at {plan['chars_per_token_estimate']:g} "
                          f"characters per token (no tokenizer offline). params: "
                          f"d = declared in the committee, c = from the config. GiB: weights "
                          f"+ one batch's KV cache. {plan['assumptions']}")
    for m in plan["members"]:
        memory = None if m["weights_gib"] is None else m["weights_gib"] + (m["kv_gib"] or 0)
        tokens = ("~" if m["tokens_estimated"] else "") + f"{m['tokens']:,}"
        source = {"declared": " d", "config (offline)": " c"}.get(m["params_source"], "")
        params = "-" if m["params_source"] == "none" else num(
            m["params"] and m["params"] / 1e9, ".2f") + "B" + source
        minutes = num(m["seconds"] and m["seconds"] / 60, ".1f") \
            if m["runs_on"] == "this device" else m["runs_on"]
        notes = [n for n in m["notes"] if not n.startswith("tokens estimated")]
        table.add_row(m["name"], params, num(memory, ".1f"), tokens,
                      "yes" if m["prefix_sharing"] else "no", minutes, "; ".join(notes))
    total = plan["total"]
    table.add_row("total", "", f"{total['peak_memory_gib']:.1f} peak", f"{total['tokens']:,}",
                  "", num(total["seconds"] and total["seconds"] / 60, ".1f"), "")
    return table
