"""``preflab review export``: people's consensus per pair, their agreement, and how the
committee's bins relate to what they decided.

Writes into the output folder:

- ``reviews.parquet``: one row per pair of the project (see :data:`REVIEW_COLUMNS`); a
  pair's consensus needs its quorum (``min_votes``, by default a strict majority of
  the reviewers assigned to it) and ``votes_missing`` says how far it is;
- ``votes.parquet``: every vote row, edits included (``latest`` marks the one that counts);
- ``summary.json``: Fleiss kappa overall and per audit bin, each reviewer's agreement,
  the share of each choice and source, consensus by audit bin and committee source;
- ``report.html``: the same, self-contained (plots embedded).
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.noise_sources import SOURCES
from preflab.audit.table import BIN_NAMES
from preflab.data.outputs import prepare_output_dir
from preflab.data.verdicts import (
    VERDICTS,
    consensus,
    decide,
    fleiss_kappa,
    quorum,
    quorum_words,
    to_verdict,
    verdict_counts,
)
from preflab.figures import png, pyplot
from preflab.review import store

REVIEW_COLUMNS = {
    "pair_id": "the pair's id in the data",
    "position": "its place in the project",
    "subset": "the pair's subset",
    "bin": "the committee's agreement bin",
    "committee_source": "the audit's guess at the source (flagged pairs)",
    "committee_p_chosen": "the committee's P(chosen better)",
    "committee_votes": "the committee's voters agreeing with the label (merged members "
                       "vote once)",
    "members": "the committee's voters that voted on the pair",
    "assigned": "reviewers assigned",
    "n_votes": "reviewers who judged it (their latest vote counts)",
    **{f"n_{v.replace('-', '_')}": f"latest votes meaning {v}" for v in VERDICTS},
    "quorum": "votes the pair needs before a consensus counts (by default a strict "
              "majority of the reviewers assigned: 2 of 3)",
    "votes_missing": "votes still needed to reach the quorum (0 once it is met)",
    "consensus": "the verdict more than half share once the quorum is met (chosen: the "
                 "label stands; rejected: a reversal; both-good, both-bad, uncertain), '' "
                 "below the quorum or without a majority",
    "support": "votes for the consensus (or for the most common verdict)",
    "support_fraction": "support / n_votes",
    "human_source": "the source tag most reviewers gave ('' when none)",
    "human_source_votes": "how many gave it",
    "reviewers": "who judged it, comma-separated",
}


def _share(counter: Counter[str], keys: tuple[str, ...]) -> dict[str, float]:
    total = sum(counter[k] for k in keys)
    return {k: round(counter[k] / total, 4) if total else 0.0 for k in keys}


def _kappa(verdicts: list[list[str]]) -> dict[str, Any]:
    items = [v for v in verdicts if len(v) >= 2]
    k = fleiss_kappa(verdict_counts(items)) if items else float("nan")
    return {"kappa": None if math.isnan(k) else round(k, 4), "n_pairs": len(items)}


def review_tables(pairs: list[dict[str, Any]], votes: list[dict[str, Any]],
                  min_votes: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reviews, votes) tables from the project's pairs and vote rows; a pair's consensus
    needs its quorum (:func:`preflab.data.verdicts.quorum`: `min_votes`, or a strict
    majority of its assigned reviewers)."""
    quorum(1, min_votes)  # a bad --min-votes fails before anything is read
    vt = pd.DataFrame(votes, columns=["id", "submission", "pair_id", "reviewer", "shown_order",
                                      "choice", "source_tag", "note", "created_at",
                                      "page_version"])
    vt["verdict"] = [to_verdict(c, o) for c, o in zip(vt["choice"], vt["shown_order"],
                                                        strict=True)]
    last = vt.groupby(["pair_id", "reviewer"])["id"].transform("max") if len(vt) else vt["id"]
    vt["latest"] = vt["id"] == last
    latest = vt[vt["latest"]]
    by_pair = {k: g for k, g in latest.groupby("pair_id")}
    rows = []
    for p in pairs:
        g = by_pair.get(p["pair_id"])
        verdicts = [] if g is None else list(g["verdict"])
        tags = Counter(t for t in ([] if g is None else g["source_tag"]) if t)
        top, n, missing = decide(verdicts, len(p["assigned"]), min_votes)
        c = p["committee"]
        tag, tag_n = tags.most_common(1)[0] if tags else ("", 0)
        rows.append({
            "pair_id": p["pair_id"], "position": p["position"],
            "subset": p["pair"].get("subset") or "", "bin": p["bin"],
            "committee_source": p["source"], "committee_p_chosen": c.get("p_chosen"),
            "committee_votes": c["votes"], "members": c["members"],
            "assigned": len(p["assigned"]), "n_votes": len(verdicts),
            **{f"n_{v.replace('-', '_')}": verdicts.count(v) for v in VERDICTS},
            "quorum": quorum(len(p["assigned"]), min_votes), "votes_missing": missing,
            "consensus": top, "support": n,
            "support_fraction": round(n / len(verdicts), 4) if verdicts else float("nan"),
            "human_source": tag, "human_source_votes": tag_n,
            "reviewers": "" if g is None else ",".join(sorted(g["reviewer"])),
        })
    return pd.DataFrame(rows, columns=list(REVIEW_COLUMNS)), vt


