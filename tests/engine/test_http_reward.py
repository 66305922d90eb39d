"""`http-rm` members against real local servers: `preflab serve` hosting a reward model
(the same margins as the local member), and servers that time out, answer 500 or
answer malformed JSON (failures recorded per pair, never scores)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from preflab.committee.members import score_member
from preflab.committee.spec import parse_committee
from preflab.engine import Engine, EngineOptions
from preflab.engine.http_client import HttpOptions
from preflab.engine.http_reward import HttpRewardScorer, read_reward
from tests.helpers import save_tiny_rm, serving


@pytest.fixture(scope="module")
def rm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Llama reward model (sequence classification)."""
    return save_tiny_rm(tmp_path_factory.mktemp("rm") / "tiny-rm", num_labels=1, seed=0)


@pytest.fixture(scope="module")
def served(rm_folder: Path) -> Iterator[str]:
    """`preflab serve` hosting the reward model in this process, on a free port."""
    yield from serving(rm_folder, "tiny-rm")


@pytest.fixture(scope="module")
def short_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny reward model that reads 64 positions."""
    return save_tiny_rm(tmp_path_factory.mktemp("rm64") / "rm64", seed=3,
                        max_position_embeddings=64)


@pytest.fixture(scope="module")
def short_served(short_folder: Path) -> Iterator[str]:
    yield from serving(short_folder, "rm64")


def pairs_of(hh_result: Any, n: int) -> list[Any]:
    from preflab.data.read import iter_pairs

    return list(islice(iter_pairs(hh_result.pairs), n))


def engine() -> Engine:
    return Engine(EngineOptions(cache_path=":memory:", progress=False))


def test_served_reward_model_gives_the_local_margins(served: str, rm_folder: Path,
                                                     hh_result: Any) -> None:
    pairs = pairs_of(hh_result, 40)
    committee = parse_committee({"member": [
        {"name": "local", "kind": "seq-rm", "model": str(rm_folder), "max_length": 256},
        {"name": "served", "kind": "http-rm", "url": served, "tokenizer": str(rm_folder),
         "max_length": 256, "batch": 8, "concurrency": 3},
        {"name": "served-classify", "kind": "http-rm", "url": served + "/v1",
         "tokenizer": str(rm_folder), "max_length": 256, "api": "classify"}]}, "http")
    e = engine()
    local, served_, classify = (score_member(m, pairs, e) for m in committee.members)
    assert np.isfinite(local.margin).all() and np.std(local.margin) > 0
    assert np.abs(served_.margin - local.margin).max() <= 1e-5
    assert np.abs(classify.margin - local.margin).max() <= 1e-5
    assert served_.info["missing"] == 0 and served_.info["truncated"] > 0


def test_without_a_tokenizer_the_server_renders_the_chat(served: str, rm_folder: Path,
                                                          hh_result: Any) -> None:
    """The served name is no model here: conversations go as messages, one a request,
    rendered by the server's template (truncated to its context, 512 tokens)."""
    pairs = pairs_of(hh_result, 6)
    committee = parse_committee({"member": [
        {"name": "local", "kind": "seq-rm", "model": str(rm_folder), "max_length": 512},
        {"name": "served", "kind": "http-rm", "url": served, "model": "tiny-rm"}]}, "http")
    local, remote = (score_member(m, pairs, engine()) for m in committee.members)
    assert np.abs(remote.margin - local.margin).max() <= 1e-5


def test_a_served_short_model_scores_every_pair_shortened_as_locally(
        short_served: str, short_folder: Path, hh_result: Any) -> None:
    """As found: inputs over the served model's 512 tokens got HTTP 400 and their
    batches went missing. The member learns the server's context (``max_model_len``)
    and shortens as the local member does: the same margins, the same count."""
    pairs = pairs_of(hh_result, 12)
    committee = parse_committee({"member": [
        {"name": "local", "kind": "seq-rm", "model": str(short_folder)},
        {"name": "served", "kind": "http-rm", "url": short_served,
         "tokenizer": str(short_folder), "batch": 4}]}, "http")
    local, remote = (score_member(m, pairs, engine()) for m in committee.members)
    assert remote.info["missing"] == 0 and np.isfinite(remote.margin).all()
    assert np.abs(remote.margin - local.margin).max() <= 1e-5
    assert remote.info["truncated"] == local.info["truncated"] > 0


