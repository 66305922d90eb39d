"""People teach the committee: a simulation of `audit --review` and `clean --review`.

For each committee, data size, flip rate and seed: a seeded fraction of the demo data's
labels is flipped (recorded demo flips are turned back first, so the injected flips
are the whole noise) and the noisy data is audited once (member scores come from the
engine's cache; the committee is fitted on the labels, as without a review). Then for
each reviewer accuracy q, budget and selection (``random`` or ``active``, chosen from
that first audit by :func:`preflab.review.select.choose_pairs`, as ``review init
--select`` does), three simulated reviewers judge each chosen pair, each agreeing with
the truth with probability q, and the project's quorum (a strict majority: 2 of 3)
decides. From the same member scores, with no model run:

- flip-detection ROC-AUC (suspicion 1 - P(chosen) against the injected flips) of the
  committee fitted on the labels, of the committee fitted on people (``audit
  --review``, :func:`preflab.audit.refit.refit_table`) and of the best single member;
- residual noise (wrong labels among the kept pairs) and kept share after ``clean
  --method sac``: without a review, with the review overriding the pairs it judged
  (``clean --review`` on the label-fitted audit) and with both the taught audit and
  the review (``audit --review`` then ``clean --review``);
- reviewer effort: votes cast per point of residual noise removed (against sac with
  no review).

Last line: JSON {"rows": [...], "checks": {...}, "machine": ..., "peak_rss_mb": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.audit_pairs import audit
from preflab.audit.refit import refit_table
from preflab.audit.stats import member_names
from preflab.audit.table import Combination
from preflab.audit.taught import PeopleVerdicts
from preflab.audit.view import AuditView
from preflab.clean.human import apply_review
from preflab.clean.methods import run_method
from preflab.clean.metrics import detection_metrics
from preflab.clean.noise import inject_flips, restore_truth
from preflab.data.demo import demo
from preflab.data.groups import pair_groups
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.reviews import COUNTS, decide_pairs
from preflab.data.write import write_pairs
from preflab.models.runtime import cpu_has_bf16
from preflab.review.select import choose_pairs

REVIEWERS = 3


def machine() -> dict[str, Any]:
    """The CPU this ran on: model, AVX-512 and bf16 or not, threads."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "avx512": "avx512f" in info, "bf16": cpu_has_bf16(),
            "threads": os.cpu_count()}


def auc(flipped: np.ndarray, suspicion: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(flipped, np.nan_to_num(suspicion))), 4)


def simulated_reviews(ids: list[str], flipped: dict[str, bool], q: float,
                      rng: np.random.Generator) -> pd.DataFrame:
    """A review export's per-pair table: three reviewers per pair, each naming the truly
    better reply with probability q, the other one otherwise."""
    right = rng.random((len(ids), REVIEWERS)) < q
    truth_is_chosen = np.array([not flipped[i] for i in ids])
    says_chosen = (right == truth_is_chosen[:, None]).sum(axis=1)
    frame = pd.DataFrame({"pair_id": ids, "assigned": REVIEWERS, "n_votes": REVIEWERS,
                          **{col: 0 for col in COUNTS.values()}, "human_source": ""})
    frame[COUNTS["chosen"]] = says_chosen
    frame[COUNTS["rejected"]] = REVIEWERS - says_chosen
    return frame


def cleaned(view: AuditView, mask: np.ndarray, reviews: pd.DataFrame | None
            ) -> dict[str, Any]:
    """Residual noise and kept share after sac (and the review, when given)."""
    decisions = run_method(view, "sac")
    if reviews is not None:
        decisions, _ = apply_review(decisions, reviews)
    m = detection_metrics(decisions, mask)
    return {"residual": m["residual_noise"], "kept": m["kept_fraction"]}


def audited(truth: list[Any], rate: float, seed: int, committee: str, out: Path
            ) -> tuple[AuditView, np.ndarray, np.ndarray]:
    """The noisy data's label-fitted audit (from cache when run before), its flip mask
    and its cross-fitting groups."""
    noisy, mask = inject_flips(truth, rate, seed)
    folder = out / f"seed-{seed}" / f"rate-{rate:g}"
    folder.mkdir(parents=True, exist_ok=True)
    write_pairs(noisy, folder / "pairs.jsonl")
    audit(folder / "pairs.jsonl", committee=committee, out=folder / "audit", seed=seed,
          overwrite=True)
    return AuditView.load(folder / "audit"), mask, pair_groups(noisy)


def cell(view: AuditView, mask: np.ndarray, groups: np.ndarray, seed: int, q: float,
         budget: int, select: str) -> dict[str, Any]:
    """One simulated review round on one audit: AUCs, cleaning figures, effort."""
    flipped = dict(zip(view.table["id"], mask.tolist(), strict=True))
    ids = choose_pairs(view.table, sample=budget, select=select, seed=seed + 1000)
    rng = np.random.default_rng([seed, budget, int(q * 100), 7])
    reviews = simulated_reviews(ids, flipped, q, rng)
    people = PeopleVerdicts(decide_pairs(reviews), "simulated review")
    taught, info = refit_table(view.table, view.kinds, Combination(
        "stacked", seed, groups, people.targets(view.table["id"].tolist()), resamples=0,
        tallies=people.tallies(view.table["id"].tolist())))
    taught_view = AuditView(taught, view.kinds, orientation=info["orientation"])
    return {"reversed": int((people.decided["consensus"] == "rejected").sum()),
            "auc_review_fitted": auc(mask, 1 - taught["p_chosen"].to_numpy()),
            "fitted_on": info.get("fitted_on", "labels"),
            "override": cleaned(view, mask, reviews),
            "taught": cleaned(taught_view, mask, reviews)}


