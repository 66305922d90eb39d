import json

import numpy as np
import pytest

from preflab.api.train import BestOfN, best_of_n
from preflab.committee.rewards import RewardFunction
from preflab.data.read import iter_pairs, load_pairs
from preflab.data.write import write_pairs
from preflab.train.best_of_n import best_of_n_table
from tests.train.helpers import short_pairs


def test_best_of_k_table():
    r = np.array([[0.0, 2.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0]])
    assert best_of_n_table(r) == {"best_of_1": 0.5, "best_of_2": 1.5, "best_of_4": 3.0}


def test_selected_replies_are_the_best_under_a_fresh_scoring(tmp_path):
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    result = best_of_n(tmp_path / "pairs.jsonl", policy="tiny-llama", reward="tiny-bert",
                       out=tmp_path / "bon", n=4, max_new_tokens=8, threads=1)
    s = result.summary
    samples = [json.loads(x) for x in (tmp_path / "bon" / "samples.jsonl").open()]
    assert s["n_prompts"] == 4 and all(len(x["replies"]) == 4 for x in samples)
    selected = list(iter_pairs(load_pairs(tmp_path / "bon" / "selected.jsonl")))
    assert selected == result.selected and len(result.samples) == 4
    score = RewardFunction("tiny-bert", progress=False)
    from preflab.data.messages import as_messages

    fresh_best = score([as_messages(p.prompt) for p in selected], [p.chosen for p in selected])
    assert np.allclose(fresh_best, [max(x["rewards"]) for x in samples], atol=1e-4)
    assert s["best_of_4"] == pytest.approx(np.mean(fresh_best), abs=1e-3)
    # seeded: a second run (in memory, from its config.toml) samples the same replies
    again = best_of_n(short_pairs(4), tmp_path / "bon" / "config.toml")
    assert again.config == result.config and again.selected == result.selected
    assert again.summary["prompts"] == "<list of 4 rows>"
    again.save(tmp_path / "bon2")
    assert (tmp_path / "bon2" / "samples.jsonl").read_text() == \
        (tmp_path / "bon" / "samples.jsonl").read_text()
    assert BestOfN.load(tmp_path / "bon2").selected == result.selected


def _committee(tmp_path, members: str):
    path = tmp_path / "committee.toml"
    path.write_text('name = "bon"\n' + members)
    return path


RM = '[[member]]\nname = "rm"\nkind = "seq-rm"\nmodel = "tiny-bert"\n'
COSINE = '[[member]]\nname = "cos"\nkind = "embed-rm"\nmodel = "tiny-bert"\n'


def test_committee_of_one_reward_model_selects_as_the_model_does(tmp_path):
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    kw = dict(n=4, max_new_tokens=8, threads=1)
    alone = best_of_n(tmp_path / "pairs.jsonl", policy="tiny-llama", reward="tiny-bert",
                      out=tmp_path / "a", **kw).summary
    one = best_of_n(tmp_path / "pairs.jsonl", policy="tiny-llama",
                    reward=str(_committee(tmp_path, RM)), out=tmp_path / "b", **kw).summary
    # standardising is monotone: the same replies are kept, and the member's own reward
    # of the kept replies is the model's best-of-k
    def kept(folder):
        return [(p.chosen, p.rejected) for p in iter_pairs(load_pairs(folder / "selected.jsonl"))]

    assert kept(tmp_path / "a") == kept(tmp_path / "b") and kept(tmp_path / "a")
    assert one["members"]["rm"] == {k: v for k, v in alone.items() if k.startswith("best_of")}
    assert one["reward_scale"].startswith("committee")


def test_committee_rewards_are_the_mean_of_standardised_members(tmp_path):
    write_pairs(short_pairs(3), tmp_path / "pairs.jsonl")
    s = best_of_n(tmp_path / "pairs.jsonl", policy="tiny-llama",
                  reward=str(_committee(tmp_path, RM + COSINE)), out=tmp_path / "bon", n=4,
                  max_new_tokens=8, threads=1).summary
    rows = [json.loads(x) for x in (tmp_path / "bon" / "samples.jsonl").open()]
    raw = {k: np.array([r["member_rewards"][k] for r in rows]) for k in ("rm", "cos")}
    z = np.mean([(v - v.mean()) / v.std() for v in raw.values()], axis=0)
    assert np.allclose(z, [r["rewards"] for r in rows], atol=1e-4)
    # members disagree somewhere, or the test would not tell the mean from one member
    assert not np.allclose(raw["rm"].argmax(1), raw["cos"].argmax(1)) or s["n_prompts"] < 2
    # the committee's kept reply is each member's reward there, averaged over prompts
    best = z.argmax(1)
    for k, v in raw.items():
        assert s["members"][k]["best_of_4"] == pytest.approx(v[np.arange(3), best].mean(),
                                                             abs=1e-3)


def test_a_reply_a_member_cannot_score_ranks_below_every_reply_it_scored():
    """An empty sample has no IFD: the ifd member gives it NaN, which must not turn
    every committee reward into NaN."""
    from preflab.committee.rewards import _standardised

    assert list(_standardised(np.array([1.0, np.nan, 3.0]))) == [-1.0, -2.0, 1.0]
    assert list(_standardised(np.full(2, np.nan))) == [0.0, 0.0]


def test_committee_with_a_judge_is_refused_before_sampling(tmp_path):
    from preflab.committee.spec import CommitteeError

    write_pairs(short_pairs(2), tmp_path / "pairs.jsonl")
    with pytest.raises(CommitteeError, match=r"'tiny-judge' is a judge.*vote = false"):
        best_of_n(tmp_path / "pairs.jsonl", policy="tiny-llama", reward="tiny",
                  out=tmp_path / "bon", n=2)
    assert not (tmp_path / "bon").exists()