def test_a_server_that_refuses_long_inputs_fails_only_those(rm_folder: Path,
                                                            hh_result: Any) -> None:
    """A vLLM server answers a request holding one input over its context with a 400
    for the whole request: the member asks again input by input, so only the pairs
    with a long input fail (with the server's reason) and the rest are scored."""
    from preflab.data.messages import as_messages
    from preflab.engine.reward import reward_input
    from preflab.models.offline import load_tokenizer

    pairs = pairs_of(hh_result, 12)
    with FaultServer("refuse-long") as fault:
        member = http_member(fault, rm_folder, "vllm", batch=8, retries=0)
        scores = score_member(member, pairs, engine())
    tok = load_tokenizer(str(rm_folder))
    long = {p.id for p in pairs if any(
        len(reward_input(tok, False, as_messages(c), r, 2048).ids) > FaultServer.CONTEXT
        for c, r in ((p.prompt, p.chosen), (p.rejected_context, p.rejected)))}
    assert 0 < len(long) < len(pairs)
    assert set(scores.info["missing_ids"]) == long
    assert all("HTTP 400" in why for why in scores.info["missing_ids"].values())
    assert np.isfinite(scores.margin[[p.id not in long for p in pairs]]).all()


def http_member(fault: FaultServer, rm_folder: Path, name: str, **options: Any) -> Any:
    """An http-rm member asking `fault` for model "m", with the tiny model's tokenizer."""
    return parse_committee({"member": [{
        "name": name, "kind": "http-rm", "url": fault.url, "model": "m",
        "tokenizer": str(rm_folder), **options}]}, "http").members[0]


