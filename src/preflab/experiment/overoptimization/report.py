"""The curve as files: ``curve.csv`` (one row per point) and ``report.md``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def write_csv(table: list[dict[str, Any]], path: Path) -> None:
    """One row per point of the curve, each 95% interval as two columns (lo, hi)."""
    cols = ["method", "n", "step", "kl", "train", "train_lo", "train_hi", "test", "test_lo",
            "test_hi", "gap", "gap_lo", "gap_hi", "train_raw", "test_raw"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in table:
            flat = {**r, **{f"{k}_{e}": r[f"{k}_ci95"][i] for k in ("train", "test", "gap")
                            for i, e in enumerate(("lo", "hi"))}}
            w.writerow(["" if flat[k] is None else flat[k] for k in cols])


def report_markdown(s: dict[str, Any]) -> str:
    """The curve as Markdown."""
    h, t = s["pm_heldout"], s["pm_training"]
    lines = [f"# Reward over-optimisation: {s['data']}", "",
             f"Policy `{s['policy']}`; train PM and test PM `{s['pm_base']}` trained on "
             f"{s['train_pm_pairs']} and {s['test_pm_pairs']} pairs (disjoint prompts). "
             f"{s['n_prompts']} held-out prompts, T={s['temperature']}, "
             f"{s['max_new_tokens']} new tokens at most.", "",
             f"On the {s['heldout_pairs']} held-out pairs: train PM accuracy "
             f"{h['train_pm']['accuracy']:.3f}, test PM {h['test_pm']['accuracy']:.3f}; "
             f"they prefer the same reply on {h['agreement']:.3f} of them (Spearman of the "
             f"margins {h['spearman_margin']:.3f}).", "",
             "Scores are standardised per PM on all the policy's best-of-N candidates; "
             "95% bootstrap intervals over prompts; gap = train - test.", "",
             "| method | N / step | KL (nats) | train PM | test PM | gap | train PM raw | "
             "test PM raw |", "|---|---|---|---|---|---|---|---|"]
    for r in s["curve"]:
        cells = [f"{r[k]:+.3f} ({r[f'{k}_ci95'][0]:+.2f}, {r[f'{k}_ci95'][1]:+.2f})"
                 for k in ("train", "test", "gap")]
        where = f"N={r['n']}" if r["method"] == "best-of-n" else f"step {r['step']}"
        lines.append(f"| {r['method']} | {where} | {r['kl']:.3f} | " + " | ".join(cells)
                     + f" | {r['train_raw']:.3f} | {r['test_raw']:.3f} |")
    every = s["all_stage_seconds"]
    lines += ["", f"PM training: train PM {t['train']['seconds']:.0f} s (loss "
                  f"{t['train']['train_loss']}), test PM {t['test']['seconds']:.0f} s (loss "
                  f"{t['test']['train_loss']}).",
              "", f"Stage times over all runs of this experiment (total "
                  f"{sum(every.values()):.0f} s): {every}.", "", "![curve](curve.png)"]
    return "\n".join(lines) + "\n"
