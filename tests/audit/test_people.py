"""The audit against people (issue 34, item 2): members', the committee's and the label's
agreement with people's consensus with Wilson intervals, whether the committee's doubt
predicts people's disagreement, and the report's and the console's section. Small
synthetic tables, no model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preflab.audit.people import against_people, bootstrap_auc, wilson
from preflab.audit.report import _people_html, render_report
from preflab.audit.stats import summarize
from preflab.cli.audit import print_people
from preflab.data.pair import PreferencePair
from preflab.data.reviews import COUNTS, decide_pairs
from tests.review.helpers import write_audit

# People's verdicts on 20 pairs, three reviewers each: 12 chosen (p0-p11), 6 rejected
# (p12-p17, one reviewer dissenting), both-bad (p18), and p19 with one vote so far.
VERDICTS = ([["chosen"] * 3] * 12 + [["rejected", "rejected", "chosen"]] * 6
            + [["both-bad"] * 3, ["chosen"]])
N = len(VERDICTS)
IDS = [f"p{i}" for i in range(N)]
CHOSEN, REJECTED = range(12), range(12, 18)


def decided(verdicts: list[list[str]] = VERDICTS, ids: list[str] = IDS) -> pd.DataFrame:
    """People's consensus per pair, as the review export's reader decides it."""
    reviews = pd.DataFrame([{"pair_id": i, "assigned": 3, "n_votes": len(v),
                             **{col: v.count(name) for name, col in COUNTS.items()},
                             "human_source": "review"} for i, v in zip(ids, verdicts, strict=True)])
    return decide_pairs(reviews)


def table() -> pd.DataFrame:
    """An audit table: `perfect` votes as people say, `gappy` votes 1 on even pairs only,
    the committee is right on every decided pair but p0 (no opinion) and p1 (wrong)."""
    right = np.array([1 if i < 12 else 0 for i in range(N)], dtype=float)
    p = np.where(right == 1, 0.9, 0.1)
    p[0], p[1] = 0.5, 0.3
    return pd.DataFrame({
        "id": IDS,
        "vote.perfect": pd.array(right, dtype="Int8"),
        "vote.gappy": pd.array([1 if i % 2 == 0 else None for i in range(N)], dtype="Int8"),
        "p_chosen": p,
    })


def test_a_perfect_member_agrees_fully_with_its_wilson_interval() -> None:
    people = against_people(table(), decided())
    assert people["n_reviewed"] == N and people["n_decided"] == 18
    perfect = people["members"]["perfect"]
    assert perfect["n"] == 18 and perfect["with_people"] == 1.0
    assert perfect["ci95"] == [round(18 / (18 + 1.959964 ** 2), 4), 1.0]
    assert perfect["with_labels"] == round(12 / 18, 4)
    json.dumps(people)  # JSON-ready


def test_a_member_with_missing_votes_counts_only_its_votes() -> None:
    gappy = against_people(table(), decided())["members"]["gappy"]
    # even decided pairs: p0-p10 (6, people say chosen) and p12, p14, p16 (reversed)
    assert gappy["n"] == 9 and gappy["with_people"] == round(6 / 9, 4)
    assert gappy["with_labels"] == 1.0
    assert gappy["ci95"] == wilson(6, 9)


def test_committee_and_label_rows() -> None:
    people = against_people(table(), decided())
    committee, label = people["committee"], people["label"]
    assert committee["n"] == 17  # p0's 0.5 is no opinion
    assert committee["with_people"] == round(16 / 17, 4)
    assert committee["with_labels"] == round(10 / 17, 4)
    assert label == {"n": 18, "with_people": round(12 / 18, 4), "ci95": wilson(12, 18),
                     "with_labels": 1.0}


def test_the_committees_doubt_against_reversals_and_splits() -> None:
    people = against_people(table(), decided(), seed=3)
    reversal = people["doubt_vs_reversal"]
    assert reversal["n"] == 18 and reversal["n_positive"] == 6
    assert reversal["auc"] == 1.0 and reversal["ci95"] == [1.0, 1.0]
    split = people["doubt_vs_split"]  # pairs with two votes or more: not p19
    # the split pairs p12-p17 are doubted most; of the 13 others only p18 ties with them
    assert split["n"] == 19 and split["n_positive"] == 6
    assert split["auc"] == round(12.5 / 13, 4)
    assert against_people(table(), decided(), seed=3) == people  # seeded
    # no reversal among the pairs: the AUC is not defined
    none = against_people(table().iloc[:12], decided(VERDICTS[:12], IDS[:12]))
    assert none["doubt_vs_reversal"] == {"n": 12, "n_positive": 0, "auc": None, "ci95": None}


def test_bootstrap_auc_matches_the_rank_auc_and_brackets_it() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    score = np.round(rng.normal(size=60) + y, 1)  # ties too
    d = bootstrap_auc(y, score)
    pos, neg = score[y == 1][:, None], score[y == 0][None, :]
    assert d["auc"] == round(float(((pos > neg) + 0.5 * (pos == neg)).mean()), 4)
    assert d["ci95"][0] < d["auc"] < d["ci95"][1]


def test_a_reviewed_pair_missing_from_the_table_is_named() -> None:
    reviews = decided(VERDICTS[:3], ["p0", "zz-not-audited", "zz-other"])
    with pytest.raises(ValueError, match="'zz-not-audited' \\(and 1 more\\) is not in the "
                                         "audit table"):
        against_people(table(), reviews)


def test_report_and_console_show_the_section_against_people(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = [PreferencePair(prompt=[{"role": "user", "content": f"question {i}"}],
                            chosen=f"good {i}", rejected=f"bad {i}", subset="s")
             for i in range(N)]
    folder = write_audit(pairs, tmp_path / "audit")
    audit = pd.read_parquet(folder / "audit.parquet")
    summary = {**json.loads((folder / "summary.json").read_text()), **summarize(audit),
               "data": "pairs.jsonl", "committee": "synthetic", "seconds": 1.0,
               "pairs_per_s": 20.0}
    assert _people_html(summary) == ""  # no reviews: no section
    summary["people"] = against_people(audit, decided(ids=[p.id for p in pairs]))
    page = render_report(audit, summary, {p.id: p for p in pairs})
    assert "<h2>Against people</h2>" in page and "<td>original label</td>" in page
    label = summary["people"]["label"]
    assert (f"<td>{label['with_people']:.1%} [{label['ci95'][0]:.1%}-{label['ci95'][1]:.1%}]"
            f" (n=18)</td>") in page
    assert "against people reversing the label: ROC-AUC" in page
    print_people(summary["people"])  # what `preflab audit` prints when people reviewed
    printed = capsys.readouterr().out
    assert "against people (18 of 20 reviewed pairs" in printed
    assert "original label" in printed and "against people splitting" in printed