class FaultServer:
    """A real HTTP server on 127.0.0.1 that misbehaves in one way; counts requests."""

    CONTEXT = 200  # "refuse-long": a request holding a longer input gets a 400

    def __init__(self, mode: str, context: int | None = None) -> None:
        self.mode, self.requests = mode, 0
        self.released = threading.Event()  # "timeout": no reply before close()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # /v1/models, with `context` as max_model_len
                entry = {"id": "m", **({"max_model_len": context} if context else {})}
                reply = json.dumps({"data": [entry]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_POST(self) -> None:
                outer.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                n = len(body.get("input") or [1])
                if outer.mode == "timeout":  # the client gives up first, however slow
                    outer.released.wait()
                if outer.mode == "500":
                    reply, status = b'{"error": "boom"}', 500
                elif outer.mode == "401":
                    reply, status = b'{"error": "bad key"}', 401
                elif outer.mode == "malformed":
                    reply, status = b'{"data": [{"index": 0, "data": [0.5', 200
                elif outer.mode == "refuse-long" and any(
                        len(x) > FaultServer.CONTEXT for x in body["input"]):
                    reply, status = b'{"error": {"message": "input over the context"}}', 400
                elif outer.mode == "bad-item":  # the first input of each request is unreadable
                    data = [{"index": i, "object": "pooling", "data": ["x"] if i == 0 else [1.0]}
                            for i in range(n)]
                    reply, status = json.dumps({"data": data}).encode(), 200
                else:
                    data = [{"index": i, "data": [1.0]} for i in range(n)]
                    reply, status = json.dumps({"data": data}).encode(), 200
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.mark.parametrize(("mode", "reason"), [
    ("timeout", "timed out after 0.3 s (2 tries)"),
    ("500", "HTTP 500"),
    ("malformed", "the reply is not JSON"),
])
def test_failed_requests_are_recorded_per_pair_never_scored(mode: str, reason: str,
                                                             rm_folder: Path,
                                                             hh_result: Any) -> None:
    pairs = pairs_of(hh_result, 5)
    with FaultServer(mode) as fault:
        member = http_member(fault, rm_folder, "flaky", timeout=0.3, retries=1,
                             backoff=0.01, batch=4)
        e = engine()
        scores = score_member(member, pairs, e)
        assert np.isnan(scores.margin).all() and np.isnan(scores.r_chosen).all()
        assert scores.info["missing"] == len(pairs)
        assert set(scores.info["missing_ids"]) == {p.id for p in pairs}
        assert all(reason in why for why in scores.info["missing_ids"].values())
        if mode != "malformed":  # retried once: two tries per request
            assert fault.requests == 2 * -(-2 * len(pairs) // 4)
        # nothing was cached: the next run asks again
        before = fault.requests
        score_member(member, pairs, e)
        assert fault.requests > before


def test_an_unreadable_item_fails_only_its_pairs(rm_folder: Path, hh_result: Any) -> None:
    pairs = pairs_of(hh_result, 6)
    with FaultServer("bad-item") as fault:
        member = http_member(fault, rm_folder, "partial", batch=4, retries=0)
        scores = score_member(member, pairs, engine())
        bad = np.isnan(scores.margin)
        assert 0 < bad.sum() < len(pairs)
        assert scores.info["missing"] == int(bad.sum())
        assert np.all(scores.margin[~bad] == 0.0)  # both replies read 1.0
        assert all("not a finite number" in why for why in scores.info["missing_ids"].values())


def test_only_a_refused_input_is_asked_again_alone(rm_folder: Path, hh_result: Any) -> None:
    """A 400/413/422 may be one input over the context: its batch is sent again input
    by input. Any other refusal (a wrong key: 401) would refuse each input as well, so
    it fails the batch at once: one request a batch, not one more an input.

    As found (issue 32 review): every 4xx was sent again one input at a time."""
    pairs = pairs_of(hh_result, 4)
    with FaultServer("401") as fault:
        member = http_member(fault, rm_folder, "nokey", batch=4, retries=0)
        scores = score_member(member, pairs, engine())
    assert scores.info["missing"] == len(pairs)
    assert all("HTTP 401" in why for why in scores.info["missing_ids"].values())
    assert fault.requests == 2  # 8 inputs in batches of 4


def test_the_fingerprint_has_the_length_read(rm_folder: Path) -> None:
    """The fingerprint holds the effective max_length (capped at the server's context):
    the same model name behind a shorter context is another score, and a larger
    requested max_length that the server caps the same is the same score.

    As found (issue 32 review): it held the requested max_length."""
    servers = {n: FaultServer("ok", context=n) for n in (64, 200)}
    try:
        def scorer(context: int, max_length: int = 2048) -> HttpRewardScorer:
            return HttpRewardScorer(HttpOptions(servers[context].url, model="m",
                                                tokenizer=str(rm_folder),
                                                max_length=max_length))

        short, long = scorer(64), scorer(200)
        assert (short.max_length, long.max_length) == (64, 200)
        assert short.fingerprint != long.fingerprint
        assert scorer(200, 4096).fingerprint == long.fingerprint
    finally:
        for server in servers.values():
            server.close()


@pytest.mark.parametrize(("item", "api", "index", "expected"), [
    ({"data": [0.25, 2.0]}, "pooling", 1, 2.0),
    ({"data": [[9.0], [0.5]]}, "pooling", 0, 0.5),  # per-token rewards: the last token
    ({"data": 1.5}, "pooling", 0, 1.5),
    ({"probs": [-3.0]}, "classify", 0, -3.0),
])
def test_read_reward_shapes(item: dict[str, Any], api: str, index: int,
                            expected: float) -> None:
    assert read_reward(item, api, index) == expected


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpOptions("ftp://x", model="m")
    with pytest.raises(ValueError, match="at least 1"):
        HttpOptions("http://127.0.0.1:9", batch=0)
