import json

import pytest

from preflab.data.write import write_pairs
from preflab.train.rl import CHECKPOINT, RLConfig, rl
from tests.train.helpers import short_pairs


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("rl") / "pairs.jsonl"
    write_pairs(short_pairs(8), path)
    return path


def test_rl_starts_at_zero_kl_and_writes_its_curve(prompts, tmp_path):
    config = RLConfig(policy="tiny-llama", reward="tiny-bert", steps=3, batch_size=4,
                      max_new_tokens=8, learning_rate=1e-2, threads=1)
    s = rl(prompts, tmp_path / "rl", config)
    log = [json.loads(x) for x in (tmp_path / "rl" / "rl_log.jsonl").open()]
    assert [e["step"] for e in log] == [1, 2, 3] == [e["step"] for e in s["log"]]
    assert abs(log[0]["kl"]) < 1e-4  # the policy starts as its reference
    assert any(abs(e["kl"]) > 1e-4 for e in log[1:])  # and moves away from it
    assert (tmp_path / "rl" / "model.safetensors").exists()
    assert not (tmp_path / "rl" / CHECKPOINT).exists()


def test_rl_resumes_from_its_checkpoint(prompts, tmp_path):
    config = RLConfig(policy="tiny-llama", reward="tiny-bert", steps=4, batch_size=4,
                      max_new_tokens=8, learning_rate=1e-2, save_steps=2, threads=1)
    straight = rl(prompts, tmp_path / "a", config)

    def stop_at_3(entry):
        if entry["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rl(prompts, tmp_path / "b", config, on_step=stop_at_3)
    assert (tmp_path / "b" / CHECKPOINT).exists()
    resumed = rl(prompts, tmp_path / "b", config)
    assert resumed["log"] == straight["log"]  # steps 3-4 redone from the step-2 state
    assert not (tmp_path / "b" / CHECKPOINT).exists()  # a finished run leaves none
