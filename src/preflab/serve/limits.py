"""What one request may ask of the server, and how long and how many may wait."""

from __future__ import annotations

from dataclasses import dataclass, fields

MAX_LOGPROBS = 20


@dataclass(frozen=True)
class Limits:
    """The server's limits; each is a flag of ``preflab serve`` (``--max-body-mb``...).

    `max_body_mb`: request body (413 above it); `max_tokens`: the most new tokens a
    request may ask for; `max_batch_tokens`: rows x (longest prompt + max_tokens) of
    one request (bounds the KV cache); `max_logprobs`: top log-probs per token;
    `max_logprobs_mb`: memory the per-step distributions of a log-prob request take
    (rows x max_tokens x vocabulary x 4 bytes); `max_queue`: requests waiting behind
    the running one (503 above it); `request_timeout`: seconds from arrival to answer;
    `shutdown_grace`: seconds the running request gets to finish on SIGINT/SIGTERM;
    `max_connections`: open connections (uvicorn answers 503 above it); `max_context`:
    the most tokens (prompt + completion) of one sequence, when not the model's own
    context length (``max_position_embeddings``).
    """

    max_body_mb: float = 4.0
    max_tokens: int = 1024
    max_batch_tokens: int = 32768
    max_logprobs: int = MAX_LOGPROBS
    max_logprobs_mb: float = 1024.0
    max_queue: int = 16
    request_timeout: float = 120.0
    shutdown_grace: float = 5.0
    max_connections: int = 128
    max_context: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            low = 0 if f.name in ("max_logprobs", "max_queue", "shutdown_grace") else 1e-9
            if not value >= low:
                raise ValueError(f"--{f.name.replace('_', '-')} must be "
                                 f"{'at least 0' if low == 0 else 'positive'}, got {value}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)