def run_audit(view: AuditView, mask: np.ndarray, groups: np.ndarray, key: dict[str, Any],
              args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every review cell of one audit, as table rows."""
    table = view.table
    margins = table[[f"margin.{n}" for n in member_names(table)]].to_numpy(dtype=float)
    base = {**key, "auc_label_fitted": auc(mask, 1 - table["p_chosen"].to_numpy()),
            "auc_best_member": max(auc(mask, -margins[:, k]) for k in range(margins.shape[1]))}
    plain = cleaned(view, mask, None)
    rows = []
    for q in args.q:
        for budget in args.budgets:
            for select in args.selects:
                c = cell(view, mask, groups, key["seed"], q, budget, select)
                removed = 100 * (plain["residual"] - c["taught"]["residual"])
                rows.append({**base, "q": q, "budget": budget, "select": select,
                             "reversed": c["reversed"],
                             "auc_review_fitted": c["auc_review_fitted"],
                             "fitted_on": c["fitted_on"],
                             "residual_sac": plain["residual"], "kept_sac": plain["kept"],
                             "residual_override": c["override"]["residual"],
                             "kept_override": c["override"]["kept"],
                             "residual_taught": c["taught"]["residual"],
                             "kept_taught": c["taught"]["kept"],
                             "votes_per_point": (round(REVIEWERS * budget / removed, 1)
                                                 if removed > 0 else None)})
    return rows


def checks(frame: pd.DataFrame) -> dict[str, Any]:
    """The issue's acceptance figures from the rows."""
    out: dict[str, Any] = {}
    gap = frame["auc_review_fitted"] - frame["auc_best_member"]
    cell_ = (frame["pairs"] == 500) & (frame["rate"] == 0.4) & (frame["q"] == 0.85) & (
        frame["budget"] == 50)
    for (committee, select), part in frame[cell_].groupby(["committee", "select"]):
        out[f"500 pairs, 40%, q 0.85, 50 reviewed, {committee}, {select}: review-fitted "
            "minus best member, per seed"] = gap[part.index].round(4).tolist()
    low = frame["rate"] < 0.4
    worst = (frame.loc[low, "auc_review_fitted"] - frame.loc[low, "auc_label_fitted"]).min()
    out["10% and 25% flips: worst review-fitted minus label-fitted AUC"] = round(float(worst), 4)
    ab = frame[(frame["pairs"] == 2000) & (frame["q"] == 0.85) & (frame["budget"] == 100)]
    for committee, part in ab.groupby("committee"):
        means = part.groupby(["rate", "select"])["residual_taught"].mean().unstack()
        if {"active", "random"} <= set(means.columns):
            out[f"2000 pairs, q 0.85, 100 reviewed, {committee}: mean residual noise after "
                "audit --review + clean --review (active, random) per flip rate"] = {
                f"{rate:g}": [round(float(r["active"]), 4), round(float(r["random"]), 4)]
                for rate, r in means.iterrows()}
    return out


def parse(text: str, kind: type) -> list[Any]:
    return [kind(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=None,
                        help="preference file; default: demo data of each --pairs size, "
                             "recorded flips undone")
    parser.add_argument("--pairs", default="500,2000", help="data sizes, comma-separated")
    parser.add_argument("--committees", default="cpu-fast,cpu")
    parser.add_argument("--rates", default="0.1,0.25,0.4")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--q", default="0.7,0.85", help="each reviewer's accuracy")
    parser.add_argument("--budgets", default="25,50,100,200", help="pairs reviewed")
    parser.add_argument("--selects", default="random,active")
    parser.add_argument("--out", default="runs/bench-review-calibration")
    args = parser.parse_args()
    args.q, args.budgets = parse(args.q, float), parse(args.budgets, int)
    args.selects = parse(args.selects, str)
    started = time.perf_counter()
    rows = []
    for committee in parse(args.committees, str):
        for n in parse(args.pairs, int):
            out = Path(args.out) / committee / f"pairs-{n}"
            data = args.data
            if data is None:
                data = str(Path(args.out) / f"demo-{n}.jsonl")
                demo(data, n=n, flip_rate=0.25, seed=0, overwrite=True)
            truth, _ = restore_truth(list(iter_pairs(read_pairs(data).pairs))[:n])
            for seed in parse(args.seeds, int):
                for rate in parse(args.rates, float):
                    view, mask, groups = audited(truth, rate, seed, committee, out)
                    key = {"committee": committee, "pairs": len(truth), "rate": rate,
                           "seed": seed}
                    rows += run_audit(view, mask, groups, key, args)
                    print(f"{key} done, {time.perf_counter() - started:.0f} s", flush=True)
    frame = pd.DataFrame(rows)
    shown = ["auc_label_fitted", "auc_review_fitted", "auc_best_member", "residual_sac",
             "residual_override", "residual_taught", "kept_taught", "votes_per_point"]
    with pd.option_context("display.width", 250, "display.max_rows", 2000):
        print(frame.groupby(["committee", "pairs", "rate", "q", "budget", "select"])[shown]
              .mean().round(4).to_string())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "checks": checks(frame), "machine": machine(),
                      "seconds": round(time.perf_counter() - started, 1),
                      "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