def summarize_review(reviews: pd.DataFrame, vt: pd.DataFrame, reviewers: list[str]
                     ) -> dict[str, Any]:
    """Agreement, shares and the committee against people (see the module doc)."""
    latest = vt[vt["latest"]]
    verdicts = Counter(latest["verdict"])
    shown = Counter(latest["choice"])
    tags = Counter(t for t in latest["source_tag"] if t)
    agreed = reviews[reviews["consensus"] != ""]
    decisive = agreed[agreed["consensus"].isin(("chosen", "rejected"))]
    committee_side = np.where(decisive["committee_p_chosen"].astype(float) >= 0.5, "chosen",
                              "rejected")
    bins = [b for b in BIN_NAMES if b in set(reviews["bin"])]
    return {
        "n_pairs": len(reviews), "n_reviewers": len(reviewers), "n_vote_rows": len(vt),
        "n_judgements": len(latest), "n_edits": len(vt) - len(latest),
        "pairs_judged": int((reviews["n_votes"] > 0).sum()),
        "pairs_complete": int(((reviews["n_votes"] >= reviews["assigned"])
                               & (reviews["assigned"] > 0)).sum()),
        "fleiss_kappa": _kappas(reviews, latest, bins),
        "consensus": {**{v: int((reviews["consensus"] == v).sum()) for v in VERDICTS},
                      "no_majority": int(((reviews["consensus"] == "")
                                          & (reviews["votes_missing"] == 0)).sum()),
                      "below_quorum": int((reviews["votes_missing"] > 0).sum()),
                      "not_judged": int((reviews["n_votes"] == 0).sum())},
        "votes_missing": int(reviews["votes_missing"].sum()),
        "choice_shares": _share(verdicts, VERDICTS),
        "choice_shares_as_shown": _share(shown, store.CHOICES),
        "source_shares": _share(tags, SOURCES), "n_source_tags": sum(tags.values()),
        "reviewers": _reviewers(reviewers, latest, agreed),
        "by_bin": _table_by(reviews, "bin", bins),
        "by_committee_source": _table_by(reviews, "committee_source",
                                         sorted(set(reviews["committee_source"]))),
        "committee_vs_people": {
            "decisive_consensus": len(decisive),
            "committee_agrees": int((committee_side == decisive["consensus"].to_numpy()).sum()),
        },
    }


def _kappas(reviews: pd.DataFrame, latest: pd.DataFrame, bins: list[str]) -> dict[str, Any]:
    """Fleiss kappa of the latest verdicts, over all pairs and within each audit bin."""
    per_pair = {pid: list(g["verdict"]) for pid, g in latest.groupby("pair_id")}
    bin_of = dict(zip(reviews["pair_id"], reviews["bin"], strict=True))
    return {"overall": _kappa(list(per_pair.values())),
            "by_bin": {b: _kappa([v for pid, v in per_pair.items() if bin_of.get(pid) == b])
                       for b in bins}}


