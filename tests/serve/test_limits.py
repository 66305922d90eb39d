"""`preflab serve`'s limits against a real server (uvicorn in a thread, on a free port
of 127.0.0.1, with the tiny in-process model): bodies, max_tokens, the context, the
time limit, the queue, clients that leave, wrong methods and OpenAI-style errors.

No test here times the machine: a request is held open by a hook that blocks the model
thread at a decode step until the test lets it go, and what is checked is what the
server answered and at which step the generation stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from preflab.serve.limits import Limits
from preflab.serve.server import JudgeServer, make_server
from tests.helpers import wait_until
from tests.serve.helpers import assert_openai_error, read_reply, send_raw

# request_timeout stays at its default (120 s): no request of the shared server is ever
# answered by its deadline; the time-limit test has a server of its own
LIMITS = Limits(max_body_mb=1.0, max_tokens=400, max_queue=2, shutdown_grace=0.5)
LONG = {"prompt": "Hello", "max_tokens": 400, "temperature": 0}
HELD_AT = 2  # the decode step a held request waits at


class Hold:
    """A forward pre-hook on the output layer (called once per decode step, after the
    server's own check of the request) that counts steps and, when armed, blocks the
    model thread at step `at` until :meth:`release`: a request stays open exactly as long
    as the test wants. A request the server stopped meanwhile ends at that step."""

    def __init__(self, at: int = HELD_AT) -> None:
        self.at = at
        self.steps = 0
        self.armed = False
        self.reached = threading.Event()
        self._go = threading.Event()

    def attach(self, server: JudgeServer) -> Hold:
        server.judge.model.get_output_embeddings().register_forward_pre_hook(self)
        return self

    def arm(self) -> Hold:
        self.steps = 0
        self.reached.clear()
        self._go.clear()
        self.armed = True
        return self

    def release(self) -> None:
        self.armed = False
        self._go.set()

    def __call__(self, module: Any, args: Any) -> None:
        self.steps += 1
        if self.armed and self.steps == self.at:
            self.reached.set()
            self._go.wait()


@pytest.fixture(scope="module")
def live(serve_cache: str) -> Iterator[JudgeServer]:
    server = make_server("tiny-llama", port=0, quiet=True, limits=LIMITS).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def hook(live: JudgeServer) -> Hold:
    return Hold().attach(live)


@pytest.fixture
def held(live: JudgeServer, hook: Hold) -> Iterator[Hold]:
    """The next request on `live` is held at step `HELD_AT` until released."""
    yield hook.arm()
    hook.release()
    assert wait_until(lambda: live.app.state.gate.pending == 0)


def running_job(server: JudgeServer) -> Any:
    """The one request the server has admitted (its job, as the model thread sees it)."""
    jobs = list(server.app.state.gate.jobs)
    assert len(jobs) == 1, jobs
    return jobs[0]


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
    # at once: the answer comes while the client has sent 14 bytes and keeps the
    # connection open (a server that waited for the body would never answer)
    sock = send_raw(live.url, "/v1/completions", b'{"prompt": "x"',
                    headers={"Content-Length": "999999999999"})
    with sock:
        status, _, body = read_reply(sock)
    assert status == 413 and b"999999999999" in body


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


def test_a_prompt_past_the_context_is_400_with_the_numbers(live: JudgeServer, hook: Hold
                                                          ) -> None:
    steps = hook.steps
    r = post(live, {"prompt": [5] * 12000, "max_tokens": 4})
    assert r.status_code == 400
    error = assert_openai_error(r.json(), param="prompt")
    assert error["code"] == "context_length_exceeded"
    assert "512" in error["message"] and "12000 in the prompt" in error["message"]
    text = " ".join(["Hello, how are you doing today?"] * 2000)  # ~14k tokens
    r = post(live, {"prompt": text, "max_tokens": 4})
    assert r.status_code == 400
    assert "512" in assert_openai_error(r.json(), param="prompt")["message"]
    huge = post(live, {"prompt": "ab " * 100_000})  # only a prefix is tokenized
    assert huge.status_code == 400 and "beginning alone" in huge.json()["error"]["message"]
    r = post(live, {"messages": [{"role": "user", "content": text}]}, "/v1/chat/completions")
    assert r.status_code == 400 and assert_openai_error(r.json(), param="messages")
    assert hook.steps == steps  # refused before the model ran


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


def test_a_client_that_leaves_stops_its_generation(live: JudgeServer, held: Hold) -> None:
    gate = live.app.state.gate
    sock = send_raw(live.url, "/v1/completions", LONG)
    assert wait_until(held.reached.is_set)
    job = running_job(live)
    sock.close()
    assert wait_until(lambda: job.reason == "disconnect")  # the server saw it leave
    held.release()
    assert wait_until(lambda: gate.pending == 0)
    assert held.steps == HELD_AT  # stopped at the next step, of the 400 asked for
    assert post(live, {"prompt": "Hi", "max_tokens": 2}).status_code == 200


def test_a_request_over_the_time_limit_is_503_and_stops(serve_cache: str) -> None:
    server = make_server("tiny-llama", port=0, quiet=True,
                         limits=Limits(request_timeout=0.5)).start()
    hold = Hold().attach(server).arm()
    try:
        r = post(server, LONG)  # held until released: only the time limit ends it
        assert r.status_code == 503 and assert_openai_error(r.json())["code"] == "timeout"
        assert "0.5 s (--request-timeout)" in r.json()["error"]["message"]
        hold.release()
        assert wait_until(lambda: server.app.state.gate.pending == 0)
        assert hold.steps <= HELD_AT  # the generation went no further than the held step
        assert post(server, {"prompt": "Hi", "max_tokens": 2}).status_code == 200
    finally:
        hold.release()
        server.shutdown()


def test_a_full_queue_is_503_with_retry_after(live: JudgeServer, held: Hold) -> None:
    gate = live.app.state.gate
    running = send_raw(live.url, "/v1/completions", LONG)
    assert wait_until(held.reached.is_set)
    waiting = [send_raw(live.url, "/v1/completions", LONG) for _ in range(LIMITS.max_queue)]
    assert wait_until(lambda: gate.pending == 1 + LIMITS.max_queue)
    r = post(live, {"prompt": "Hi", "max_tokens": 1})
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert assert_openai_error(r.json())["code"] == "server_busy"
    waiting[0].close()  # a waiting client that leaves frees its place, the model still held
    assert wait_until(lambda: gate.pending == LIMITS.max_queue)
    assert held.steps == HELD_AT
    for sock in [running, *waiting[1:]]:
        sock.close()
    held.release()
    assert wait_until(lambda: gate.pending == 0)


def test_shutdown_answers_the_running_request_and_stops(serve_cache: str) -> None:
    server = make_server("tiny-llama", port=0, quiet=True,
                         limits=Limits(shutdown_grace=0.2)).start()
    hold = Hold().attach(server).arm()
    replies: list[requests.Response] = []
    client = threading.Thread(target=lambda: replies.append(post(server, LONG)))
    closer = threading.Thread(target=server.shutdown)  # it waits for the serving thread
    try:
        client.start()
        assert wait_until(hold.reached.is_set)
        job = running_job(server)
        closer.start()
        # the running request gets the grace period: its deadline is brought forward;
        # let the model go once that has passed
        assert wait_until(lambda: job.deadline < time.monotonic())
    finally:
        hold.release()
        client.join()
        if closer.ident is None:  # failed before the shutdown began
            closer.start()
        closer.join()
    assert hold.steps == HELD_AT  # stopped at the next step
    assert replies[0].status_code == 503
    assert assert_openai_error(replies[0].json())["code"] == "shutting_down"
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=10)
