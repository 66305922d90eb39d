"""Every example in configs/ is a valid config of its stage; settings files round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflab.eval.config import EvalPolicyConfig, WinrateConfig
from preflab.experiment.config import (
    CleanVsOriginalConfig,
    OverOptimizationConfig,
    RAHFCompareConfig,
)
from preflab.label.config import LabelConfig
from preflab.settings import config_from_file, config_toml, read_settings
from preflab.train.config import BestOfNConfig, PolicyConfig, RAHFConfig, RewardConfig, RLConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

STAGES = {
    "label.toml": LabelConfig, "train-rm.toml": RewardConfig, "sft.toml": PolicyConfig,
    "dpo.toml": PolicyConfig, "rl.toml": RLConfig, "rahf.toml": RAHFConfig,
    "bon.toml": BestOfNConfig, "winrate.toml": WinrateConfig,
    "eval-policy.toml": EvalPolicyConfig, "clean-vs-original.toml": CleanVsOriginalConfig,
    "rahf-experiment.toml": RAHFCompareConfig,
    "overoptimization.toml": OverOptimizationConfig,
}


def test_every_stage_has_an_example_and_every_example_a_stage() -> None:
    assert sorted(p.name for p in CONFIGS.iterdir()) == sorted(STAGES)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_example_config_is_valid_and_round_trips(name: str, tmp_path: Path) -> None:
    path = CONFIGS / name
    assert path.read_text().startswith("# preflab "), "an example says how to use it"
    config = config_from_file(STAGES[name], path)  # unknown keys would raise
    assert read_settings(path), f"{name} sets nothing"
    again = tmp_path / "config.toml"
    again.write_text(config_toml(config))
    assert config_from_file(STAGES[name], again) == config


def test_unknown_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "rl.toml"
    path.write_text('policy = "sft"\nstepz = 3\n')
    with pytest.raises(ValueError, match=r"rl\.toml: unknown settings: 'stepz'"):
        config_from_file(RLConfig, path)
    nested = tmp_path / "cvo.toml"
    nested.write_text('[dpo]\nbeta = 0.2\nbetta = 0.3\n')
    with pytest.raises(ValueError, match=r"cvo\.toml: unknown settings: 'dpo\.betta'"):
        config_from_file(CleanVsOriginalConfig, nested)


def test_none_json_yaml_and_overrides(tmp_path: Path) -> None:
    config = WinrateConfig(max_context_tokens=None, limit=5)  # default 256: None is written
    text = config_toml(config)
    assert 'max_context_tokens = "none"' in text and "limit = 5" in text
    (tmp_path / "a.toml").write_text(text)
    assert config_from_file(WinrateConfig, tmp_path / "a.toml") == config
    (tmp_path / "b.yaml").write_text("judge: tiny-llama\nsample: 7\n")
    assert config_from_file(LabelConfig, tmp_path / "b.yaml", seed=3) == LabelConfig(
        judge="tiny-llama", sample=7, seed=3)
    (tmp_path / "c.json").write_text('{"config": {"beta": 0.3}}')  # a preflab-train.json
    assert config_from_file(PolicyConfig, tmp_path / "c.json").beta == 0.3
    nested = CleanVsOriginalConfig(dpo=PolicyConfig(lora=True, beta=0.5), reward="rm")
    (tmp_path / "d.toml").write_text(config_toml(nested))
    assert config_from_file(CleanVsOriginalConfig, tmp_path / "d.toml") == nested
    partial = tmp_path / "e.toml"
    partial.write_text("[dpo]\nbeta = 0.5\n")  # a nested table keeps its other defaults
    assert config_from_file(CleanVsOriginalConfig, partial).dpo == PolicyConfig(
        lora=True, beta=0.5)
