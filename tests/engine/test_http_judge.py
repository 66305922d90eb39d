"""The HTTP judge against real servers: `preflab serve` started as a process, and small
stdlib servers that time out, fail or answer garbage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import requests

from preflab.data.demo import demo
from preflab.engine import EngineOptions
from preflab.engine.http_client import JudgeError
from preflab.engine.http_judge import api_base, read_label_logprobs
from preflab.label.label_pairs import label
from tests.helpers import private_cache

MEMORY = EngineOptions(cache_path=":memory:", progress=False)


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory) -> Iterator[str]:
    """One private cache for this module's process and its server (same tiny model)."""
    yield from private_cache(str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def judge_folder(tmp_path_factory) -> str:
    """tiny-llama's weights with 4096 positions: its judge prompts (a shot included) run
    past the preset's 512, where a judge would shorten them."""
    from preflab.models.tiny import tiny_causal_lm, tiny_tokenizer

    tok = tiny_tokenizer()
    folder = tmp_path_factory.mktemp("judge") / "tiny-llama-4k"
    tiny_causal_lm(tok, max_position_embeddings=4096).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def server(cache_env, judge_folder) -> Iterator[str]:
    """`preflab serve` of :func:`judge_folder` (as tiny-llama) in its own process; yields
    its URL. The tiny random model's labels are rarely in its top 20, so the test asks
    for the whole 400-token distribution."""
    proc = subprocess.Popen([sys.executable, "-m", "preflab.cli", "serve", judge_folder,
                             "--served-name", "tiny-llama", "--port", "0", "--quiet",
                             "--max-logprobs", "400"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PREFLAB_CACHE": cache_env})
    try:
        line = ""
        deadline = time.time() + 120
        while "serving" not in line and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError("preflab serve exited before serving")
        url = line.split(" at ")[1].strip()
        yield url.removesuffix("/v1")
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0  # SIGTERM shuts it down cleanly


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "demo.jsonl"
    demo(path, n=30, flip_rate=0.0)
    return path


def test_http_labels_equal_local_labels(server, data, tmp_path, judge_folder) -> None:
    label(data, judge=judge_folder, out=tmp_path / "local", limit=20, shots=1,
          engine_options=MEMORY)
    remote = label(data, judge=server, out=tmp_path / "http", limit=20, shots=1,
                   engine_options=MEMORY, concurrency=3, batch=4, top_logprobs=400).summary
    a = pd.read_parquet(tmp_path / "local" / "labels.parquet")
    b = pd.read_parquet(tmp_path / "http" / "labels.parquet")
    assert remote["n_labelled"] == 20 and remote["n_failed"] == 0, remote["failures"]
    # the tiny random judge sits near 0.5, so compare tighter than the 1e-3 asked for
    np.testing.assert_allclose(b["p_ai"], a["p_ai"], atol=1e-6)
    np.testing.assert_allclose(b["p_chosen_first"], a["p_chosen_first"], atol=1e-6)
    np.testing.assert_allclose(b["label_mass"], a["label_mass"], rtol=1e-4)
    assert a["p_chosen_first"].std() > 1e-5  # the labels differ between pairs


def test_http_chain_of_thought_matches_local_greedy_rationales(server, data, tmp_path,
                                                               judge_folder) -> None:
    kw = dict(limit=4, cot=True, cot_tokens=8, engine_options=MEMORY)
    label(data, judge=judge_folder, out=tmp_path / "local", **kw)
    label(data, judge=server, out=tmp_path / "http", top_logprobs=400, **kw)
    a = pd.read_parquet(tmp_path / "local" / "labels.parquet")
    b = pd.read_parquet(tmp_path / "http" / "labels.parquet")
    assert [list(x) for x in a["rationales_first"]] == [list(x) for x in b["rationales_first"]]
    np.testing.assert_allclose(b["p_ai"], a["p_ai"], atol=1e-3)


def test_server_api(server) -> None:
    models = requests.get(server + "/v1/models", timeout=30).json()
    assert models["data"][0]["id"] == "tiny-llama"
    r = requests.post(server + "/v1/completions", timeout=30,
                      json={"prompt": "Hello", "max_tokens": 3, "temperature": 0, "logprobs": 5})
    body = r.json()
    choice = body["choices"][0]
    assert r.status_code == 200 and len(choice["logprobs"]["top_logprobs"][0]) <= 5
    assert body["usage"]["completion_tokens"] >= 1
    chat = requests.post(server + "/v1/chat/completions", timeout=30, json={
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "logprobs": True,
        "top_logprobs": 2}).json()
    assert chat["choices"][0]["message"]["role"] == "assistant"
    bad = requests.post(server + "/v1/completions", json={"prompt": 3}, timeout=30)
    assert bad.status_code == 400 and "prompt" in bad.json()["error"]["message"]
    bad = requests.post(server + "/v1/completions", data="{nope", timeout=30)
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"]
    other = requests.post(server + "/v1/completions", json={"model": "gpt-9", "prompt": "x"},
                          timeout=30)
    assert other.status_code == 404


class _Fake:
    """A real HTTP server in a thread whose replies a test chooses."""

    def __init__(self, reply) -> None:
        self.calls = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._out(200, json.dumps({"data": [{"id": "fake"}]}))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.calls += 1
                status, text = reply(fake.calls, len(body["prompt"]))
                self._out(status, text)

            def _out(self, status: int, text: str) -> None:
                blob = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(blob)))
                    self.end_headers()
                    self.wfile.write(blob)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _run_against(reply, data, tmp_path, **http):
    fake = _Fake(reply)
    try:
        s = label(data, judge=fake.url, out=tmp_path / "l", limit=5, write_data=True,
                  engine_options=MEMORY,
                  **{"tokenizer": "tiny-llama", "retries": 1, "backoff": 0.01, **http}).summary
    finally:
        fake.close()
    return s, pd.read_parquet(tmp_path / "l" / "labels.parquet"), fake


def test_a_server_that_times_out_gives_failures_not_labels(data, tmp_path, cache_env) -> None:
    answer = threading.Event()  # set once the run is over: the client gives up first

    def never(*_):
        answer.wait()
        return 200, "{}"

    try:
        s, table, fake = _run_against(never, data, tmp_path, timeout=0.3)
    finally:
        answer.set()
    assert s["n_failed"] == 5 and s["n_labelled"] == 0 and "alignment" not in s
    assert table["p_ai"].isna().all()
    assert table["failure"].str.contains("timed out after 0.3 s").all()
    assert s["labelled_pairs"] == 0
    assert (tmp_path / "l" / "labelled.jsonl").read_text() == ""
    assert fake.calls >= 2  # retried


@pytest.mark.parametrize("reply, reason", [
    (lambda *_: (200, "<html>oops</html>"), "not JSON"),
    (lambda *_: (200, json.dumps({"choices": [{"index": 0, "text": "1"}]})), "choices"),
    (lambda *_: (400, "bad request"), "HTTP 400"),
    (lambda _, n: (200, json.dumps({"choices": [
        {"index": i, "text": "x", "logprobs": {"top_logprobs": [{"maybe": -0.1}]}}
        for i in range(n)]})), "none of the labels"),
    (lambda _, n: (200, json.dumps({"choices": [
        {"index": i, "text": "x", "logprobs": {"top_logprobs": [{"1": "high"}]}}
        for i in range(n)]})), "not numbers"),
])
def test_garbage_replies_give_failures_with_reasons(data, tmp_path, cache_env, reply,
                                                    reason) -> None:
    s, table, _ = _run_against(reply, data, tmp_path)
    assert s["n_failed"] == 5 and table["p_ai"].isna().all()
    assert table["failure"].str.contains(reason).all(), table["failure"].tolist()


def test_a_failed_request_is_retried(data, tmp_path, cache_env) -> None:
    def flaky(call, n):
        if call % 2 == 1:
            return 503, "busy"
        return 200, json.dumps({"choices": [
            {"index": i, "text": "1", "logprobs": {"top_logprobs": [{" 1": -0.2, "2": -1.8}]}}
            for i in range(n)]})

    s, table, fake = _run_against(flaky, data, tmp_path, batch=8, concurrency=1)
    assert s["n_failed"] == 0 and fake.calls == 4  # two chunks (5 + 5 prompts), each retried
    p1 = 1 / (1 + np.exp(-1.8 + 0.2))
    np.testing.assert_allclose(table["p_chosen_first"], p1)
    np.testing.assert_allclose(table["p_chosen_second"], 1 - p1)


def test_read_label_logprobs() -> None:
    v = read_label_logprobs({"1": np.log(0.3), " 1": np.log(0.2), "2": np.log(0.1), "x": -9})
    np.testing.assert_allclose(np.exp(v[:2]), [0.5, 0.1])
    assert v[2] == 0
    bounded = read_label_logprobs({"1": -0.1, "x": -5.0})
    assert bounded[1] == -5.0 and bounded[2] == 1
    with pytest.raises(JudgeError, match="none of the labels"):
        read_label_logprobs({"a": -0.1})
    with pytest.raises(JudgeError, match="no top"):
        read_label_logprobs(None)
    assert api_base("http://h:1/") == "http://h:1/v1" and api_base("https://h/v1") == "https://h/v1"
    with pytest.raises(ValueError, match="not an http"):
        api_base("ftp://h")
