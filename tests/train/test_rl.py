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


def test_advantages_by_hand():
    import torch

    from preflab.train.rl import advantages

    ret = torch.tensor([1.0, 2.0, 3.0, 0.0, 0.0, 6.0])  # 2 prompts x 3 samples
    value = torch.tensor([0.5] * 3 + [1.0] * 3)
    torch.testing.assert_close(advantages(ret, value, 3), ret - value)
    torch.testing.assert_close(advantages(ret, value, 3, "loo"),
                               torch.tensor([1 - 2.5, 2 - 2.0, 3 - 1.5, 0 - 3.0, 0 - 3.0,
                                             6 - 0.0]))
    w = advantages(ret, value, 3, "value", whiten=True)
    assert abs(float(w.mean())) < 1e-6 and abs(float(w.std()) - 1) < 1e-4


def test_rl_with_several_samples_per_prompt(prompts, tmp_path):
    config = RLConfig(policy="tiny-llama", reward="tiny-bert", steps=2, batch_size=2,
                      samples_per_prompt=3, baseline="loo", whiten=True, max_new_tokens=6,
                      learning_rate=1e-2, threads=1)
    s = rl(prompts, tmp_path / "rl", config)
    assert s["steps"] == 2 and abs(s["log"][0]["kl"]) < 1e-4
    with pytest.raises(ValueError, match="at least 2"):
        rl(prompts, tmp_path / "x", RLConfig(policy="tiny-llama", reward="tiny-bert",
                                             baseline="loo", batch_size=2))
