"""A self-contained HTML report of an audit: plots embedded, no network needed."""

from __future__ import annotations

import csv
import html
import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.people import people_auc_lines, people_rows
from preflab.audit.stats import member_names, voter_names
from preflab.audit.table import BIN_NAMES, UNSCORED
from preflab.figures import png as _png

BIN_TEXT = {
    "none": "no voter agrees with the human label",
    "low": "at most a quarter of the voters agree",
    "mixed": "the committee is split",
    "high": "at least three quarters agree",
    "unanimous": "every voter agrees",
    "unscored": "no member scored the pair (left out of review and cleaning)",
}
BIN_COLORS = {"none": "#b2182b", "low": "#ef8a62", "mixed": "#bababa", "high": "#67a9cf",
              "unanimous": "#2166ac", "unscored": "#dddddd"}


def shown_bins(overall: dict[str, Any]) -> list[str]:
    """The bins a table of counts shows: every agreement bin, and ``unscored`` when some
    pair is in it."""
    return [b for b in BIN_NAMES if b in overall and (b != UNSCORED or overall[b]["count"])]


def _figures(table: pd.DataFrame, summary: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = member_names(table)
    m = len(voter_names(table))  # not a row's count: a pair may miss a voter's score
    figs: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(6, 3))
    votes = table.loc[table["bin"] != UNSCORED, "votes"]  # an unscored pair has no votes
    counts = np.bincount(votes.to_numpy(dtype=int), minlength=m + 1)
    ax.bar(range(m + 1), counts, color="#4477aa")
    ax.set_xlabel(f"voters agreeing with the human label (of {m})")
    ax.set_ylabel("pairs")
    ax.set_xticks(range(m + 1))
    figs["votes"] = _png(fig)

    subsets = sorted(summary["bins"]["by_subset"])
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.45 * len(subsets)))
    left = np.zeros(len(subsets))
    for b in shown_bins(summary["bins"]["overall"]):
        frac = np.array([summary["bins"]["by_subset"][s][b]["fraction"] for s in subsets])
        ax.barh(subsets, frac, left=left, color=BIN_COLORS[b], label=b)
        left += frac
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of pairs")
    ax.legend(ncol=6, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.02))
    figs["bins"] = _png(fig)

    matrix = np.array([[np.nan if (x := summary["member_agreement_matrix"][a][b]) is None
                        else x for b in names] for a in names], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(names), 1 + 0.6 * len(names)))
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    figs["matrix"] = _png(fig)

    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        margin = table[f"margin.{name}"].to_numpy()
        margin = margin[np.isfinite(margin)]
        if "flipped" in table:
            flipped = table["flipped"].to_numpy()[np.isfinite(table[f"margin.{name}"])]
            ax.hist([margin[~flipped], margin[flipped]], bins=30, stacked=True,
                    color=["#4477aa", "#cc6677"], label=["as labelled", "flipped"])
            ax.legend(fontsize=7)
        else:
            ax.hist(margin, bins=30, color="#4477aa")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(name, fontsize=9)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.supxlabel("margin r(chosen) - r(rejected)", fontsize=9)
    fig.tight_layout()
    figs["margins"] = _png(fig)
    return figs


MESSAGE_CHARS = 3000  # characters of one message the report shows


def _cut(text: str, n: int = MESSAGE_CHARS) -> str:
    """`text` escaped, cut after `n` characters with a note of how much is left out."""
    if len(text) <= n:
        return html.escape(text)
    return html.escape(text[:n]) + f" … <i>({len(text) - n:,} more characters)</i>"


