"""Inputs longer than a member's model reads: shortened by the member's stated rule,
counted per pair (cached or not), never dropped; an audit says so on the console.

As found (issue 32): a 512-position reward model as a `seq-rm` member crashed on
pairs over 512 tokens and the audit left them out with no word on the console."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from preflab.committee.members import score_member
from preflab.committee.spec import parse_committee
from preflab.engine import Engine, EngineOptions

CONTEXT = 64  # the tiny models' positions


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models of 64 positions: a BERT reward model (its positions end hard), a
    Llama reward model and a GPT-2 causal LM (judge, ifd)."""
    from preflab.models.tiny import (
        tiny_causal_lm,
        tiny_encoder_reward_model,
        tiny_reward_model,
        tiny_tokenizer,
    )

    tok = tiny_tokenizer()
    root = tmp_path_factory.mktemp("short")
    models = {"bert-rm": tiny_encoder_reward_model(tok, max_position_embeddings=CONTEXT),
              "llama-rm": tiny_reward_model(tok, max_position_embeddings=CONTEXT),
              "gpt2": tiny_causal_lm(tok, "gpt2", n_positions=CONTEXT)}
    for name, model in models.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return {name: root / name for name in models}


def hh_pairs(hh_result: Any, n: int) -> list[Any]:
    from preflab.data.read import iter_pairs

    return list(islice(iter_pairs(hh_result.pairs), n))


def engine(path: str | Path = ":memory:") -> Engine:
    return Engine(EngineOptions(cache_path=path, progress=False, max_tokens=512))


def member(kind: str, folder: Path, **options: Any) -> Any:
    return parse_committee({"member": [{"name": kind, "kind": kind, "model": str(folder),
                                        **options}]}, "t").members[0]


@pytest.mark.parametrize("model", ["bert-rm", "llama-rm"])
def test_a_seq_rm_shortens_long_pairs_to_its_context(model: str, folders: dict[str, Path],
                                                     hh_result: Any) -> None:
    """Every pair scored; the pairs over 64 tokens are counted, by the left rule."""
    from preflab.engine.reward import RewardScorer

    pairs = hh_pairs(hh_result, 12)
    e = engine()
    scores = score_member(member("seq-rm", folders[model]), pairs, e)
    assert not e.failures and np.isfinite(scores.margin).all()
    scorer = RewardScorer(str(folders[model]))
    assert scorer.max_length == CONTEXT  # the default 2048, capped at the model's positions
    long = sum(any(len(scorer.tokenizer(t)["input_ids"]) > CONTEXT
                   for t in (p.chosen, str(p.prompt))) for p in pairs)
    assert 0 < long <= scores.info["truncated"] <= len(pairs)
    assert scores.info["truncation"].startswith("left: the context loses its oldest tokens")


def test_judge_and_ifd_fit_a_short_context(folders: dict[str, Path], hh_result: Any) -> None:
    """GPT-2's position table ends at 64: a longer input would raise in the model."""
    pairs = hh_pairs(hh_result, 4)
    e = engine()
    judge = score_member(member("judge", folders["gpt2"]), pairs, e)
    assert not e.failures and np.isfinite(judge.margin).all()
    assert judge.info["truncated"] == len(pairs)  # every HH prompt is over 64 tokens
    assert "first instruction" in judge.info["truncation"]
    ifd = score_member(member("ifd", folders["gpt2"], max_context_tokens=48,
                              max_reply_tokens=48, vote=True), pairs, e)
    assert not e.failures and ifd.info["truncated"] > 0
    assert "at most the model's 64" in ifd.info["truncation"]


def test_truncation_is_counted_for_cached_scores(folders: dict[str, Path], hh_result: Any,
                                                 tmp_path: Path) -> None:
    """A rerun from the cache counts the same pairs; so does a cache written before the
    cache recorded truncation (the units are encoded again, not run)."""
    import sqlite3

    pairs = hh_pairs(hh_result, 8)
    path = tmp_path / "scores.sqlite"
    spec = member("seq-rm", folders["llama-rm"])
    first = score_member(spec, pairs, engine(path))
    assert first.info["truncated"] > 0
    again_engine = engine(path)
    again = score_member(spec, pairs, again_engine)
    assert again_engine.last_stats.computed == 0
    assert again.info["truncated"] == first.info["truncated"]
    with sqlite3.connect(path) as db:  # as an older preflab left it
        db.execute("DELETE FROM truncated")
    legacy_engine = engine(path)
    legacy = score_member(spec, pairs, legacy_engine)
    assert legacy_engine.last_stats.computed == 0
    assert legacy.info["truncated"] == first.info["truncated"]
    np.testing.assert_array_equal(legacy.margin, first.margin)


def test_an_audit_keeps_every_pair_and_says_what_it_shortened(
        folders: dict[str, Path], hh_path: Path, tmp_path: Path) -> None:
    from preflab.audit.audit_pairs import audit

    committee = tmp_path / "short.toml"
    committee.write_text(f'[[member]]\nname = "rm64"\nkind = "seq-rm"\n'
                         f'model = "{folders["bert-rm"]}"\n')
    notes: list[str] = []
    summary = audit(hh_path, out=tmp_path / "audit", committee=committee, limit=40,
                    engine_options=EngineOptions(cache_path=":memory:", progress=False),
                    notify=notes.append)
    assert summary["n_pairs"] == 40 and summary["n_failed"] == 0
    n = summary["truncated_pairs"]["rm64"]
    assert 0 < n <= 40 and summary["member_runs"]["rm64"]["truncated"] == n
    assert any(note.startswith(f"rm64: {n} of 40 pairs read shortened") for note in notes)


def fail_on_long(messages: list[dict[str, str]], reply: str) -> float:
    """A scorer that cannot read a reply over 300 characters."""
    if len(reply) > 300:
        raise ValueError("reply too long for this scorer")
    return float(len(reply))


def test_failed_pairs_are_said_loudly(hh_path: Path, tmp_path: Path) -> None:
    from preflab.audit.audit_pairs import audit

    committee = tmp_path / "fails.toml"
    committee.write_text('[[member]]\nname = "picky"\nkind = "python"\n'
                         f'function = "{__name__}:fail_on_long"\n')
    notes: list[str] = []
    summary = audit(hh_path, out=tmp_path / "audit", committee=committee, limit=60,
                    engine_options=EngineOptions(cache_path=":memory:", progress=False),
                    notify=notes.append)
    assert summary["n_failed"] > 0 and summary["n_pairs"] == 60 - summary["n_failed"]
    loud = [n for n in notes if "FAILED" in n]
    assert loud and loud[0].startswith(f"{summary['n_failed']} pairs FAILED")
    assert str(tmp_path / "audit" / "failures.jsonl") in loud[0]
    assert "reply too long for this scorer" in loud[0]
