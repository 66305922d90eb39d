"""A small human-review study end to end, with three scripted reviewers over HTTP.

audit (``--committee``, skipped when ``--audit`` already holds one) -> ``review init
--sample N --strata bin --per-pair 3`` with three reviewers -> ``preflab review serve``
in its own process -> three reviewers play through the HTTP API at once:

- ``label`` follows the original label (picks the reply that is the data's chosen);
- ``committee`` follows the audit (the reply the committee prefers; *both bad* or
  *both good* where the audit's source guess says so, and that guess as source tag);
- ``random`` picks one of the five choices and, half the time, a source at random;

or, with ``--follow MEMBER:Q``, three reviewers ``follow-a``, ``-b``, ``-c`` who each
pick the reply audit member MEMBER prefers with probability Q (independently per
pair and reviewer) and the other reply otherwise;

-> ``review export`` -> ``clean --method sac`` without (the baseline) and with
``--review``. With ``--teach``, the data is audited again with ``--review`` (the
committee taught by people, :mod:`preflab.audit.taught`) and the study reports the
members against people, the weights before and after with their intervals, how
``p_chosen`` and the bins moved, and ``clean --method sac --review`` on that audit.
With ``--screenshots DIR`` it also drives Debian's chromium (Playwright)
through the first judgement of ``label`` and saves the page before and after submitting
and the export report as PNG.

Last line: one JSON object (Fleiss kappa overall and per bin, choice and source shares,
consensus counts, each reviewer's agreement, clean counts with and without the review,
seconds, peak memory of this process and of its children).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from preflab.audit.noise_sources import SOURCES
from preflab.audit.view import AuditView
from preflab.clean.clean_pairs import clean
from preflab.data.read import iter_pairs, read_pairs
from preflab.review.export import export_review
from preflab.review.project import init_review

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")
REVIEWERS = ("label", "committee", "random")
CHOICES = ("A", "B", "both-good", "both-bad", "uncertain")
KEY = {c: str(k + 1) for k, c in enumerate(CHOICES)}


def side(view: dict[str, Any], text: str) -> str:
    """Which shown reply ("A" or "B") is `text`."""
    return "A" if view["replies"]["A"]["text"] == text else "B"


def decide(name: str, view: dict[str, Any], pair: Any, audit: dict[str, Any],
           rng: np.random.Generator) -> tuple[str, str]:
    """(choice, source tag) of scripted reviewer `name` on one pair as shown."""
    if name.startswith("follow-"):
        member, q = audit["follow"]
        margin = audit[f"margin.{member}"]
        prefers_chosen = margin > 0 if margin == margin else rng.random() < 0.5  # NaN: a coin
        right = rng.random() < q
        return side(view, pair.chosen if prefers_chosen == right else pair.rejected), ""
    if name == "label":
        return side(view, pair.chosen), ""
    if name == "committee":
        source = audit["source"]
        if source in ("both-bad", "both-harmful"):
            return "both-bad", source
        if source == "different-thresholds":
            return "both-good", source
        better = pair.chosen if audit["p_chosen"] >= 0.5 else pair.rejected
        return side(view, better), source
    choice = str(rng.choice(CHOICES))
    return choice, str(rng.choice(SOURCES)) if rng.random() < 0.5 else ""


def play(url: str, name: str, token: str, by_id: dict[str, Any],
         audit: dict[str, dict[str, Any]], seed: int, counts: dict[str, int]) -> None:
    """One scripted reviewer through the HTTP API: every pair of theirs not yet judged."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    rng = np.random.default_rng(seed)
    state = s.get(f"{url}/api/state", timeout=30).json()
    for item in state["queue"]:
        if item["choice"]:
            continue
        view = s.get(f"{url}/api/pairs/{item['pair_id']}", timeout=30).json()
        choice, tag = decide(name, view, by_id[item["pair_id"]], audit[item["pair_id"]], rng)
        r = s.post(f"{url}/api/votes", timeout=30, json={
            "pair_id": item["pair_id"], "choice": choice, "source_tag": tag,
            "submission": str(uuid.uuid4()), "page_version": f"script:{name}"})
        r.raise_for_status()
        counts[name] += 1