def _prose(text: str) -> str:
    """Plain text as HTML: escaped, and `code` spans (as warnings write commands) set as
    <code>, so no literal backtick reaches the page."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{x}</code>" if k % 2 else x for k, x in enumerate(parts))


def _conversation(messages: list[dict[str, str]]) -> str:
    return "".join(f"<div class='turn'><b>{html.escape(str(m['role']))}:</b> "
                   f"{_cut(str(m['content']))}</div>" for m in messages)


def _pair_html(pair: Any, meta: str) -> str:
    """One example pair: its whole conversation, then both replies."""
    other = ("" if pair.rejected_prompt is None else
             "<div class='r'><b>The rejected reply answers another conversation:</b>"
             f"{_conversation(pair.rejected_prompt)}</div>")
    return (f"<div class='ex'><div class='meta'>{meta}</div>"
            f"<div><b>Conversation:</b>{_conversation(pair.prompt)}</div>{other}"
            f"<div class='c'><b>Chosen by the label:</b> {_cut(pair.chosen)}</div>"
            f"<div class='r'><b>Rejected by the label:</b> {_cut(pair.rejected)}</div></div>")


def _bin_examples(table: pd.DataFrame, per_bin: int
                  ) -> list[tuple[str, int, pd.DataFrame]]:
    """(bin, its number of pairs, the rows shown) for each bin that has pairs."""
    shown = []
    for b in BIN_NAMES:
        rows = table[table["bin"] == b]
        if not rows.empty:
            shown.append((b, len(rows), rows.sample(min(per_bin, len(rows)), random_state=0)))
    return shown


def _source_examples(table: pd.DataFrame, summary: dict[str, Any], per_source: int
                     ) -> list[tuple[str, pd.DataFrame]]:
    """(source, the rows shown) for each source of unreliability counted."""
    counts = summary.get("sources")
    if not counts or "source" not in table:
        return []
    return [(source, table[table["source"] == source].head(per_source)) for source in counts]


def report_ids(table: pd.DataFrame, summary: dict[str, Any], per_bin: int = 3,
               per_source: int = 2) -> set[str]:
    """The ids of the pairs the report shows: all it needs of the texts, so an audit
    fetches only these instead of holding every pair."""
    ids = {i for _, _, rows in _bin_examples(table, per_bin) for i in rows["id"]}
    return ids | {i for _, rows in _source_examples(table, summary, per_source)
                  for i in rows["id"]}


def _examples(table: pd.DataFrame, pairs: dict[str, Any], per_bin: int) -> str:
    parts = []
    for b, n, rows in _bin_examples(table, per_bin):
        parts.append(f"<h3>{b}: {BIN_TEXT[b]} ({n} pairs)</h3>")
        for _, row in rows.iterrows():
            flip = " · <b>injected flip</b>" if row.get("flipped", False) else ""
            parts.append(_pair_html(pairs[row["id"]], (
                f"id {html.escape(str(row['id']))} · {html.escape(str(row['subset']))} · "
                f"{row['votes']}/{row['members']} voters agree · P(chosen better) "
                f"{row['p_chosen']:.2f}{flip}")))
    return "\n".join(parts)


SOURCE_TEXT = {
    "mis-label": "the committee confidently and (near-)unanimously prefers the rejected reply",
    "subjective": "the committee is unsure, with no clearer pattern (taste, missing context)",
    "different-criteria": "members confidently disagree with each other (e.g. helpful vs "
                          "harmless)",
    "different-thresholds": "both replies score high: the label rests on what is good enough",
    "both-harmful": "both replies score low, in a subset about harm",
    "both-bad": "both replies score low (incorrect or irrelevant)",
}


def _against(table: pd.DataFrame) -> str:
    kept_kinds = table["source"].isin(["subjective", "different-criteria",
                                       "different-thresholds"])
    against = kept_kinds & (table["p_chosen"] < 0.5)
    return (f"Of the {int(kept_kinds.sum())} subjective, different-criteria and "
            f"different-threshold pairs, {int(against.sum())} lean against the label "
            "(committee P(chosen) &lt; 0.5).")


def _sources(table: pd.DataFrame, summary: dict[str, Any], pairs: dict[str, Any],
             per_source: int = 2) -> str:
    """Counts of the best-guess sources of flagged pairs, with examples and their signals."""
    counts = summary.get("sources")
    if not counts or "source" not in table:
        return ""
    flagged = int(sum(counts.values()))
    rows = "".join(f"<tr><td>{s}</td><td>{html.escape(SOURCE_TEXT[s])}</td><td>{c}</td>"
                   f"<td>{c / max(flagged, 1):.1%}</td></tr>" for s, c in counts.items())
    parts = [f"<h2>Why flagged pairs may be unreliable (best guess)</h2><p>{flagged} pairs are "
             "flagged: the pairs the committee doubts (at most half of the voters agree with "
             "the label, or the committee leans against it); they are listed in "
             f"<code>{FLAGGED_CSV}</code> next to this page. "
             "Each gets the source of unreliability its signals point to, among the six that "
             "Yeh et al. (2024) found by re-annotating HH. These are guesses from scores, not "
             "human judgements; <code>preflab clean --method sac</code> acts on them (flip "
             "mis-labels, "
             "remove both-bad pairs and the other pairs the committee leans against, keep the "
             f"rest). {_against(table)}</p>{_rules_in_force(summary)}"
             "<table><tr><th>source</th><th>signal"
             f"</th><th>pairs</th><th>share of flagged</th></tr>{rows}</table>"]
    for source, sub in _source_examples(table, summary, per_source):
        for _, row in sub.iterrows():
            parts.append(_pair_html(pairs[row["id"]], (
                f"{source} · id {html.escape(str(row['id']))} · "
                f"{html.escape(str(row['source_signal']))}")))
    return "\n".join(parts)


def _rules_in_force(summary: dict[str, Any]) -> str:
    """The thresholds the source tags were drawn with, as one sentence."""
    rules = summary.get("source_rules", {})
    if "flip_p_used" not in rules:
        return ""
    return (f"<p>Rules in force: <i>mis-label</i> where P(chosen better) &le; "
            f"{rules['flip_p_used']:.2f} (flip_p {html.escape(str(rules['flip_p']))}) and at most "
            f"{rules['flip_agreement']:.0%} of voters agree; a reversal is called confident "
            f"only when that threshold is 0.20 or below. <i>both-bad</i> / "
            f"<i>different-thresholds</i>: both replies at or below the "
            f"{rules['bad_quantile']:.0%} / at or above the {rules['good_quantile']:.0%} "
            f"reward percentile; flagged: at most {rules['flag_agreement']:.0%} agree, or "
            f"P(chosen better) &lt; 0.5.</p>")


def kappa_line(summary: dict[str, Any]) -> str:
    """Fleiss' kappa of the voters as one sentence: which voters it leaves out, and why
    it may be undefined."""
    kappa = summary.get("fleiss_kappa")
    left_out = summary.get("fleiss_kappa_left_out") or []
    without = (f" {', '.join(left_out)} cast no vote and {'is' if len(left_out) == 1 else 'are'}"
               " left out." if left_out else "")
    if kappa is None or not np.isfinite(kappa):
        return ("Agreement between voters beyond chance (Fleiss' kappa): not defined, no pair "
                "has votes from two voters." + without)
    return f"Agreement between voters beyond chance (Fleiss' kappa): {kappa:.3f}." + without


def orientation_text(o: int | None) -> str:
    """A member's orientation in words (the console and the report)."""
    return "-1 turned round" if (o or 1) < 0 else "+1 as declared"


