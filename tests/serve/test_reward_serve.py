"""`preflab serve` hosting a reward model: vLLM's Pooling and Classify request and reply
shapes, the activation switch and refusals (the server detects a reward model from
its config: no flag is given here)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import save_tiny_rm, serving
from tests.serve.helpers import assert_openai_error


@pytest.fixture(scope="module")
def rm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny reward model with two outputs (a multi-objective head)."""
    return save_tiny_rm(tmp_path_factory.mktemp("rm2") / "rm", num_labels=2, seed=1,
                        max_position_embeddings=64)


@pytest.fixture(scope="module")
def url(rm_folder: Path) -> Iterator[str]:
    yield from serving(rm_folder, "rm")


def local_logits(rm_folder: Path, texts: list[str]) -> list[list[float]]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(rm_folder)
    model = AutoModelForSequenceClassification.from_pretrained(rm_folder).eval()
    with torch.no_grad():
        return [model(torch.tensor([tok(t)["input_ids"]])).logits[0].tolist() for t in texts]


def test_pooling_and_classify_reply_shapes(url: str, rm_folder: Path) -> None:
    texts = ["Hello! How are you doing today?", "I can't help with that."]
    expected = local_logits(rm_folder, texts)
    pooled = requests.post(f"{url}/pooling", json={
        "model": "rm", "input": texts, "task": "classify", "use_activation": False}).json()
    assert pooled["object"] == "list" and pooled["model"] == "rm"
    assert [d["index"] for d in pooled["data"]] == [0, 1]
    assert all(d["object"] == "pooling" for d in pooled["data"])
    for got, want in zip(pooled["data"], expected, strict=True):
        assert got["data"] == pytest.approx(want, abs=1e-5)
    assert pooled["usage"]["prompt_tokens"] > 0
    classified = requests.post(f"{url}/v1/classify", json={"input": texts[0]}).json()
    item = classified["data"][0]
    assert item["num_classes"] == 2 and item["label"] in ("LABEL_0", "LABEL_1")
    exp = [math.exp(v) for v in expected[0]]
    assert item["probs"] == pytest.approx([e / sum(exp) for e in exp], abs=1e-5)  # softmax


def test_token_ids_and_messages(url: str) -> None:
    ids = requests.post(f"{url}/pooling", json={"input": [[5, 6, 7], [8, 9]],
                                                "use_activation": False}).json()
    assert len(ids["data"]) == 2 and len(ids["data"][0]["data"]) == 2
    chat = requests.post(f"{url}/pooling", json={
        "messages": [{"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!"}]}).json()
    assert len(chat["data"]) == 1 and all(0 < p < 1 for p in chat["data"][0]["data"])


@pytest.mark.parametrize(("body", "param"), [
    ({"input": []}, "input"),
    ({"input": [[1, 2], "text", 3]}, "input"),
    ({"input": "hi", "task": "embed"}, "task"),
    ({"input": "hi", "use_activation": "no"}, "use_activation"),
    ({"input": [[10**6]]}, "input"),
    ({"messages": [{"role": "user"}]}, "messages"),
])
def test_bad_requests_get_a_400_naming_the_field(url: str, body: dict, param: str) -> None:
    r = requests.post(f"{url}/pooling", json=body)
    assert r.status_code == 400
    assert_openai_error(r.json(), param)


def test_an_input_over_the_context_is_shortened_not_refused(url: str) -> None:
    """As found: one input of 513 tokens got the whole batch a 400. Now it keeps its last
    64 tokens (the local member's rule for a decoder), says how many it lost, and the
    rest of the batch is scored as sent."""
    long = list(range(5, 90))  # 85 tokens, over the 64-token context
    r = requests.post(f"{url}/pooling", json={"input": [[5, 6, 7], long],
                                              "use_activation": False})
    assert r.status_code == 200
    body = r.json()
    assert "truncated_tokens" not in body["data"][0]
    assert body["data"][1]["truncated_tokens"] == len(long) - 64
    assert body["usage"]["truncated_inputs"] == 1
    alone = requests.post(f"{url}/pooling", json={"input": [[5, 6, 7], long[-64:]],
                                                  "use_activation": False}).json()
    for got, want in zip(body["data"], alone["data"], strict=True):
        assert got["data"] == pytest.approx(want["data"], abs=1e-5)
    classified = requests.post(f"{url}/classify", json={"input": [long]}).json()
    assert classified["data"][0]["truncated_tokens"] == len(long) - 64
    listed = requests.get(f"{url}/v1/models").json()
    assert listed["data"][0]["max_model_len"] == 64  # clients learn the context here


def test_a_reward_server_serves_no_completions(url: str) -> None:
    r = requests.post(f"{url}/v1/completions", json={"prompt": "hi"})
    assert r.status_code == 404
    other = requests.post(f"{url}/pooling", json={"model": "other", "input": "hi"})
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"
