"""The queue in front of the model: one request runs at a time on one model thread, at
most `max_queue` wait behind it (beyond that a 503 with ``Retry-After``), each has a
deadline, and one whose client leaves is dropped if waiting or stopped between two
decode steps if running.

All bookkeeping happens on the event loop; the model thread only reads its
:class:`~preflab.serve.model.Job`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import Receive

from preflab.serve.errors import unavailable
from preflab.serve.model import Cancelled, Job

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (the request body is already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Gate:
    """Admission, queueing, deadlines and cancellation for requests on one model."""

    def __init__(self, max_queue: int, timeout: float) -> None:
        self.max_queue = max_queue
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="preflab-model")
        self.jobs: dict[Job, asyncio.Future[None]] = {}  # admitted, not yet released
        self.closing = False
        self.seconds_per_job = 1.0  # a running mean, for Retry-After

    @property
    def pending(self) -> int:
        """Requests running or waiting."""
        return len(self.jobs)

    def _call(self, job: Job, holder: list[Callable[[Job], T]]) -> T:
        if not job.start():
            raise Cancelled(job.reason or "timeout")
        fn = holder.pop()
        started = time.monotonic()
        try:
            job.check()
            return fn(job)
        finally:
            self.seconds_per_job = 0.8 * self.seconds_per_job + 0.2 * (time.monotonic()
                                                                       - started)

    def _release(self, job: Job) -> None:
        abandoned = self.jobs.pop(job, None)
        if abandoned is not None and not abandoned.done():
            abandoned.set_result(None)

    def _drop(self, job: Job, holder: list[Any], reason: str) -> None:
        """Cancel `job`; one that had not started frees its place (and its request) now."""
        if job.cancel(reason):
            holder.clear()
            self._release(job)

    def _finished(self, job: Job, work: asyncio.Future[Any]) -> None:
        self._release(job)
        if not work.cancelled():
            work.exception()  # retrieved: a client that left never reads it

    def _admit(self) -> None:
        if self.closing:
            raise unavailable("the server is shutting down", "shutting_down")
        if self.pending > self.max_queue:
            wait = max(1, min(60, math.ceil(self.seconds_per_job * self.pending)))
            raise unavailable(f"the server is busy: one request is running and "
                              f"{self.pending - 1} are waiting, the most it queues "
                              f"(--max-queue); retry in about {wait} s", "server_busy", wait)

    async def run(self, fn: Callable[[Job], T], receive: Receive) -> T:
        """`fn(job)` on the model thread, once the model is free; raises an
        :class:`~preflab.serve.errors.ApiError` (503) when the queue is full, the
        deadline passes or the server shuts down, and :class:`ClientGone` when the
        client leaves."""
        self._admit()
        loop = asyncio.get_running_loop()
        job = Job(time.monotonic() + self.timeout)
        holder = [fn]  # emptied when the job is dropped, so its request is freed
        abandoned: asyncio.Future[None] = loop.create_future()
        self.jobs[job] = abandoned
        work = asyncio.wrap_future(self.executor.submit(self._call, job, holder))
        work.add_done_callback(lambda f: self._finished(job, f))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            # the model thread stops the job at its deadline; the margin covers a
            # prefill or tokenization that cannot be interrupted
            waits: set[asyncio.Future[Any]] = {work, gone, abandoned}
            await asyncio.wait(waits, timeout=self.timeout + 1.0,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._drop(job, holder, "disconnect")
            raise
        finally:
            gone.cancel()
        if work.done():
            return self._result(work)
        reason = "disconnect" if gone.done() and not gone.cancelled() else \
            "shutdown" if self.closing else "timeout"
        self._drop(job, holder, reason)
        raise self._failure(reason)

    def _result(self, work: asyncio.Future[T]) -> T:
        try:
            return work.result()
        except Cancelled as e:
            raise self._failure(str(e)) from None

    def _failure(self, reason: str) -> Exception:
        if reason == "disconnect":
            return ClientGone()
        if reason == "shutdown":
            return unavailable("the server is shutting down; the request was cancelled",
                               "shutting_down")
        return unavailable(f"the request took longer than this server's limit of "
                           f"{self.timeout:g} s (--request-timeout)", "timeout")

    def close(self, grace: float) -> None:
        """Shut down (on the event loop): refuse new requests, drop the waiting ones and
        give the running one `grace` seconds to finish."""
        self.closing = True
        deadline = time.monotonic() + grace
        for job in list(self.jobs):
            if job.cancel("shutdown", only_waiting=True):
                self._release(job)  # its coroutine answers 503 and frees the request
            else:
                job.shorten(deadline, "shutdown")

    def shutdown(self) -> None:
        """Wait for the model thread to finish and stop it."""
        self.executor.shutdown(wait=True, cancel_futures=True)