def voter_of(summary: dict[str, Any]) -> dict[str, str]:
    """The voter each member votes in (itself, or the members merged with it)."""
    voters = summary.get("committee_probability", {}).get("voters", {})
    return {m: v for v, d in voters.items() for m in d["members"]}


def voters_line(summary: dict[str, Any]) -> str:
    """Which members the votes and bins count, as one plain sentence."""
    voters = summary.get("committee_probability", {}).get("voters")
    if not voters:
        return ""
    voters = {v: d for v, d in voters.items() if d.get("counted", True)}
    said = []
    for d in voters.values():
        members = [m + (" turned round" if o < 0 else "") for m, o in d["members"].items()]
        said.append(members[0] if len(members) == 1 else
                    " and ".join(members) + " as one voter")
    return (f"Votes and bins count {len(voters)} voter{'s' * (len(voters) != 1)}: "
            + "; ".join(said) + ".")


def _member_rows(summary: dict[str, Any]) -> tuple[str, str, str]:
    """The members table rows, the correlation table and the collinearity warnings."""
    aucs = summary.get("flip_detection_auc", {})
    diag = summary.get("member_diagnostics", {})
    voter = voter_of(summary)
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(str(summary['member_kinds'].get(n, '')))}"
        f"</td><td>{fmt(d.get('agreement_with_labels'), '.1%')}</td>"
        f"<td>{fmt(d.get('sign_test_z'), '+.1f')}</td>"
        f"<td>{fmt(d.get('estimated_accuracy'), '.1%')}</td>"
        f"<td>{orientation_text(d.get('orientation'))}</td>"
        f"<td>{html.escape(voter.get(n, n))}</td><td>{fmt(d.get('weight'), '.3f')}"
        + (f" [{d['weight_interval'][0]:.2f}, {d['weight_interval'][1]:.2f}]"
           if d.get("weight_interval") else "") + "</td>"
        + (f"<td>{aucs[n]:.3f}</td>" if n in aucs else "") + "</tr>"
        for n, d in diag.items())
    names = list(diag)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><th>{html.escape(a)}</th>" + "".join(
            "<td>1</td>" if a == b else f"<td>{diag[a]['correlation'][b]:+.2f}</td>"
            for b in names) + "</tr>" for a in names)
    table = f"<table><tr><th></th>{head}</tr>{body}</table>"
    warnings = "".join(f"<p><b>warning:</b> {_prose(w)}</p>"
                       for w in summary.get("member_warnings", []))
    return rows, table, warnings


