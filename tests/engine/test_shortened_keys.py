"""The units whose prompt a judge shortened are kept by key (``truncated_keys``, what
the engine counts and caches), by one rule shared by every scorer that reads prompts:
the local judge, the direct scorer and the HTTP judge.

As found (issue 32 review): the rule was written twice (the judge's ``_unit_ids`` and
the direct scorer's ``encode``) and the HTTP judge had none, so an ``http-judge``
member never counted a shortened pair."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from preflab.engine.judge import JudgeReader, ShortenedPrompts, judge_unit
from preflab.engine.label_prompt import LabelPrompt

BODY = " ".join(f"Sentence {i} is about bread and foxes." for i in range(200))
LONG = (("user", f"Summarize the following content.\n\n{BODY}"),)
SHORT = (("user", "Summarize: foxes eat bread."),)
REPLIES = ("Bread and foxes, at length.", "Foxes.")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def models_server() -> Iterator[str]:
    """A real server on 127.0.0.1 that lists one model of a 512-token context and
    answers each prompt with label 1 likelier than 2."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._out({"data": [{"id": "m", "max_model_len": 512}]})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._out({"choices": [{"index": i, "text": "1", "logprobs": {
                "top_logprobs": [{"1": -0.2, "2": -1.8}]}} for i in range(len(body["prompt"]))]})

        def _out(self, reply: Any) -> None:
            blob = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_reader_keeps_the_keys_it_shortened(tiny_tok) -> None:
    reader = JudgeReader(tiny_tok, LabelPrompt.build("summary"), max_length=400,
                         keep_task=True)
    long, short = judge_unit(LONG, *REPLIES), judge_unit(SHORT, *REPLIES)
    assert len(reader.noting_cuts(long, reader.prompt_ids)) <= 400
    reader.noting_cuts(short, reader.prompt_ids)
    assert reader.truncated_keys == {long.key} and reader.context_truncated == 1


def test_the_direct_scorer_and_the_judges_share_the_rule() -> None:
    from preflab.engine.direct import DirectScorer, direct_unit
    from preflab.engine.http_judge import HttpJudgeScorer

    assert all(issubclass(c, ShortenedPrompts)
               for c in (DirectScorer, JudgeReader, HttpJudgeScorer))
    scorer = DirectScorer("tiny-llama", task="summary", max_length=400,
                          max_context_tokens=None)
    long, short = direct_unit(LONG, REPLIES[0]), direct_unit(SHORT, REPLIES[0])
    scorer.encode([long])
    scorer.encode([short])
    assert scorer.truncated_keys == {long.key}


def test_an_http_judge_counts_the_pairs_it_shortened(models_server: str) -> None:
    from preflab.engine import Engine, EngineOptions
    from preflab.engine.http_client import HttpOptions
    from preflab.engine.http_judge import HttpJudgeScorer

    options = HttpOptions(models_server, model="m", tokenizer="tiny-llama", retries=0)
    scorer = HttpJudgeScorer(options, LabelPrompt.build("summary"), keep_task=True)
    units = [judge_unit(LONG, *REPLIES), judge_unit(SHORT, *REPLIES)]
    e = Engine(EngineOptions(cache_path=":memory:", progress=False))
    values = e.run(scorer, units)
    assert not e.failures and all(v[0] > v[1] for v in values)
    assert e.truncated == {units[0].key}
