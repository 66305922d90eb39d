"""HTML reports for reward-model evaluation and the split-halves study."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from preflab.eval.metrics import hard_margins
from preflab.figures import png, pyplot

STYLE = """<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;
padding:0 1em;color:#222} table{border-collapse:collapse} td,th{padding:3px 10px;
border-bottom:1px solid #ddd;text-align:left} .big{font-size:28px;font-weight:bold}</style>"""


def _reliability(bins: list[dict[str, Any]], title: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    used = [b for b in bins if b["count"]]
    ax.plot([0.5, 1], [0.5, 1], color="#999", lw=1, ls="--", label="perfect calibration")
    ax.bar([(b["low"] + b["high"]) / 2 for b in used], [b["accuracy"] for b in used],
           width=(bins[0]["high"] - bins[0]["low"]) * 0.9, color="#67a9cf", alpha=0.8,
           label="accuracy in bin")
    ax.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o-",
            color="#2166ac", label="(confidence, accuracy)")
    ax.set(xlim=(0.5, 1), ylim=(0, 1), xlabel="confidence max(p, 1-p)", ylabel="accuracy",
           title=title)
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def _histograms(table: pd.DataFrame) -> str:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    lo = min(table["r_chosen"].min(), table["r_rejected"].min())
    hi = max(table["r_chosen"].max(), table["r_rejected"].max())
    edges = np.linspace(lo, hi, 40) if hi > lo else 10
    a.hist(table["r_chosen"], bins=edges, alpha=0.6, color="#1a6b2f", label="chosen")
    a.hist(table["r_rejected"], bins=edges, alpha=0.6, color="#9b1c1c", label="rejected")
    a.set(title="rewards", xlabel="r(x, y)")
    a.legend()
    margin = hard_margins(table)
    b.hist(margin, bins=40, color="#2166ac")
    b.axvline(0, color="#333", lw=1)
    b.set(title="margin r(chosen) - r(rejected)", xlabel="margin (right of 0: agrees)")
    return png(fig)


def _subset_rows(per_subset: dict[str, dict[str, Any]]) -> str:
    return "".join(f"<tr><td>{html.escape(s)}</td><td>{m['n_pairs']}</td>"
                   f"<td>{m['accuracy']:.1%}</td><td>{m['ece']:.3f}</td>"
                   f"<td>{m['log_loss']:.3f}</td></tr>" for s, m in per_subset.items())


def render_eval_report(summary: dict[str, Any], table: pd.DataFrame) -> str:
    """One page: headline accuracy and ECE, reliability diagram, score distributions,
    per-subset table and the full summary."""
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>preflab eval-rm: {html.escape(summary['model'])}</title>{STYLE}</head><body>
<h1>Reward model evaluation</h1>
<p>Model <code>{html.escape(summary['model'])}</code> on <code>{html.escape(summary['data'])}
</code> · {summary['n_pairs']} pairs · max length {summary['max_length']} ·
{summary['seconds']:.0f} s</p>
<p>A pair counts as right when the model gives the human-preferred reply the higher
reward. The model's P(chosen better) is sigmoid(r(chosen) - r(rejected)); it is calibrated
when, among pairs it is p sure about, a share p are right.</p>
<p class="big">accuracy {summary['accuracy']:.1%} · ECE {summary['ece']:.3f}</p>
<p>log loss {summary['log_loss']:.3f} (0.693 is a coin flip) · mean |margin|
{summary['mean_abs_margin']:.3f}</p>
<h2>Reliability diagram</h2><img src="{_reliability(summary['reliability'], 'reliability')}"
alt="reliability diagram">
<h2>Score distributions</h2><img src="{_histograms(table)}" alt="score histograms">
<h2>Per subset</h2><table><tr><th>subset</th><th>pairs</th><th>accuracy</th><th>ECE</th>
<th>log loss</th></tr>{_subset_rows(summary['per_subset'])}</table>
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=1))}</pre>
</body></html>"""


def render_split_halves_report(summary: dict[str, Any], joined: pd.DataFrame) -> str:
    """The train-PM / test-PM comparison: both models' held-out figures and a scatter
    of their margins."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    sign = np.where(joined["p_chosen_label"] >= 0.5, 1.0, -1.0)
    ax.scatter(joined["margin_a"] * sign, joined["margin_b"] * sign, s=6, alpha=0.5,
               color="#2166ac")
    ax.axhline(0, color="#999", lw=1)
    ax.axvline(0, color="#999", lw=1)
    ax.set(xlabel="margin, PM A", ylabel="margin, PM B",
           title=f"Spearman {summary['spearman_margin']:.3f}")
    scatter = png(fig)
    rows = "".join(f"<tr><td>PM {k[-1].upper()}</td><td>{summary[f'n_train_{k[-1]}']}</td>"
                   f"<td>{summary[k]['accuracy']:.1%}</td><td>{summary[k]['ece']:.3f}</td></tr>"
                   for k in ("pm_a", "pm_b"))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>preflab split halves: {html.escape(summary['data'])}</title>{STYLE}</head><body>
<h1>Split halves: do two reward models trained on disjoint data agree?</h1>
<p>Data <code>{html.escape(summary['data'])}</code>: {summary['n_held_out']} pairs held out,
the rest split into two disjoint halves; base
<code>{html.escape(str(summary['config']['base']))}</code>, same settings for both.</p>
<table><tr><th>model</th><th>trained on</th><th>held-out accuracy</th><th>ECE</th></tr>
{rows}</table>
<p class="big">agree on {summary['agreement']:.1%} of held-out pairs</p>
<p>Spearman rank correlation of margins {summary['spearman_margin']:.3f} · mean JS divergence
of P(chosen better) {summary['js_divergence']:.4f} nats · mean KL(A || B)
{summary['kl_divergence_ab']:.4f} nats</p>
<img src="{scatter}" alt="margins of the two models">
<h2>Summary</h2><pre>{html.escape(json.dumps(summary, indent=1, default=str))}</pre>
</body></html>"""