FLAGGED_CSV = "flagged.csv"
FLAGGED_COLUMNS = ("id", "subset", "bin", "votes", "members", "agreement", "p_chosen",
                   "source", "source_signal", "flipped")


def flagged_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The pairs the committee doubts (the flagged pairs of the source tags: at most half
    of the voters agree with the label, or P(chosen better) < 0.5), in data order, with
    the committee's figures and every member's margin."""
    flagged = (table["source"].fillna("") != "") if "source" in table else \
        (table["agreement"] <= 0.5) | (table["p_chosen"] < 0.5)
    columns = [c for c in FLAGGED_COLUMNS if c in table]
    columns += [c for c in table.columns if c.startswith("margin.")]
    return table.loc[flagged.to_numpy(dtype=bool), columns]


def write_flagged_csv(table: pd.DataFrame, chunks: Iterable[list[Any]], path: Path) -> int:
    """Write the flagged pairs (:func:`flagged_rows`) to `path` as CSV, each with its
    conversation ("role: text" turns) and both replies, read from `chunks` of pairs in
    data order (so no step holds every text). Returns how many were written."""
    rows = flagged_rows(table).set_index("id", drop=False)
    wanted = set(rows.index)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*rows.columns, "conversation", "chosen", "rejected",
                         "rejected_conversation"])
        for pairs in chunks:
            for pair in pairs:
                if pair.id not in wanted:
                    continue
                wanted.discard(pair.id)  # a duplicate id is written once
                turns = lambda ms: "\n\n".join(f"{m['role']}: {m['content']}"  # noqa: E731
                                               for m in ms)
                row = rows.loc[pair.id]
                row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
                writer.writerow([*("" if pd.isna(x) else x for x in row.tolist()),
                                 turns(pair.prompt), pair.chosen, pair.rejected,
                                 "" if pair.rejected_prompt is None else
                                 turns(pair.rejected_prompt)])
    return len(rows)


def next_steps(summary: dict[str, Any], folder: str | Path | None) -> list[tuple[str, str]]:
    """(what it does, the command) for what to do after this audit: people review the
    pairs the committee doubts, then clean with or without their verdicts. Paths are
    this run's (absolute where they are files here), options its own."""
    data = str(summary["data"])
    if Path(data).exists():
        data = str(Path(data).resolve())
    audit = Path(folder).resolve() if folder is not None else Path("audit")
    base = str(audit)
    q = shlex.quote
    overall = summary["bins"]["overall"]
    doubted = overall["none"]["count"] + overall["low"]["count"]
    pick = ("" if 0 < doubted <= 100 else
            f" --sample {min(60, summary['n_pairs'])} --strata bin")
    what = (f"people judge the {doubted} pairs in the none and low bins" if not pick else
            f"people judge a sample of {min(60, summary['n_pairs'])} pairs spread over the "
            "bins" + (f" ({doubted} pairs are in the none and low bins)" if doubted else ""))
    db, export = q(base + "-review.sqlite"), q(base + "-review")
    return [
        (what + ", three reviewers each (edit the names)",
         f"preflab review init {q(data)} --audit {q(base)} --db {db}{pick} "
         "--reviewers alice,bob,carol"),
        ("serve the review page (each reviewer opens the link printed by init)",
         f"preflab review serve {db}"),
        ("export people's verdicts once most pairs have a quorum",
         f"preflab review export {db} --out {export}"),
        ("clean with people's verdicts where they reached one, the committee's elsewhere",
         f"preflab clean {q(data)} --audit {q(base)} --review {export} --out "
         f"{q(base + '-clean')}"),
        ("or clean on the committee alone (method sac)",
         f"preflab clean {q(data)} --audit {q(base)} --out {q(base + '-clean')}"),
    ]