def _reviewers(reviewers: list[str], latest: pd.DataFrame, agreed: pd.DataFrame
               ) -> dict[str, dict[str, Any]]:
    """Per reviewer: how often they agree with the consensus, with the others'
    consensus (leave-one-out) and with the original label, and on how many pairs."""
    cons_of = dict(zip(agreed["pair_id"], agreed["consensus"], strict=True))
    by_pair = [dict(zip(g["reviewer"], g["verdict"], strict=True))
               for _, g in latest.groupby("pair_id")]
    people = {}
    for name in reviewers:
        mine = latest[latest["reviewer"] == name]
        # leave-one-out: the consensus of the others on the pairs they agree on
        others = [(v[name], consensus([x for r, x in v.items() if r != name])[0])
                  for v in by_pair if name in v]
        others = [(own, c) for own, c in others if c]
        with_c = mine[mine["pair_id"].isin(cons_of)]
        decisive = mine[mine["verdict"].isin(("chosen", "rejected"))]
        people[name] = {
            "judged": len(mine),
            "agree_consensus": round(float((with_c["verdict"] == with_c["pair_id"].map(
                cons_of)).mean()), 4) if len(with_c) else None,
            "pairs_with_consensus": len(with_c),
            "agree_others": round(sum(o == c for o, c in others) / len(others), 4)
            if others else None,
            "pairs_others_agree": len(others),
            "agree_original": round(float((decisive["verdict"] == "chosen").mean()), 4)
            if len(decisive) else None,
            "decisive": len(decisive),
        }
    return people


def _table_by(reviews: pd.DataFrame, column: str, keys: list[str]) -> dict[str, Any]:
    """Per value of `column` (an audit bin, a committee source): the pairs, what people
    decided on them, the shares reversed and removed, the source people named most."""
    out = {}
    for k in keys:
        sub = reviews[reviews[column] == k]
        c = Counter(sub.loc[sub["consensus"] != "", "consensus"])
        n_c = sum(c.values())
        human = Counter(t for t in sub["human_source"] if t)
        out[k or "(not flagged)"] = {
            "pairs": len(sub), "judged": int((sub["n_votes"] > 0).sum()),
            "with_consensus": n_c, **{v: c[v] for v in VERDICTS},
            "reversal_share": round(c["rejected"] / n_c, 4) if n_c else None,
            "removal_share": round(c["both-bad"] / n_c, 4) if n_c else None,
            "people_source": human.most_common(1)[0][0] if human else "",
        }
    return out


def _figures(summary: dict[str, Any]) -> dict[str, str]:
    plt = pyplot()
    figs = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    shares = summary["choice_shares"]
    axes[0].bar(list(shares), list(shares.values()), color="#4477aa")
    axes[0].set_title("people's judgements (latest votes)")
    axes[0].set_ylabel("share")
    src = summary["source_shares"]
    axes[1].barh(list(src), list(src.values()), color="#cc6677")
    axes[1].set_title(f"sources people tagged ({summary['n_source_tags']} tags)")
    axes[1].set_xlabel("share")
    figs["shares"] = png(fig)
    bins = summary["by_bin"]
    if bins:
        fig, ax = plt.subplots(figsize=(7, 0.8 + 0.5 * len(bins)))
        colors = {"chosen": "#2166ac", "rejected": "#b2182b", "both-good": "#67a9cf",
                  "both-bad": "#ef8a62", "uncertain": "#bababa"}
        left = np.zeros(len(bins))
        names = list(bins)
        for v in VERDICTS:
            frac = np.array([bins[b][v] / bins[b]["with_consensus"]
                             if bins[b]["with_consensus"] else 0.0 for b in names])
            ax.barh(names, frac, left=left, color=colors[v], label=v)
            left += frac
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of pairs with a consensus")
        ax.set_ylabel("committee agreement bin")
        ax.legend(ncol=5, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.02))
        figs["bins"] = png(fig)
    return figs


