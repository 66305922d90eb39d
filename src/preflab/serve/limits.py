"""What one request may ask of the server, and how long and how many may wait."""

from __future__ import annotations

from dataclasses import dataclass

from preflab.settings import FromFile, setting

MAX_LOGPROBS = 20


@dataclass(frozen=True)
class Limits(FromFile):
    """The server's limits; each is a flag of ``preflab serve`` (``--max-body-mb``...)
    and a key of the ``[limits]`` table of its settings file."""

    max_body_mb: float = setting(4.0, "Largest request body in MiB; larger ones get a 413.",
                                 gt=0)
    max_tokens: int = setting(1024, "Most new tokens a request may ask for (max_tokens); "
                                    "more is a 400.", min=1)
    max_batch_tokens: int = setting(32768, "Most sequences x (longest prompt + max_tokens) "
                                           "in one request (bounds the KV cache).", min=2)
    max_logprobs: int = setting(MAX_LOGPROBS, "Most top log-probs a request may ask for.",
                                min=0)
    max_logprobs_mb: float = setting(
        1024.0, "Most memory (MiB) the log-probs of one request may take (sequences x "
                "max_tokens x vocabulary x 4 bytes).", gt=0)
    max_queue: int = setting(16, "Requests that may wait behind the running one; more get "
                                 "a 503 with Retry-After.", min=0)
    request_timeout: float = setting(120.0, "Seconds a request may take, waiting included; "
                                            "then a 503.", gt=0)
    shutdown_grace: float = setting(5.0, "Seconds the running request gets to finish on "
                                         "SIGINT/SIGTERM.", min=0)
    max_connections: int = setting(128, "Most open connections; more get a 503 (from "
                                        "uvicorn).", min=1)
    max_context: int | None = setting(
        None, "Most tokens (prompt + completion) per sequence; longer prompts get a 400.",
        min=2, shown="the model's context length")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
