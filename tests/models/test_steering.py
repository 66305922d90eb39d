import numpy as np
import pytest
import torch

from preflab.models.causal_lm import load_policy
from preflab.models.generate import Sampling
from preflab.models.hidden import decoder_layers
from preflab.models.sampler import Policy
from preflab.models.steering import (
    SteeringVector,
    pca_direction,
    steered,
    steering_from_differences,
)
from preflab.train.extract_steering import extract_steering
from preflab.train.recipe import PolicyConfig
from tests.train.helpers import short_pairs


def test_pca_direction_finds_the_shared_difference_with_its_sign():
    rng = np.random.default_rng(0)
    true = np.zeros(8)
    true[3] = 1.0
    diffs = 2.0 * true + 0.1 * rng.standard_normal((50, 8))
    direction, scale, explained = pca_direction(diffs)
    assert direction[3] > 0.99 and scale == pytest.approx(2.0, abs=0.1)
    assert explained > 0.9
    d2, s2, _ = pca_direction(-diffs)  # the sign follows the differences
    assert d2[3] < -0.99 and s2 > 0
    with pytest.raises(ValueError, match="at least 2"):
        pca_direction(diffs[:1])


def test_vector_file_round_trip_and_bad_files(tmp_path):
    v = steering_from_differences("m", np.ones((4, 2, 3)), [2, 5], stimulus="reply")
    path = v.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(path)
    assert back.model == "m" and list(back.layers) == [2, 5] and back.hidden_size == 3
    np.testing.assert_allclose(back.layers[5], v.layers[5])
    assert back.meta["stimulus"] == "reply" and back.meta["n_pairs"] == 4
    (tmp_path / "bad.safetensors").write_text("not a tensor file")
    with pytest.raises(ValueError, match="not a steering vector file"):
        SteeringVector.load(tmp_path / "bad.safetensors")


def test_steered_adds_coeff_times_the_vector_to_that_layer_only():
    model, tok = load_policy("tiny-llama", PolicyConfig(), trainable=False)
    model.eval()
    width = model.get_input_embeddings().weight.shape[-1]
    vec = SteeringVector("tiny-llama", {1: np.arange(width, dtype=np.float32) / width})
    ids = torch.tensor([tok("hello there")["input_ids"]])
    block = decoder_layers(model)[0]  # layer 1 = the first block's output
    seen = []

    def record(module, inputs, output):
        seen.append((output[0] if isinstance(output, tuple) else output).clone())

    with torch.no_grad():
        handle = block.register_forward_hook(record)
        plain = model(input_ids=ids).logits
        with steered(model, vec, 2.0):
            handle.remove()  # registered again after the steering hook: sees its result
            handle = block.register_forward_hook(record)
            moved = model(input_ids=ids).logits
        handle.remove()
        after = model(input_ids=ids).logits
    torch.testing.assert_close(seen[1] - seen[0],
                               (2.0 * torch.tensor(vec.layers[1])).expand_as(seen[0]))
    assert not torch.allclose(moved, plain)
    torch.testing.assert_close(after, plain)  # hooks removed on exit
    wide = SteeringVector("x", {1: np.ones(width + 1, np.float32)})
    with pytest.raises(ValueError, match="width"), steered(model, wide, 1.0):
        pass


def test_extracted_vector_changes_what_the_policy_samples():
    vec = extract_steering("tiny-llama", short_pairs(8), progress=False)
    assert list(vec.layers) == [1] and vec.meta["n_pairs"] == 8
    assert vec.meta["layers"]["1"]["pairs_projecting_positive"] >= 0.5
    ctx = [(("user", "How do I bake bread?"),)]
    sampling = Sampling(12, 0.0)
    plain = Policy("tiny-llama").generate(ctx, ["a"], 1, sampling)
    moved = Policy("tiny-llama", steering=vec, coeff=2000.0).generate(ctx, ["a"], 1, sampling)
    assert plain != moved