def _table(header: list[str], rows: list[list[Any]]) -> str:
    esc = lambda x: html.escape("-" if x is None else str(x))  # noqa: E731
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(summary: dict[str, Any], reviews: pd.DataFrame) -> str:
    """The self-contained HTML report."""
    figs = _figures(summary)
    k = summary["fleiss_kappa"]
    kappa_rows = [["all pairs", k["overall"]["kappa"], k["overall"]["n_pairs"]]] + [
        [b, v["kappa"], v["n_pairs"]] for b, v in k["by_bin"].items()]
    people = [[n, r["judged"], r["agree_consensus"], r["pairs_with_consensus"],
               r["agree_others"], r["pairs_others_agree"], r["agree_original"], r["decisive"]]
              for n, r in summary["reviewers"].items()]
    verdict_cols = list(VERDICTS)
    bins = [[b, r["pairs"], r["judged"], r["with_consensus"], *(r[v] for v in verdict_cols),
             r["reversal_share"], r["people_source"]] for b, r in summary["by_bin"].items()]
    sources = [[s, r["pairs"], r["with_consensus"], *(r[v] for v in verdict_cols),
                r["reversal_share"], r["people_source"]]
               for s, r in summary["by_committee_source"].items()]
    pair_rows = [[r.pair_id, r.bin, r.committee_source, r.n_votes, r.quorum,
                  r.votes_missing, r.consensus or ("below quorum" if r.votes_missing else "-"),
                  f"{r.support}/{r.n_votes}", r.human_source]
                 for r in reviews.itertuples()]
    c = summary["committee_vs_people"]
    imgs = "".join(f'<img alt="{html.escape(n)}" src="{u}">' for n, u in figs.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>preflab review: export</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:70em;color:#1d2430}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccd;
padding:2px 8px;text-align:left}}th{{background:#eef1f5}}img{{max-width:100%;display:block;
margin:0.5em 0}}.big{{font-size:1.3em}}</style></head><body>
<h1>Human review: {summary['n_pairs']} pairs, {summary['n_reviewers']} reviewers</h1>
<p class="big">Fleiss kappa {html.escape(str(k['overall']['kappa']))} over
{k['overall']['n_pairs']} pairs judged by two or more reviewers;
{summary['n_judgements']} judgements ({summary['n_vote_rows']} vote rows,
{summary['n_edits']} edits), {summary['pairs_complete']} pairs complete;
{summary['consensus']['below_quorum']} pairs below their quorum
({summary['votes_missing']} votes missing; {html.escape(summary['quorum_rule'])}).</p>
<p>Verdicts are in the data's terms: <b>chosen</b> = the label stands, <b>rejected</b> =
people prefer the rejected reply (a reversal); both-good, both-bad, uncertain as chosen.
The committee sided with people's decisive consensus on {c['committee_agrees']} of
{c['decisive_consensus']} pairs.</p>
{imgs}
<h2>Agreement (Fleiss kappa)</h2>{_table(['pairs', 'kappa', 'n pairs'], kappa_rows)}
<h2>Reviewers</h2>
{_table(['reviewer', 'judged', 'agree with consensus', 'pairs with consensus',
         "agree with the others' consensus", 'pairs', 'agree with original label',
         'decisive votes'], people)}
<h2>Committee bins against people's consensus</h2>
{_table(['bin', 'pairs', 'judged', 'consensus', *verdict_cols, 'reversal share',
         "people's main source"], bins)}
<h2>Committee's source guess against people's consensus</h2>
{_table(['committee source', 'pairs', 'consensus', *verdict_cols, 'reversal share',
         "people's main source"], sources)}
<h2>Choice and source shares</h2>
{_table(['verdict', 'share'], [[v, s] for v, s in summary['choice_shares'].items()])}
{_table(['source', 'share'], [[v, s] for v, s in summary['source_shares'].items()])}
<h2>Pairs</h2>
{_table(['pair', 'bin', 'committee source', 'votes', 'quorum', 'missing votes', 'consensus',
         'support', 'source'], pair_rows)}
</body></html>
"""


def quorum_rule(min_votes: int | None) -> str:
    """The quorum in words."""
    return f"quorum: {quorum_words(min_votes)}" + ("" if min_votes is None else " (--min-votes)")


def export_review(db: str | Path, out: str | Path, overwrite: bool = True,
                  min_votes: int | None = None) -> dict[str, Any]:
    """Export project `db` into the folder `out` (see the module doc); the summary.
    A pair's consensus needs its quorum: `min_votes` votes, by default a strict
    majority of the reviewers assigned to it."""
    quorum(1, min_votes)
    with store.opened(db) as con:
        store.check_project(con, db)
        pairs = store.all_pairs(con)
        votes = store.all_votes(con)
        reviewers = store.reviewer_names(con)
    reviews, vt = review_tables(pairs, votes, min_votes)
    summary = {"db": str(db), "min_votes": min_votes, "quorum_rule": quorum_rule(min_votes),
               **summarize_review(reviews, vt, reviewers)}
    out = prepare_output_dir(out, "review-export", overwrite, info={"db": str(db)})
    reviews.to_parquet(out / "reviews.parquet", index=False)
    vt.to_parquet(out / "votes.parquet", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    (out / "report.html").write_text(render_report(summary, reviews), encoding="utf-8")
    return summary


def missing_votes(out: str | Path) -> list[dict[str, Any]]:
    """The pairs of export `out` below their quorum, project order: pair_id, n_votes,
    quorum, votes_missing."""
    reviews = pd.read_parquet(Path(out) / "reviews.parquet",
                              columns=["pair_id", "n_votes", "quorum", "votes_missing"])
    return reviews[reviews["votes_missing"] > 0].to_dict("records")