def _next_steps_html(summary: dict[str, Any], folder: str | Path | None) -> str:
    steps = "".join(f"<li>{html.escape(what)}:<pre>{html.escape(command)}</pre></li>"
                    for what, command in next_steps(summary, folder))
    return f"<h2>Next steps</h2><ol>{steps}</ol>"


def _people_html(summary: dict[str, Any]) -> str:
    """The section "Against people" (only when the audit had people's reviews)."""
    people = summary.get("people")
    if not people:
        return ""
    rows = "".join(f"<tr><td>{html.escape(who)}</td><td>{with_people}</td>"
                   f"<td>{with_labels}</td></tr>"
                   for who, with_people, with_labels in people_rows(people))
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in people_auc_lines(people))
    return (f"<h2>Against people</h2><p>{people['n_reviewed']} pairs reviewed; on the "
            f"{people['n_decided']} where people's consensus says which reply is better "
            "(chosen or rejected), how often each member, the committee (P(chosen better) "
            "&gt; 0.5; 0.5 is no opinion) and the original label agree with people, with a "
            "95% Wilson interval, beside how often they agree with the labels on the same "
            "pairs (n: the pairs where it has an opinion).</p><table><tr><th>who</th>"
            "<th>agrees with people [95% CI] (n)</th><th>agrees with labels</th></tr>"
            f"{rows}</table>{lines}")


def _verdict_html(summary: dict[str, Any]) -> str:
    verdict = summary.get("verdict")
    if not verdict:
        return ""
    return (f"<p class='verdict {html.escape(verdict['level'])}'><b>Can this committee be "
            f"trusted here?</b> {_prose(verdict['text'])}</p>")


