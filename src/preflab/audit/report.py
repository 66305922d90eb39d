"""A self-contained HTML report of an audit: plots embedded, no network needed."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.stats import member_names
from preflab.audit.table import BIN_NAMES
from preflab.figures import png as _png

BIN_TEXT = {
    "none": "no member agrees with the human label",
    "low": "at most a quarter of the members agree",
    "mixed": "the committee is split",
    "high": "at least three quarters agree",
    "unanimous": "every member agrees",
}
BIN_COLORS = {"none": "#b2182b", "low": "#ef8a62", "mixed": "#bababa", "high": "#67a9cf",
              "unanimous": "#2166ac"}


def _figures(table: pd.DataFrame, summary: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = member_names(table)
    m = int(table["members"].iloc[0])
    figs: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(6, 3))
    counts = np.bincount(table["votes"], minlength=m + 1)
    ax.bar(range(m + 1), counts, color="#4477aa")
    ax.set_xlabel(f"members agreeing with the human label (of {m})")
    ax.set_ylabel("pairs")
    ax.set_xticks(range(m + 1))
    figs["votes"] = _png(fig)

    subsets = sorted(summary["bins"]["by_subset"])
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.45 * len(subsets)))
    left = np.zeros(len(subsets))
    for b in BIN_NAMES:
        frac = np.array([summary["bins"]["by_subset"][s][b]["fraction"] for s in subsets])
        ax.barh(subsets, frac, left=left, color=BIN_COLORS[b], label=b)
        left += frac
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of pairs")
    ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.02))
    figs["bins"] = _png(fig)

    matrix = np.array([[summary["member_agreement_matrix"][a][b] for b in names] for a in names])
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


def _cut(text: str, n: int = 400) -> str:
    text = text if len(text) <= n else text[:n] + " …"
    return html.escape(text)


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
            pair = pairs[row["id"]]
            last = pair.prompt[-1]["content"] if pair.prompt else ""
            flip = " · <b>injected flip</b>" if row.get("flipped", False) else ""
            parts.append(
                f"<div class='ex'><div class='meta'>id {row['id']} · {row['subset']} · "
                f"{row['votes']}/{row['members']} agree · P(chosen better) "
                f"{row['p_chosen']:.2f}{flip}</div>"
                f"<div><b>Prompt (last turn):</b> {_cut(last)}</div>"
                f"<div class='c'><b>Chosen by the label:</b> {_cut(pair.chosen)}</div>"
                f"<div class='r'><b>Rejected by the label:</b> {_cut(pair.rejected)}</div></div>")
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
             "flagged (agreement at or below half, or the committee leans against the label). "
             "Each gets the source of unreliability its signals point to, among the six that "
             "Yeh et al. (2024) found by re-annotating HH. These are guesses from scores, not "
             "human judgements; `preflab clean --method sac` acts on them (flip mis-labels, "
             "remove both-bad pairs and the other pairs the committee leans against, keep the "
             f"rest). {_against(table)}</p>{_rules_in_force(summary)}"
             "<table><tr><th>source</th><th>signal"
             f"</th><th>pairs</th><th>share of flagged</th></tr>{rows}</table>"]
    for source, sub in _source_examples(table, summary, per_source):
        for _, row in sub.iterrows():
            pair = pairs[row["id"]]
            last = pair.prompt[-1]["content"] if pair.prompt else ""
            parts.append(
                f"<div class='ex'><div class='meta'>{source} · id {row['id']} · "
                f"{html.escape(str(row['source_signal']))}</div>"
                f"<div><b>Prompt (last turn):</b> {_cut(last)}</div>"
                f"<div class='c'><b>Chosen by the label:</b> {_cut(pair.chosen)}</div>"
                f"<div class='r'><b>Rejected by the label:</b> {_cut(pair.rejected)}</div></div>")
    return "\n".join(parts)


def _rules_in_force(summary: dict[str, Any]) -> str:
    """The thresholds the source tags were drawn with, as one sentence."""
    rules = summary.get("source_rules", {})
    if "flip_p_used" not in rules:
        return ""
    return (f"<p>Rules in force: <i>mis-label</i> where P(chosen better) &le; "
            f"{rules['flip_p_used']:.2f} (flip_p {html.escape(str(rules['flip_p']))}) and at most "
            f"{rules['flip_agreement']:.0%} of members agree; a reversal is called confident "
            f"only when that threshold is 0.20 or below. <i>both-bad</i> / "
            f"<i>different-thresholds</i>: both replies at or below the "
            f"{rules['bad_quantile']:.0%} / at or above the {rules['good_quantile']:.0%} "
            f"reward percentile; flagged: at most {rules['flag_agreement']:.0%} agree, or "
            f"P(chosen better) &lt; 0.5.</p>")


def _member_rows(summary: dict[str, Any]) -> tuple[str, str, str]:
    """The members table rows, the correlation table and the collinearity warnings."""
    aucs = summary.get("flip_detection_auc", {})
    diag = summary.get("member_diagnostics", {})
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(str(summary['member_kinds'].get(n, '')))}"
        f"</td><td>{fmt(d.get('agreement_with_labels'), '.1%')}</td>"
        f"<td>{fmt(d.get('sign_test_z'), '+.1f')}</td>"
        f"<td>{fmt(d.get('estimated_accuracy'), '.1%')}</td><td>{fmt(d.get('weight'), '+.3f')}"
        "</td>" + (f"<td>{aucs[n]:.3f}</td>" if n in aucs else "") + "</tr>"
        for n, d in diag.items())
    names = list(diag)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><th>{html.escape(a)}</th>" + "".join(
            "<td>1</td>" if a == b else f"<td>{diag[a]['correlation'][b]:+.2f}</td>"
            for b in names) + "</tr>" for a in names)
    table = f"<table><tr><th></th>{head}</tr>{body}</table>"
    warnings = "".join(f"<p><b>warning:</b> {html.escape(w)}</p>"
                       for w in summary.get("member_warnings", []))
    return rows, table, warnings


def render_report(table: pd.DataFrame, summary: dict[str, Any], pairs: dict[str, Any],
                  per_bin: int = 3) -> str:
    """The report as one HTML string."""
    figs = _figures(table, summary)
    overall = summary["bins"]["overall"]
    bins_rows = "".join(
        f"<tr><td style='color:{BIN_COLORS[b]}'>■</td><td>{b}</td><td>{BIN_TEXT[b]}</td>"
        f"<td>{overall[b]['count']}</td><td>{overall[b]['fraction']:.1%}</td></tr>"
        for b in BIN_NAMES)
    aucs = summary.get("flip_detection_auc", {})
    combined = summary.get("committee_probability", {})
    members_rows, correlation_table, warnings = _member_rows(summary)
    auc_head = "<th>flip AUC</th>" if aucs else ""
    auc_line = (f"<p>The data carries injected label flips ({summary['n_flipped']} pairs). The "
                f"committee's P(chosen better) separates them from the rest with ROC-AUC "
                f"<b>{aucs['committee']:.3f}</b>.</p>" if aucs else "")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>preflab audit: {html.escape(summary['data'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
color:#222}} table{{border-collapse:collapse}} td,th{{padding:3px 10px;border-bottom:1px solid
#ddd;text-align:left}} .ex{{border:1px solid #ddd;border-radius:6px;padding:8px;margin:8px 0;
font-size:14px}} .meta{{color:#666;font-size:12px}} .c{{color:#1a6b2f}} .r{{color:#9b1c1c}}
.big{{font-size:28px;font-weight:bold}}</style></head><body>
<h1>How reliable are these preference labels?</h1>
<p>Data: <code>{html.escape(summary['data'])}</code> · {summary['n_pairs']} pairs ·
committee <code>{html.escape(summary['committee'])}</code> of {len(summary['members'])} members ·
{summary['seconds']:.0f} s ({summary['pairs_per_s']:.1f} pairs/s)</p>
<p>Each pair says "reply A is better than reply B". Every committee member (a reward model or
an LLM judge) scores both replies; a member <i>agrees</i> with the label when it scores the
chosen reply higher. Pairs where few members agree are the ones to re-check: the label may be
wrong, or the two replies may be hard to rank (both bad, a matter of taste, or judged by
different criteria).</p>
<p class="big">{summary['low_or_no_agreement_fraction']:.1%} of pairs have low or no
agreement</p>{auc_line}
<p>Agreement between members beyond chance (Fleiss' kappa): {summary['fleiss_kappa']:.3f}.</p>
<h2>Agreement bins</h2><table><tr><th></th><th>bin</th><th>meaning</th><th>pairs</th>
<th>share</th></tr>{bins_rows}</table>
<h2>Votes per pair</h2><img src="{figs['votes']}" alt="vote histogram">
<h2>Bins per subset</h2><img src="{figs['bins']}" alt="bins per subset">
<h2>Members</h2><table><tr><th>member</th><th>kind</th><th>agrees with labels</th>
<th>sign-test z</th><th>estimated accuracy</th><th>weight (|weights| sum to 1)</th>{auc_head}
</tr>{members_rows}
</table>
<p>The committee's P(chosen better) combines the members' margins (method
<code>{html.escape(str(combined.get('method', '')))}</code>; members whose margins correlate at
|r| &ge; {combined.get('collinear_threshold', '')} are merged first and count as one). A
member's estimated accuracy is how often its vote matches the committee's verdict, weighed
by the committee's certainty; its weight is its share of the verdict. Its sign-test z is
(agreements - disagreements with the labels) / &radic;(their sum): below 2 in size, the labels
cannot tell the member from chance, and a weight fitted on them may follow their noise.</p>
{warnings}
<h3>Correlation of the members' margins</h3>{correlation_table}
<h3>How often two members vote the same way</h3><img src="{figs['matrix']}" alt="matrix">
<h2>Margin distributions</h2><img src="{figs['margins']}" alt="margins">
{_sources(table, summary, pairs)}
<h2>Example pairs from each bin</h2>{_examples(table, pairs, per_bin)}
<h2>Everything else</h2><details><summary>summary.json (the figures behind this page)</summary>
<pre>{html.escape(json.dumps(summary, indent=1))}</pre></details>
</body></html>"""