def serve(db: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "preflab.cli", "review", "serve", str(db),
                             "--port", "0", "--quiet"], stdout=subprocess.PIPE,
                            stderr=log.open("w"), text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving review at" not in line:
        proc.kill()
        raise RuntimeError(f"review serve did not start: {log.read_text()[-2000:]}")
    return proc, line.split(" at ")[1].strip()


def browser(chromium: str) -> tuple[Any, Any]:
    from playwright.sync_api import sync_playwright

    p = sync_playwright().start()
    b = p.chromium.launch(executable_path=chromium, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    return p, b


def first_judgement_shots(b: Any, url: str, token: str, by_id: dict[str, Any],
                          shots: Path) -> None:
    """Reviewer `label` judges their first pair in the browser: before and after."""
    page = b.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/?token={token}")
    page.wait_for_selector("#pair:not([hidden])")
    pair_id = page.get_attribute("#pair", "data-pair-id")
    a = page.eval_on_selector("#reply-A .text", "e => e.textContent")
    key = "1" if a == by_id[pair_id].chosen else "2"
    page.keyboard.press(key)
    page.screenshot(path=str(shots / "h23-page-before.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_selector(".reveal-item")
    page.screenshot(path=str(shots / "h23-page-after.png"), full_page=True)
    page.close()


def teach(args: argparse.Namespace, audit_dir: Path, keys: tuple[str, ...]
          ) -> dict[str, Any]:
    """Audit again taught by the export; what moved, and sac with the review on it."""
    out = args.out / "audit-taught"
    subprocess.run([sys.executable, "-m", "preflab.cli", "audit", str(args.data),
                    "--committee", args.committee, "--review", str(args.out / "export"),
                    "--out", str(out), "--overwrite"], check=True)
    before = json.loads((audit_dir / "summary.json").read_text())
    after = json.loads((out / "summary.json").read_text())
    old = AuditView.load(audit_dir).table.set_index("id")
    new = AuditView.load(out).table.set_index("id").loc[old.index]
    dp = new["p_chosen"] - old["p_chosen"]
    side_changed = (new["p_chosen"] > 0.5) != (old["p_chosen"] > 0.5)
    bins = pd.crosstab(old["bin"], new["bin"])
    cleaned = clean(args.data, out, method="sac", out=args.out / "clean-taught-review",
                    review=args.out / "export")
    combined = after["committee_probability"]
    return {
        "people": after["people"], "fitted_on": combined.get("fitted_on"),
        "label_weight": combined.get("label_weight"),
        "weights_before": before["committee_probability"]["weights"],
        "weights_after": combined["weights"], "weight_intervals": combined.get("weight_intervals"),
        "counted_voters": {v: info.get("counted", True) for v, info in combined["voters"].items()},
        "p_chosen_moved": {"mean_abs": round(float(dp.abs().mean()), 4),
                           "median_abs": round(float(dp.abs().median()), 4),
                           "max_abs": round(float(dp.abs().max()), 4),
                           "crossed_half": int(side_changed.sum()),
                           "spearman": round(float(old["p_chosen"].corr(new["p_chosen"],
                                                                       method="spearman")), 4)},
        "bins_before": old["bin"].value_counts().to_dict(),
        "bins_after": new["bin"].value_counts().to_dict(),
        "bins_moved": int((old["bin"] != new["bin"]).sum()),
        "bin_moves": {f"{a} -> {b}": int(bins.loc[a, b]) for a in bins.index
                      for b in bins.columns if a != b and bins.loc[a, b]},
        "flip_auc": {"before": before.get("flip_detection_auc"),
                     "after": after.get("flip_detection_auc")},
        "clean_sac_review_on_taught": {k: cleaned[k] for k in keys},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--audit", type=Path, default=None,
                    help="an audit of --data (default: OUT/audit, made if missing)")
    ap.add_argument("--committee", default="cpu-fast")
    ap.add_argument("--pairs", type=int, default=30, help="pairs sampled for review")
    ap.add_argument("--out", type=Path, default=Path("runs/review-study"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--screenshots", type=Path, default=None)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--follow", default=None,
                    help="MEMBER:Q: three reviewers who follow audit member MEMBER with "
                         "probability Q, instead of label/committee/random")
    ap.add_argument("--teach", action="store_true",
                    help="audit again with --review EXPORT and report what moved")
    args = ap.parse_args()
    reviewers = REVIEWERS if args.follow is None else ("follow-a", "follow-b", "follow-c")
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    audit_dir = args.audit or args.out / "audit"
    if not (audit_dir / "audit.parquet").exists():
        subprocess.run([sys.executable, "-m", "preflab.cli", "audit", str(args.data),
                        "--committee", args.committee, "--out", str(audit_dir)], check=True)
    audit_seconds = time.perf_counter() - started
    db = args.out / "review.sqlite"
    for stale in args.out.glob("review.sqlite*"):  # the study's own project, made anew
        stale.unlink()
    init = init_review(args.data, audit_dir, db, sample=args.pairs, strata="bin", per_pair=3,
                       reviewers=list(reviewers), seed=args.seed)
    tokens = init["tokens"]
    view = AuditView.load(audit_dir)
    follow = None if args.follow is None else args.follow.rsplit(":", 1)
    if follow and f"margin.{follow[0]}" not in view.table:
        raise SystemExit(f"--follow {args.follow}: the audit {audit_dir} has no member "
                         f"{follow[0]!r} (members: {', '.join(view.members)})")
    columns = ["p_chosen", "source", "bin"] + ([f"margin.{follow[0]}"] if follow else [])
    audit = view.table.set_index("id")[columns].to_dict("index")
    for row in audit.values():
        row["follow"] = (follow[0], float(follow[1])) if follow else None
    wanted = set(view.table["id"])
    by_id = {p.id: p for p in iter_pairs(read_pairs(args.data).pairs) if p.id in wanted}
    proc, url = serve(db, args.out / "serve.log")
    counts = dict.fromkeys(reviewers, 0)
    pw = b = None
    try:
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            pw, b = browser(args.chromium)
            first_judgement_shots(b, url, tokens["label"], by_id, args.screenshots)
        review_started = time.perf_counter()
        threads = [threading.Thread(target=play, args=(url, n, tokens[n], by_id, audit,
                                                       args.seed + k, counts))
                   for k, n in enumerate(reviewers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        review_seconds = time.perf_counter() - review_started
    finally:
        proc.terminate()
        proc.wait(30)
    summary = export_review(db, args.out / "export")
    if b is not None and args.screenshots:
        page = b.new_page(viewport={"width": 1200, "height": 1000})
        page.goto((args.out / "export" / "report.html").resolve().as_uri())
        page.screenshot(path=str(args.screenshots / "h23-report.png"), full_page=True)
        b.close()
        pw.stop()
    baseline = clean(args.data, audit_dir, method="sac", out=args.out / "clean-sac")
    reviewed = clean(args.data, audit_dir, method="sac", out=args.out / "clean-review",
                     review=args.out / "export")
    keys = ("keep", "flip", "remove", "relabel", "n_output")
    taught = teach(args, audit_dir, keys) if args.teach else None
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({
        "pairs": init["pairs"], "bins": init["bins_added"], "reviewers": list(reviewers),
        "follow": args.follow, "taught": taught,
        "votes_submitted": counts, "fleiss_kappa": summary["fleiss_kappa"],
        "choice_shares": summary["choice_shares"], "source_shares": summary["source_shares"],
        "n_source_tags": summary["n_source_tags"], "consensus": summary["consensus"],
        "reviewer_agreement": summary["reviewers"],
        "reversal_share_by_bin": {k: v["reversal_share"] for k, v in summary["by_bin"].items()},
        "committee_vs_people": summary["committee_vs_people"],
        "clean_sac": {k: baseline[k] for k in keys},
        "clean_sac_review": {k: reviewed[k] for k in keys},
        "human_review": reviewed["human_review"],
        "audit_seconds": round(audit_seconds, 2), "review_seconds": round(review_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(child / 1024, 1),
    }))


if __name__ == "__main__":
    main()
