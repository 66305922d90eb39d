"""`scores` members: rewards computed elsewhere, read from a file; pairs the file lacks
are reported and count as missing votes, never as ties or zeros."""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from preflab.audit.audit_pairs import audit
from preflab.committee.members import score_member
from preflab.committee.scores import file_scores, read_scores, write_scores
from preflab.committee.spec import CommitteeError, parse_committee
from preflab.data.pair import PreferencePair
from preflab.engine import Engine, EngineOptions
from preflab.errors import PairError
from tests.helpers import length_reward


def word_overlap_reward(context: list[dict[str, str]], reply: str) -> float:
    """A toy reward: the share of the reply's words that the context uses."""
    seen = {w.lower() for m in context for w in m["content"].split()}
    words = reply.lower().split()
    return sum(w in seen for w in words) / max(len(words), 1)


def hh_pairs(hh_result: Any, n: int) -> list[PreferencePair]:
    from preflab.data.read import iter_pairs

    return list(islice(iter_pairs(hh_result.pairs), n))


def length_rewards(pairs: list[PreferencePair]) -> tuple[np.ndarray, np.ndarray]:
    r_c = np.array([length_reward(p.prompt, p.chosen) for p in pairs])
    r_r = np.array([length_reward(p.rejected_context, p.rejected) for p in pairs])
    return r_c, r_r


def test_missing_pairs_are_reported_and_count_as_missing_votes(tmp_path: Path, hh_path: Path,
                                                               hh_result: Any) -> None:
    pairs = hh_pairs(hh_result, 60)
    r_c, r_r = length_rewards(pairs)
    dropped = list(range(3, 60, 6))  # 10 pairs the other cluster did not score
    r_c[dropped] = np.nan
    scores_file = write_scores(tmp_path / "elsewhere.jsonl", pairs, r_c, r_r)
    committee = tmp_path / "mixed.toml"
    committee.write_text(
        '[[member]]\nname = "length"\nkind = "python"\nfunction = "tests.helpers:length_reward"\n'
        '[[member]]\nname = "overlap"\nkind = "python"\n'
        'function = "tests.committee.test_scores:word_overlap_reward"\n'
        f'[[member]]\nname = "elsewhere"\nkind = "scores"\npath = "{scores_file}"\n')
    summary = audit(hh_path, committee=committee, out=tmp_path / "a", limit=60,
                    combine="mean", engine_options=EngineOptions(
                        cache_path=tmp_path / "c.sqlite", progress=False))
    missing = {pairs[i].id for i in dropped}
    run = summary["member_runs"]["elsewhere"]
    assert run["missing"] == 10 and set(run["missing_ids"]) == missing
    assert any("elsewhere: no score for 10 pairs (missing votes" in w
               for w in summary["member_warnings"])
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet").set_index("id")
    gone = table.index.isin(missing)
    assert table.loc[gone, "margin.elsewhere"].isna().all()
    assert table.loc[gone, "vote.elsewhere"].isna().all()  # a null vote, not 0
    # elsewhere is a copy of length: the two count as one voter, which still votes
    # through length where the file has no score
    assert summary["voters"] == ["length+elsewhere", "overlap"]
    assert (table["members"] == 2).all()
    assert np.allclose(table["agreement"], table["votes"] / table["members"])
    # where the file has the pair, it is the length member scored elsewhere
    assert np.array_equal(table.loc[~gone, "margin.elsewhere"], table.loc[~gone, "margin.length"])
    # a missing vote is no tie: a pair both local members back is unanimous, not "high"
    both = gone & (table["vote.length"] == 1) & (table["vote.overlap"] == 1)
    assert both.any() and (table.loc[both, "bin"] == "unanimous").all()


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
def test_text_keyed_rewards_match_by_prompt_and_reply(tmp_path: Path, suffix: str) -> None:
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    pairs = [PreferencePair(user("Hi"), "Hello there", "Go away"),
             PreferencePair(user("Hi"), "Hello there", "Bye"),  # shares a scored reply
             PreferencePair(user("Bake?"), "Flour.", "No.", rejected_prompt=user("Cook?"))]
    r_c, r_r = np.array([3.0, 3.0, 1.0]), np.array([-1.0, 0.5, 2.0])
    path = write_scores(tmp_path / f"s{suffix}", pairs, r_c, r_r, key="text")
    kind, scores = read_scores(path)
    assert kind == "text" and len(scores) == 5  # five distinct (context, reply) rows
    margin, got_c, got_r, missing = file_scores(pairs, path)
    assert missing == [] and np.array_equal(margin, r_c - r_r)
    assert np.array_equal(got_c, r_c) and np.array_equal(got_r, r_r)
    # the rejected reply of the last pair answers its own prompt, not the chosen one's
    other = PreferencePair(user("Bake?"), "Flour.", "No.")
    assert file_scores([other], path)[3] == [other.id]


def test_per_pair_margins_by_id(tmp_path: Path) -> None:
    pairs = [PreferencePair([{"role": "user", "content": f"q{i}"}], "a", "b") for i in range(3)]
    path = tmp_path / "m.parquet"
    pd.DataFrame({"id": [pairs[0].id, pairs[2].id], "margin": [1.5, -2.0]}).to_parquet(path)
    committee = parse_committee({"member": [{"name": "m", "kind": "scores",
                                             "path": str(path)}]}, "x")
    s = score_member(committee.members[0], pairs,
                     Engine(EngineOptions(cache_path=":memory:", progress=False)))
    assert s.margin[0] == 1.5 and s.margin[2] == -2.0 and np.isnan(s.margin[1])
    assert np.isnan(s.r_chosen).all()  # a margin alone gives no rewards
    assert s.info == {"missing": 1, "missing_ids": [pairs[1].id]}


@pytest.mark.parametrize(("text", "message"), [
    ('{"id": "a", "margin": 1}\n{"id": "b", "margin"\n', "s.jsonl, line 2: not valid JSON"),
    ('{"id": "a", "r_chosen": 1}\n', "s.jsonl, row 1: field 'r_rejected': must be a finite"),
    ('{"id": "a", "margin": 1}\n{"id": "a", "margin": 2}\n',
     "row 2: field 'id': scored twice with different values"),
    ('{"prompt": "hi", "reply": 3, "reward": 1}\n', "row 1: field 'reply': missing, or not"),
    ('{"id": 7, "margin": 1}\n', "row 1: field 'id': missing or not a string"),
    ("", "the scores file is empty"),
])
def test_bad_scores_files_name_the_row_and_field(tmp_path: Path, text: str,
                                                 message: str) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(text)
    with pytest.raises(PairError, match=message.replace("(", r"\(")):
        read_scores(path)


def test_scores_member_is_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(CommitteeError, match=r"scores file .* not found"):
        parse_committee({"member": [{"name": "s", "kind": "scores",
                                     "path": str(tmp_path / "none.jsonl")}]}, "x")
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"id": "a", "margin": 1.0}) + "\n")
    with pytest.raises(CommitteeError, match="key must be one of id, text"):
        parse_committee({"member": [{"name": "s", "kind": "scores", "path": str(path),
                                     "key": "hash"}]}, "x")
    bad = tmp_path / "s.csv"
    bad.write_text("id,margin\n")
    with pytest.raises(PairError, match=r"must be \.parquet or \.jsonl"):
        read_scores(bad)
