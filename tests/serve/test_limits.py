"""`preflab serve`'s limits against a real server (uvicorn in a thread, on a free port
of 127.0.0.1, with the tiny in-process model): bodies, max_tokens, the context, the
time limit, the queue, clients that leave, wrong methods and OpenAI-style errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from preflab.serve.limits import Limits
from preflab.serve.server import JudgeServer, make_server
from tests.serve.helpers import assert_openai_error, read_reply, send_raw, wait_until

LIMITS = Limits(max_body_mb=1.0, max_tokens=400, max_queue=2, request_timeout=3.0,
                shutdown_grace=0.5)
LONG = {"prompt": "Hello", "max_tokens": 400, "temperature": 0}


class Slow:
    """A forward pre-hook on the output layer (called once per decode step) that counts
    steps and, when on, sleeps `delay` per step: generation long enough to cancel."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.on = False
        self.steps = 0

    def __call__(self, module: Any, args: Any) -> None:
        self.steps += 1
        if self.on:
            time.sleep(self.delay)


@pytest.fixture(scope="module")
def live(serve_cache: str) -> Iterator[JudgeServer]:
    server = make_server("tiny-llama", port=0, quiet=True, limits=LIMITS).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def hook(live: JudgeServer) -> Slow:
    hook = Slow()
    live.judge.model.get_output_embeddings().register_forward_pre_hook(hook)
    return hook


@pytest.fixture
def slow(live: JudgeServer, hook: Slow) -> Iterator[Slow]:
    hook.on, hook.steps = True, 0
    yield hook
    hook.on = False
    assert wait_until(lambda: live.app.state.gate.pending == 0, 10)


def post(live: JudgeServer, body: Any, path: str = "/v1/completions", **kw: Any
         ) -> requests.Response:
    return requests.post(live.url + path, json=body, timeout=30, **kw)


def test_models_health_and_a_completion(live: JudgeServer) -> None:
    assert requests.get(live.url + "/health", timeout=10).json()["status"] == "ok"
    assert requests.get(live.url + "/v1/models", timeout=10).json()["data"][0]["id"] == \
        "tiny-llama"
    r = post(live, {"prompt": "Hello", "max_tokens": 3, "temperature": 0, "logprobs": 2})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    assert len(r.json()["choices"][0]["logprobs"]["tokens"]) == 3


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/v1/completions", "POST"), ("PUT", "/v1/chat/completions", "POST"),
    ("POST", "/v1/models", "GET, HEAD"), ("DELETE", "/health", "GET, HEAD")])
