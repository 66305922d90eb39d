"""The training stages as Python functions (preflab.api.train): models in memory or in
a folder, the no-overwrite default, and OUT/config.toml rerunning a run from the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from preflab.api.train import Trained, sft, steering_vector, train_reward_model
from preflab.cli import app
from preflab.errors import OutputExistsError
from preflab.models.steering import SteeringVector
from preflab.train.config import PolicyConfig, RewardConfig
from tests.train.helpers import short_pairs

runner = CliRunner()


def run(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def same_weights(a, b) -> bool:
    a, b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_reward_model_in_memory_then_saved(tmp_path) -> None:
    pairs = short_pairs(8)
    rm = train_reward_model(pd.DataFrame([p.to_row() for p in pairs]), base="tiny-bert",
                            epochs=1, batch_size=4, threads=1)
    assert isinstance(rm, Trained) and rm.stage == "train-rm"
    assert rm.config == RewardConfig(base="tiny-bert", epochs=1, batch_size=4, threads=1)
    assert rm.summary["data"] == "<DataFrame of 8 rows>" and rm.summary["stages"][-1]["steps"] == 2
    assert (rm.model_dir / "config.toml").is_file()
    assert rm.load_model().config.num_labels == 1 and rm.load_tokenizer().pad_token
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="did not write"):
        rm.save(tmp_path / "mine")
    saved = rm.save(tmp_path / "rm")
    assert same_weights(saved, rm.model_dir) and rm.save(tmp_path / "rm") == saved
    scratch = rm.model_dir
    del rm
    assert not scratch.exists()  # the temporary folder goes with the result


def test_sft_config_toml_reruns_it_from_the_cli(tmp_path) -> None:
    from preflab.data.write import write_pairs

    write_pairs(short_pairs(6), tmp_path / "p.jsonl")
    config = PolicyConfig(policy="tiny-llama", max_length=128, batch_size=3, threads=1)
    first = sft(tmp_path / "p.jsonl", config, out=tmp_path / "a", lora=True, side="rejected")
    assert first.model_dir == tmp_path / "a" and first.summary["side"] == "rejected"
    assert first.summary["steps"] == 2 and first.load_model().config.model_type == "llama"
    run("sft", tmp_path / "p.jsonl", "--config", tmp_path / "a" / "config.toml",
        "--out", tmp_path / "b")
    assert (tmp_path / "b" / "config.toml").read_text() == \
        (tmp_path / "a" / "config.toml").read_text()
    assert same_weights(tmp_path / "a", tmp_path / "b")


def test_steering_vector_writes_its_settings_beside_it(tmp_path) -> None:
    pairs = short_pairs(6)
    vec = steering_vector(pairs, model="tiny-llama", stimulus="reply", layers=[1],
                          out=tmp_path / "v.safetensors", progress=False)
    assert isinstance(vec, SteeringVector) and vec.meta["n_pairs"] == 6
    assert vec.meta["source"] == "<list of 6 rows>"
    with pytest.raises(OutputExistsError, match="exists"):
        steering_vector(pairs, tmp_path / "v.config.toml", out=tmp_path / "v.safetensors")
    from preflab.data.write import write_pairs

    write_pairs(pairs, tmp_path / "p.jsonl")
    run("steer", "extract", tmp_path / "p.jsonl", "--config", tmp_path / "v.config.toml",
        "--out", tmp_path / "w.safetensors")
    again = SteeringVector.load(tmp_path / "w.safetensors")
    assert again.layers.keys() == vec.layers.keys() == {1}
    assert (again.layers[1] == vec.layers[1]).all()
