"""What the HTTP scorers share: their options (:class:`HttpOptions`), the client that
POSTs with a timeout and retries (:class:`HttpClient`), and the served model and its
context (:func:`connect`, from ``GET /v1/models``).

Requests run `concurrency` at a time, each with a `timeout`; a connection error, a
timeout, a 408, 409, 429 or a 5xx is retried `retries` times with exponential backoff
and jitter. What still fails raises :class:`JudgeError`, whose message the scorers
record as the unit's failure.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class HttpOptions:
    """How an HTTP scorer reaches its server and reads its model."""

    url: str  # the server (``http://host:8000``; ``/v1`` may be given or left out)
    model: str | None = None  # the served model; None: the server's first
    tokenizer: str | Any | None = None  # renders the inputs as the local scorer would
    # (a preset, folder or hub id, or a tokenizer); None: the model's name
    max_length: int = 2048  # tokens of an input, at most the server's context
    concurrency: int = 4  # requests at a time
    batch: int | None = None  # inputs per request; None: the scorer's own
    timeout: float = 120.0  # seconds a request may take
    retries: int = 3  # tries after the first, for a timeout, a lost connection, a 5xx...
    backoff: float = 0.5  # seconds before the first retry, doubled for each next one
    api_key: str | None = None  # None: $OPENAI_API_KEY, if set
    name: str | None = None  # the scorer's name in progress and reports

    def __post_init__(self) -> None:
        check_url(self.url)
        if self.concurrency < 1 or (self.batch is not None and self.batch < 1):
            raise ValueError("concurrency and batch must be at least 1")

    @property
    def host(self) -> str:
        """``host:port`` of the server, for the scorer's default name."""
        return urlparse(self.url).netloc


def check_url(url: str) -> str:
    """`url`, refused (ValueError) unless it is an http(s) URL with a host."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


class JudgeError(RuntimeError):
    """A judgement that could not be had; the message is the recorded reason, `status`
    the HTTP status of a refusal (None for other failures)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HttpClient:
    """POSTs with a timeout, retries with exponential backoff and jitter."""

    def __init__(self, base: str, timeout: float = 120.0, retries: int = 3,
                 backoff: float = 0.5, api_key: str | None = None) -> None:
        self.base = base
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.session = requests.Session()

    def get(self, path: str) -> Any:
        try:
            r = self.session.get(self.base + path, timeout=self.timeout, headers=self.headers)
            r.raise_for_status()
            return r.json()
        except (requests.RequestException, ValueError) as e:
            raise JudgeError(f"GET {self.base + path}: {e}") from None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4))
            try:
                r = self.session.post(self.base + path, json=body, timeout=self.timeout,
                                      headers=self.headers)
            except requests.Timeout:
                last = f"timed out after {self.timeout:g} s"
                continue
            except requests.ConnectionError as e:
                last = f"connection failed: {e}"
                continue
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                continue
            if r.status_code != 200:
                raise JudgeError(f"HTTP {r.status_code}: {r.text[:200]}", r.status_code)
            try:
                out = r.json()
            except ValueError:
                raise JudgeError(f"the reply is not JSON: {r.text[:100]!r}") from None
            if not isinstance(out, dict):
                raise JudgeError("the reply is not a JSON object")
            return out
        raise JudgeError(f"{last} ({self.retries + 1} tries)")


def served_context(listed: Any, model: str) -> int | None:
    """The context (``max_model_len``) that a ``GET /v1/models`` reply gives for `model`
    (else for its only model); None when it gives none."""
    try:
        entries = [d for d in listed["data"] if isinstance(d, dict)]
    except (KeyError, TypeError):
        return None
    entry = next((d for d in entries if d.get("id") == model),
                 entries[0] if len(entries) == 1 else None)
    value = entry.get("max_model_len") if entry else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def connect(options: HttpOptions, base: str, models: str
            ) -> tuple[HttpClient, str, int | None]:
    """(the client of the API at `base`, the served model: ``options.model``, else the
    first that ``GET models`` lists, and the server's context for it: None when the
    server does not say)."""
    client = HttpClient(base, options.timeout, options.retries, options.backoff,
                        options.api_key)
    model = options.model
    if model is None:
        listed = client.get(models)
        try:
            model = str(listed["data"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"{options.url}: /v1/models lists no model; set model") from None
    else:
        try:
            listed = client.get(models)
        except JudgeError:  # a server without the listing: its context is not known
            listed = {}
    return client, model, served_context(listed, model)


def run_chunks(score: Callable[[list[Any]], list[Any]], items: list[list[Any]], size: int,
               concurrency: int) -> list[Any]:
    """`score` over the engine's items, flattened and cut into requests of `size`,
    `concurrency` at a time; the values in the items' order."""
    flat = [x for item in items for x in item]
    chunks = [flat[i:i + size] for i in range(0, len(flat), size)]
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(score, chunks))
    return [v for r in results for v in r]
