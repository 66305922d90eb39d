"""A judge scorer from a name: a local causal LM or an OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

from preflab.engine.judge import JudgeScorer
from preflab.engine.label_prompt import LabelPrompt
from preflab.models.runtime import Runtime


def is_url(judge: str) -> bool:
    return judge.startswith(("http://", "https://"))


def make_judge(judge: str, prompt: LabelPrompt, max_length: int = 2048,
               max_context_tokens: int | None = 256, runtime: Runtime | None = None,
               keep_task: bool = False, **http: Any) -> Any:
    """A local judge (a causal-LM preset, folder or hub id) or, for a URL, an
    OpenAI-compatible server (:class:`~preflab.engine.http_judge.HttpJudgeScorer`;
    `http` are its options: ``top_logprobs`` and fields of
    :class:`~preflab.engine.http_client.HttpOptions`). With `keep_task`, a conversation
    too long for the judge keeps its first instruction (see
    :class:`~preflab.engine.judge.JudgeReader`)."""
    if is_url(judge):
        from preflab.engine.http_client import HttpOptions
        from preflab.engine.http_judge import HttpJudgeScorer

        top_logprobs = http.pop("top_logprobs", 20)
        return HttpJudgeScorer(HttpOptions(judge, max_length=max_length, **http), prompt,
                               max_context_tokens, top_logprobs, keep_task)
    if http:
        raise ValueError(f"options {sorted(http)} are for HTTP judges; {judge!r} is local")
    return JudgeScorer(judge, name=f"label:{judge}", prompt=prompt, max_length=max_length,
                       max_context_tokens=max_context_tokens, runtime=runtime,
                       keep_task=keep_task)
