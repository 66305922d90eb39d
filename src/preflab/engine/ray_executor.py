"""Batches on a Ray cluster: a pool of actors, each holding its own loaded scorer.

The engine still deduplicates, consults the cache, encodes and plans batches in the
driver; the actors only run ``scorer.run(batch)``. A scorer is put in Ray's object
store once and each actor loads it once (kept by fingerprint), so a model is not
shipped per batch. Every finished batch comes back to the driver, which writes it to
the score cache at once: a run that stops is resumed from the cache by any executor.

Faults: an actor whose process dies takes its in-flight batches with it; they go
back in the queue for the other actors and a fresh actor replaces the dead one
(up to ``retries`` times per batch, then the run stops naming the batch). A batch
the scorer raises on comes back as a :class:`~preflab.engine.executor.BatchFailure`.

Ray Data's ``map_batches`` with an ``ActorPoolStrategy`` was the other choice: the
engine already plans token-capped, length-sorted batches and needs each result in the
cache as it lands, so plain actors fed by the engine do the same with less machinery.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from preflab.engine.executor import BatchFailure, describe

IN_FLIGHT = 2  # batches queued per actor: the next one is ready when one finishes


class ExecutorError(ValueError):
    """A run the executor could not finish (the cache keeps what was done): the command
    shows it as one line, like other errors a user acts on."""


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError("the Ray executor needs Ray: pip install 'preflab[ray]'") from None
    return ray


class _ScorerWorker:
    """One actor: loads each scorer it is sent once and runs batches with it; `loads`
    counts the loads by scorer name."""

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        self.scorers: dict[str, Any] = {}
        self.loads: dict[str, int] = {}
        try:  # while the driver reads and tokenizes: most scorers need torch
            import torch

            if threads:
                torch.set_num_threads(threads)
        except ImportError:
            pass

    def pid(self) -> int:
        return os.getpid()

    def peak_mib(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def load_counts(self) -> dict[str, int]:
        return self.loads

    def run(self, fingerprint: str, box: list[Any], items: list[Any]) -> list[Any]:
        scorer = self.scorers.get(fingerprint)
        if scorer is None:
            import ray

            self.scorers = {}  # one at a time: memory stays bounded
            scorer = ray.get(box[0])
            _settle(scorer, self.threads)
            self.scorers = {fingerprint: scorer}
            name = str(getattr(scorer, "name", fingerprint))
            self.loads[name] = self.loads.get(name, 0) + 1
        return scorer.run(items)


def _settle(scorer: Any, threads: int | None) -> None:
    """Fit a scorer unpickled in an actor to it: torch threads, and the model on the
    device its runtime names here (the driver may have no GPU)."""
    if "torch" not in sys.modules and not hasattr(scorer, "model"):
        return
    import torch

    if threads:
        torch.set_num_threads(threads)
    runtime, model = getattr(scorer, "runtime", None), getattr(scorer, "model", None)
    if runtime is not None and isinstance(model, torch.nn.Module):
        model.to(runtime.torch_device())


class RayExecutor:
    """Runs batches on `actors` Ray actors (`num_cpus` / `num_gpus` each, `threads`
    torch threads each; None: as many as its CPUs). `address` joins a running cluster
    (``ray.init(address=...)``; "auto" finds a local one); None starts a local cluster
    for this process, shut down by :meth:`close`."""

    def __init__(self, address: str | None = None, actors: int = 2, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, threads: int | None = None, retries: int = 2,
                 in_flight: int = IN_FLIGHT) -> None:
        if actors < 1:
            raise ValueError(f"actors must be at least 1, got {actors}")
        self.address = address
        self.n_actors = actors
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.threads = threads or (max(1, int(num_cpus)) if num_cpus else None)
        self.retries = retries
        self.in_flight = in_flight
        self.actors: list[Any] = []
        self.replaced = 0  # actors started to stand in for dead ones
        self._started_ray = False
        self._boxes: dict[str, list[Any]] = {}

    # -- the pool ---------------------------------------------------------------------
    def start(self) -> RayExecutor:
        """Join or start the cluster and start the actors now (they start in the
        background while the driver reads the data), rather than at the first batch."""
        self._start()
        return self

    def _start(self) -> None:
        ray = _require_ray()
        if not ray.is_initialized():
            if self.address is None:
                ray.init(include_dashboard=False, log_to_driver=False,
                         configure_logging=False,
                         runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                             p for p in sys.path if p)}})
                self._started_ray = True
            else:
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    raise ExecutorError(f"cannot join the Ray cluster at {self.address!r}: "
                                        f"{describe(e)}") from None
        while len(self.actors) < self.n_actors:
            self.actors.append(self._new_actor())

    def _new_actor(self) -> Any:
        ray = _require_ray()
        worker = ray.remote(_ScorerWorker).options(num_cpus=self.num_cpus,
                                                   num_gpus=self.num_gpus, max_restarts=0)
        return worker.remote(self.threads)

    def pids(self) -> list[int]:
        """The process id of each live actor (for tests and diagnostics)."""
        ray = _require_ray()
        self._start()
        return ray.get([a.pid.remote() for a in self.actors])

    def info(self) -> dict[str, Any]:
        """What the pool is: actors, actors replaced after a death, each live actor's
        peak resident memory (MiB) and how many times it loaded each scorer (by name:
        once for all the batches of a run, chunks included, that it got)."""
        if not self.actors:
            return {"actors": 0, "replaced": self.replaced}
        ray = _require_ray()
        peaks = ray.get([a.peak_mib.remote() for a in self.actors])
        counts = ray.get([a.load_counts.remote() for a in self.actors])
        names = sorted({name for c in counts for name in c})
        return {"actors": len(self.actors), "replaced": self.replaced,
                "num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                "actor_peak_rss_mib": [round(p) for p in peaks],
                "actor_loads": {name: [c.get(name, 0) for c in counts] for name in names}}

    def close(self) -> None:
        """Stop the actors, and the local cluster when this executor started it."""
        if not self.actors and not self._started_ray:
            return
        ray = _require_ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        self._boxes = {}
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ------------------------------------------------------------------------
    def _box(self, scorer: Any) -> list[Any]:
        """The scorer in the object store, put there once per fingerprint; boxed in a
        list so Ray hands the actor the reference, not a fresh copy every batch."""
        ray = _require_ray()
        fp = str(getattr(scorer, "fingerprint", id(scorer)))
        if fp not in self._boxes:
            self._boxes = {fp: [ray.put(scorer)]}
        return self._boxes[fp]

    def run(self, scorer: Any, batches: Sequence[list[Any]]
            ) -> Iterator[tuple[int, list[Any] | BatchFailure]]:
        if not batches:
            return
        ray = _require_ray()
        self._start()
        box = self._box(scorer)
        fp = str(getattr(scorer, "fingerprint", id(scorer)))
        queue = deque(range(len(batches)))
        tries = [0] * len(batches)
        running: dict[Any, tuple[int, Any]] = {}  # result ref -> (batch, actor)

        def fill() -> None:
            load = {id(a): 0 for a in self.actors}
            for _, actor in running.values():
                load[id(actor)] = load.get(id(actor), 0) + 1
            for actor in sorted(self.actors, key=lambda a: load[id(a)]):
                while queue and load[id(actor)] < self.in_flight:
                    index = queue.popleft()
                    tries[index] += 1
                    running[actor.run.remote(fp, box, batches[index])] = (index, actor)
                    load[id(actor)] += 1

        fill()
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayActorError:
                self._lost(actor, index, tries, queue, running)
            except ray.exceptions.RayTaskError as e:  # the scorer raised on this batch
                yield index, BatchFailure(describe(e.cause or e))
            else:
                yield index, result
            fill()

    def _lost(self, actor: Any, index: int, tries: list[int], queue: deque[int],
              running: dict[Any, tuple[int, Any]]) -> None:
        """An actor died: requeue its batch (and replace the actor) or give up."""
        if tries[index] > self.retries:
            raise ExecutorError(
                f"batch {index} was lost with its actor {tries[index]} times; stopping. "
                "Finished batches are in the score cache: run the same command again to "
                "resume from there")
        queue.appendleft(index)
        if any(a is actor for a in self.actors):
            self.actors = [a for a in self.actors if a is not actor]
            _require_ray().kill(actor)
            self.actors.append(self._new_actor())
            self.replaced += 1