def render_report(table: pd.DataFrame, summary: dict[str, Any], pairs: dict[str, Any],
                  per_bin: int = 3, folder: str | Path | None = None) -> str:
    """The report as one HTML string; `folder`: where the audit is (for the commands of
    the next steps)."""
    figs = _figures(table, summary)
    overall = summary["bins"]["overall"]
    bins_rows = "".join(
        f"<tr><td style='color:{BIN_COLORS[b]}'>■</td><td>{b}</td><td>{BIN_TEXT[b]}</td>"
        f"<td>{overall[b]['count']}</td><td>{overall[b]['fraction']:.1%}</td></tr>"
        for b in shown_bins(overall))
    aucs = summary.get("flip_detection_auc", {})
    combined = summary.get("committee_probability", {})
    members_rows, correlation_table, warnings = _member_rows(summary)
    auc_head = "<th>flip AUC</th>" if aucs else ""
    auc_line = (f"<p>The data carries injected label flips ({summary['n_flipped']} pairs). The "
                f"committee's P(chosen better) separates them from the rest with ROC-AUC "
                f"<b>{aucs['committee']:.3f}</b>.</p>" if aucs else "")
    n_voters = len(summary.get("voters", summary["members"]))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>preflab audit: {html.escape(summary['data'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
color:#222}} table{{border-collapse:collapse}} td,th{{padding:3px 10px;border-bottom:1px solid
#ddd;text-align:left}} .ex{{border:1px solid #ddd;border-radius:6px;padding:8px;margin:8px 0;
font-size:14px}} .meta{{color:#666;font-size:12px}} .c{{color:#1a6b2f}} .r{{color:#9b1c1c}}
.turn{{white-space:pre-wrap;margin:2px 0 2px 1em}} pre{{white-space:pre-wrap;background:#f4f4f4;
padding:6px}} .verdict{{border-left:5px solid #bababa;padding:6px 10px;background:#fafafa}}
.verdict.no{{border-color:#b2182b}} .verdict.weak{{border-color:#ef8a62}}
.verdict.yes{{border-color:#2166ac}} .big{{font-size:28px;font-weight:bold}}</style></head><body>
<h1>How reliable are these preference labels?</h1>
<p>Data: <code>{html.escape(summary['data'])}</code> · {summary['n_pairs']} pairs ·
committee <code>{html.escape(summary['committee'])}</code> of {len(summary['members'])} members
({n_voters} voters) · {summary['seconds']:.0f} s ({summary['pairs_per_s']:.1f} pairs/s)</p>
<p>Each pair says "reply A is better than reply B". Every committee member (a reward model or
an LLM judge) scores both replies; a member <i>agrees</i> with the label when it scores the
chosen reply higher. Members that say the same thing (their margins correlate at |r| &ge;
{combined.get('collinear_threshold', 0.95)}, or one is the other's negation) count as one
<i>voter</i>, and a voter that disagrees with the labels beyond chance is turned round, as in
the committee's probability. Pairs where few voters agree are the ones to re-check: the label
may be wrong, or the two replies may be hard to rank (both bad, a matter of taste, or judged
by different criteria). {html.escape(voters_line(summary))}</p>
{_verdict_html(summary)}
<p class="big">{summary['low_or_no_agreement_fraction']:.1%} of pairs have low or no
agreement</p>{auc_line}
<p>{html.escape(kappa_line(summary))}</p>
<h2>Agreement bins</h2><table><tr><th></th><th>bin</th><th>meaning</th><th>pairs</th>
<th>share</th></tr>{bins_rows}</table>
{_next_steps_html(summary, folder)}
<h2>Votes per pair</h2><img src="{figs['votes']}" alt="vote histogram">
<h2>Bins per subset</h2><img src="{figs['bins']}" alt="bins per subset">
<h2>Members</h2><table><tr><th>member</th><th>kind</th><th>agrees with labels</th>
<th>sign-test z</th><th>estimated accuracy</th><th>orientation</th><th>votes as</th>
<th>weight (sum to 1)</th>{auc_head}
</tr>{members_rows}
</table>
<p>The committee's P(chosen better) combines the members' margins (method
<code>{html.escape(str(combined.get('method', '')))}</code>; members whose margins correlate at
|r| &ge; {combined.get('collinear_threshold', '')} are merged first and count as one). A
member's agreement with the labels, sign-test z and estimated accuracy are of its own margins
as declared; its orientation is how the committee counts it (turned round when its voter
disagrees with the labels beyond chance, sign test z &lt; -3 on all pairs, or when it is the
negation of the member it is merged with). Its estimated accuracy is how often its vote
matches the committee's verdict, weighed by the committee's certainty; its weight is its
share of the verdict in the direction of its orientation (never below 0 for
<code>stacked</code>; <code>stacked-free</code>, <code>latent</code> and <code>factor</code>
may weigh a member against it). Its sign-test z is (agreements - disagreements with the
labels) / &radic;(their sum): below 2 in size, the labels cannot tell the member from chance,
and a weight fitted on them may follow their noise.</p>
{warnings}
<h3>Correlation of the members' margins</h3>{correlation_table}
<h3>How often two members vote the same way</h3><img src="{figs['matrix']}" alt="matrix">
<h2>Margin distributions</h2><img src="{figs['margins']}" alt="margins">
{_people_html(summary)}
{_sources(table, summary, pairs)}
<h2>Example pairs from each bin</h2>{_examples(table, pairs, per_bin)}
<h2>Everything else</h2><details><summary>summary.json (the figures behind this page)</summary>
<pre>{html.escape(json.dumps(summary, indent=1)).replace('`', '&#96;')}</pre></details>
</body></html>"""