def test_a_wrong_method_on_a_known_path_is_405(live: JudgeServer, method: str, path: str,
                                               allowed: str) -> None:
    r = requests.request(method, live.url + path, timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == allowed
    assert assert_openai_error(r.json())["code"] == "method_not_allowed"


def test_an_unknown_path_is_404_in_openai_shape(live: JudgeServer) -> None:
    r = requests.get(live.url + "/v1/nothing", timeout=10)
    assert r.status_code == 404 and "/v1/nothing" in assert_openai_error(r.json())["message"]


def test_a_body_over_the_limit_by_content_length_is_413(live: JudgeServer) -> None:
    blob = b'{"prompt": "' + b"x" * (20 * 2**20) + b'"}'  # 20 MB, Content-Length set
    r = requests.post(live.url + "/v1/completions", data=blob, timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    error = assert_openai_error(r.json())
    assert error["code"] == "request_too_large" and str(LIMITS.max_body_bytes) in \
        error["message"]


def test_a_huge_content_length_is_413_at_once(live: JudgeServer) -> None:
    started = time.monotonic()
    sock = send_raw(live.url, "/v1/completions", b'{"prompt": "x"',
                    headers={"Content-Length": "999999999999"})
    with sock:
        status, _, body = read_reply(sock)
    assert status == 413 and b"999999999999" in body
    assert time.monotonic() - started < 5


def test_a_streamed_body_over_the_limit_is_413(live: JudgeServer) -> None:
    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to check up front
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"x" * 2**20
        yield b'"}'

    r = requests.post(live.url + "/v1/completions", data=chunks(), timeout=30)
    assert r.status_code == 413
    assert assert_openai_error(r.json())["code"] == "request_too_large"
    assert post(live, {"prompt": "Hi", "max_tokens": 1}).status_code == 200


@pytest.mark.parametrize("value", [-3, 0, 1.5, 1e8, "10", True, 10**8, 401])
@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_a_bad_max_tokens_is_400_naming_the_field(live: JudgeServer, name: str,
                                                  value: Any) -> None:
    r = post(live, {"prompt": "Hi", name: value})
    assert r.status_code == 400
    error = assert_openai_error(r.json(), param=name)
    assert name in error["message"] and "max_new_tokens" not in error["message"]


def test_chat_max_tokens_too_is_checked(live: JudgeServer) -> None:
    r = post(live, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1},
             "/v1/chat/completions")
    assert r.status_code == 400 and assert_openai_error(r.json(), "max_tokens")


def test_a_prompt_past_the_context_is_400_with_the_numbers(live: JudgeServer) -> None:
    r = post(live, {"prompt": [5] * 12000, "max_tokens": 4})
    assert r.status_code == 400
    error = assert_openai_error(r.json(), param="prompt")
    assert error["code"] == "context_length_exceeded"
    assert "512" in error["message"] and "12000 in the prompt" in error["message"]
    started = time.monotonic()
    text = " ".join(["Hello, how are you doing today?"] * 2000)  # ~14k tokens
    r = post(live, {"prompt": text, "max_tokens": 4})
    assert r.status_code == 400 and time.monotonic() - started < 10
    assert "512" in assert_openai_error(r.json(), param="prompt")["message"]
    huge = post(live, {"prompt": "ab " * 100_000})  # only a prefix is tokenized
    assert huge.status_code == 400 and "beginning alone" in huge.json()["error"]["message"]
    r = post(live, {"messages": [{"role": "user", "content": text}]}, "/v1/chat/completions")
    assert r.status_code == 400 and assert_openai_error(r.json(), param="messages")


def test_max_tokens_must_fit_beside_the_prompt(live: JudgeServer) -> None:
    r = post(live, {"prompt": [5] * 500, "max_tokens": 20})
    assert r.status_code == 400 and "520 tokens (500 in the prompt, 20 for the completion)" \
        in r.json()["error"]["message"]
    # without max_tokens the default (16) shrinks to what fits
    ids = [5] * 505
    r = post(live, {"prompt": ids, "temperature": 0, "logprobs": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 7


def test_too_large_a_batch_is_400(live: JudgeServer) -> None:
    r = post(live, {"prompt": [[5] * 400] * 64, "max_tokens": 100, "n": 2})
    assert r.status_code == 400 and "max-batch-tokens" in r.json()["error"]["message"]


def test_errors_are_in_openai_shape(live: JudgeServer) -> None:
    r = post(live, {"prompt": 3})
    assert r.status_code == 400 and "prompt" in assert_openai_error(r.json(), "prompt")[
        "message"]
    r = requests.post(live.url + "/v1/completions", data="{nope", timeout=10)
    assert r.status_code == 400 and "not JSON" in assert_openai_error(r.json())["message"]
    r = post(live, {"model": "gpt-9", "prompt": "x"})
    assert r.status_code == 404 and assert_openai_error(r.json(), "model")["code"] == \
        "model_not_found"
    r = post(live, {"prompt": "x", "temperature": -1})
    assert r.status_code == 400 and assert_openai_error(r.json(), "temperature")


def test_a_client_that_leaves_stops_its_generation(live: JudgeServer, slow: Slow) -> None:
    gate = live.app.state.gate
    sock = send_raw(live.url, "/v1/completions", LONG)
    assert wait_until(lambda: slow.steps >= 5)
    sock.close()
    left = time.monotonic()
    assert wait_until(lambda: gate.pending == 0, 5)
    assert time.monotonic() - left < 2 and slow.steps < 200  # 400 asked for
    slow.on = False
    assert post(live, {"prompt": "Hi", "max_tokens": 2}).status_code == 200


def test_a_request_over_the_time_limit_is_503_and_stops(live: JudgeServer, slow: Slow
                                                        ) -> None:
    started = time.monotonic()
    r = post(live, LONG)  # 400 steps x 20 ms: 8 s, over the 3 s limit
    took = time.monotonic() - started
    assert r.status_code == 503 and assert_openai_error(r.json())["code"] == "timeout"
    assert 2.5 < took < 6 and slow.steps < 300


def test_a_full_queue_is_503_with_retry_after(live: JudgeServer, slow: Slow) -> None:
    gate = live.app.state.gate
    running = send_raw(live.url, "/v1/completions", LONG)
    assert wait_until(lambda: slow.steps >= 2)
    waiting = [send_raw(live.url, "/v1/completions", LONG) for _ in range(LIMITS.max_queue)]
    assert wait_until(lambda: gate.pending == 1 + LIMITS.max_queue)
    r = post(live, {"prompt": "Hi", "max_tokens": 1})
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert assert_openai_error(r.json())["code"] == "server_busy"
    waiting[0].close()  # a waiting client that leaves frees its place at once
    assert wait_until(lambda: gate.pending == LIMITS.max_queue, 2)
    for sock in [running, *waiting[1:]]:
        sock.close()
    assert wait_until(lambda: gate.pending == 0, 5)


def test_shutdown_answers_the_running_request_and_stops(serve_cache: str) -> None:
    server = make_server("tiny-llama", port=0, quiet=True,
                         limits=Limits(shutdown_grace=0.2)).start()
    hook = Slow(0.05)
    hook.on = True
    server.judge.model.get_output_embeddings().register_forward_pre_hook(hook)
    replies: list[requests.Response] = []
    client = threading.Thread(target=lambda: replies.append(post(server, LONG)))
    client.start()
    assert wait_until(lambda: hook.steps >= 2)
    started = time.monotonic()
    server.shutdown()
    client.join(10)
    assert time.monotonic() - started < 5 and hook.steps < 100
    assert replies[0].status_code == 503
    assert assert_openai_error(replies[0].json())["code"] == "shutting_down"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=5)
