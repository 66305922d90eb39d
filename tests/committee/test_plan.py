"""`preflab audit --plan`: costs from configs and tokenizers, no weights loaded."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from preflab.committee.plan import DEVICES, plan_committee
from preflab.committee.spec import parse_committee
from preflab.data.pair import PreferencePair


def hh_pairs(hh_result: Any, n: int) -> list[PreferencePair]:
    from preflab.data.read import iter_pairs

    return list(islice(iter_pairs(hh_result.pairs), n))


def member_plan(plan: dict, name: str) -> dict:
    return next(m for m in plan["members"] if m["name"] == name)


def test_gold_plan_on_the_hh_file_is_offline(hh_path: Path) -> None:
    """The gold committee's weights are not here (no network either): the plan is made
    from configs, tokenizers and declared sizes alone."""
    from preflab.cli.app import app

    result = CliRunner().invoke(app, ["audit", str(hh_path), "--committee", "gold", "--plan",
                                      "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout.strip().splitlines()[-1])
    assert plan["pairs"] == 2312 and plan["device"] == "h200"
    inf = member_plan(plan, "inf-orm-llama3.1-70b")
    assert inf["params_source"] == "declared" and inf["tokens_estimated"]
    assert 'device_map = "auto" across 2' in " ".join(inf["notes"])
    # seconds = 2 x params x tokens / (peak x mfu)
    peak = DEVICES["h200"][0]
    assert inf["seconds"] == pytest.approx(2 * inf["params"] * inf["tokens"] / (peak * 0.4))
    # remote code and card classes run whole sequences: more tokens than prefix sharing
    assert member_plan(plan, "armorm-llama3-8b")["tokens"] > \
        member_plan(plan, "skywork-llama3.1-8b")["tokens"]
    assert plan["total"]["seconds"] == pytest.approx(sum(m["seconds"] for m in plan["members"]))
    assert "plan: committee gold on 2312 pairs" in result.output


def test_local_members_count_with_their_tokenizer(hh_result: Any) -> None:
    pairs = hh_pairs(hh_result, 50)
    committee = parse_committee({"member": [
        {"name": "emb", "kind": "embed-rm", "model": "minilm-l6"},
        {"name": "rm", "kind": "causal-rm", "model": "tiny-llama", "max_length": 64},
        {"name": "rm-long", "kind": "causal-rm", "model": "tiny-llama", "max_length": 4096},
        {"name": "file", "kind": "scores", "path": __file__, "key": "text"},
    ]}, "x")
    plan = plan_committee(committee, pairs, device="a100-80gb")
    emb = member_plan(plan, "emb")
    assert emb["params_source"] == "config (offline)" and not emb["tokens_estimated"]
    assert 2e7 < emb["params"] < 2.5e7  # MiniLM-L6: 22.7M
    short, long_ = member_plan(plan, "rm"), member_plan(plan, "rm-long")
    assert short["prefix_sharing"] and short["tokens"] < long_["tokens"]  # truncation
    assert member_plan(plan, "file")["runs_on"] == "nowhere (file)"
    # duplicated pairs cost nothing more (deduplication)
    again = plan_committee(committee, pairs + pairs, device="a100-80gb")
    assert [m["tokens"] for m in again["members"]] == [m["tokens"] for m in plan["members"]]


def test_prefix_sharing_counts_each_prompt_once() -> None:
    user = [{"role": "user", "content": "word " * 100}]
    pairs = [PreferencePair(user, f"reply {i}", f"other {i}") for i in range(5)]
    committee = parse_committee({"member": [
        {"name": "shared", "kind": "seq-rm", "model": "org/model", "params": 1e9},
        {"name": "whole", "kind": "seq-rm", "model": "org/model", "params": 1e9,
         "reward_output": "score"}]}, "x")
    plan = plan_committee(committee, pairs)
    shared, whole = member_plan(plan, "shared"), member_plan(plan, "whole")
    assert shared["units"] == whole["units"] == 10
    # 10 replies after one 100-word prompt: the prompt runs once, not ten times
    from preflab.models.chat import plain_context

    prompt_tokens = -(-len(plain_context((("user", "word " * 100),))) // 4)  # 4 chars a token
    assert whole["tokens"] - shared["tokens"] == 9 * prompt_tokens


def test_unknown_sizes_and_devices_are_named() -> None:
    pairs = [PreferencePair([{"role": "user", "content": "hi"}], "a", "b")]
    committee = parse_committee({"member": [
        {"name": "m", "kind": "seq-rm", "model": "org/unknown"}]}, "x")
    plan = plan_committee(committee, pairs)
    m = plan["members"][0]
    assert m["params"] is None and m["seconds"] is None
    assert plan["total"]["members_unknown"] == ["m"]
    assert "declare params" in " ".join(m["notes"])
    with pytest.raises(ValueError, match="device must be one of"):
        plan_committee(committee, pairs, device="tpu")
