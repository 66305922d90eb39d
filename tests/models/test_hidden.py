import numpy as np
import pytest
import torch

from preflab.models.causal_lm import load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.hidden import (
    check_layers,
    collate_rows,
    mean_reply_hidden,
    rahf_layers,
    reply_hidden,
)
from preflab.train.recipe import PolicyConfig
from tests.train.helpers import short_pairs


def test_rahf_layers_scale_the_papers_to_the_depth():
    assert rahf_layers(32, "scit") == [10, 12, 14, 16, 18]
    assert rahf_layers(30, "scit") == [9, 11, 13, 15, 17]
    assert rahf_layers(30, "dual") == [9, 11, 13, 15, 17, 19]
    assert rahf_layers(2, "dual") == [1]
    with pytest.raises(ValueError, match="variant"):
        rahf_layers(30, "triple")


def test_reply_states_are_the_plain_forwards_at_the_reply_positions():
    model, tok = load_policy("tiny-llama", PolicyConfig(), trainable=False)
    model.eval()
    with pytest.raises(ValueError, match=r"1\.\.2"):
        check_layers(model, [3])
    with pytest.raises(ValueError, match=r"1\.\.1"):  # the last block's state is normed
        check_layers(model, [2], last=False)
    examples, _ = build_policy_examples(short_pairs(3), tok, 256, with_rejected=False)
    with torch.no_grad():
        got = reply_hidden(model, collate_rows(examples, tok.pad_token_id), [1, 2])
        means = mean_reply_hidden(model, examples, [1, 2], tok.pad_token_id, batch_size=2,
                                  progress=False)
        start = 0
        for i, e in enumerate(examples):
            ids = torch.tensor([e.prefix + e.chosen_ids])
            states = model(input_ids=ids, output_hidden_states=True).hidden_states
            for j, layer in enumerate([1, 2]):
                want = states[layer][0, -e.chosen_n:]
                torch.testing.assert_close(got[j][start:start + e.chosen_n], want,
                                           atol=1e-5, rtol=1e-4)
                np.testing.assert_allclose(means[i, j], want.mean(0).numpy(), atol=1e-5)
            start += e.chosen_n
