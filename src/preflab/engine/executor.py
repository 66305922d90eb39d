"""Where batches run. The local executor runs them in order in this process; the Ray
executor (:mod:`preflab.engine.ray_executor`) runs them on a pool of actors, each
holding its own copy of the scorer. Batches are independent, so either may stand in
for the other and both give the same numbers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class BatchFailure:
    """A batch the scorer raised on: its units get no value, and say why."""

    error: str


def describe(error: BaseException) -> str:
    """One line naming an exception: its type and message."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


class Executor(Protocol):
    def run(self, scorer: Any, batches: Sequence[list[Any]]
            ) -> Iterator[tuple[int, list[Any] | BatchFailure]]:
        """``(index, scorer.run(batches[index]))`` for every batch, in any order; a
        batch the scorer raised on yields a :class:`BatchFailure` instead."""
        ...

    def close(self) -> None:
        """Release what the executor holds (workers, a cluster it started)."""
        ...


class LocalExecutor:
    """Runs batches one after another in this process."""

    def run(self, scorer: Any, batches: Sequence[list[Any]]
            ) -> Iterator[tuple[int, list[Any] | BatchFailure]]:
        for index, batch in enumerate(batches):
            try:
                result = scorer.run(batch)
            except Exception as e:  # a batch the scorer cannot run is a failure, not a score
                yield index, BatchFailure(describe(e))
            else:
                yield index, result

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ExecutorOptions:
    """Which executor, and for Ray: the cluster (`address`; None starts a local one),
    how many actors, the CPUs and GPUs Ray reserves for each and the torch threads
    each uses (None: as many as its CPUs)."""

    kind: str = "local"
    address: str | None = None
    actors: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got "
                             f"{self.kind!r}")
        if self.actors < 1:
            raise ValueError(f"actors must be at least 1, got {self.actors}")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError("num_cpus and num_gpus per actor must not be negative")

    @classmethod
    def from_table(cls, table: dict[str, Any], source: str) -> ExecutorOptions:
        """Options from a committee file's ``[engine]`` table (``executor = "ray"``,
        ``address``, ``actors``, ``num_cpus``, ``num_gpus``, ``threads``)."""
        known = {f.name for f in fields(cls)} - {"kind"}
        unknown = set(table) - known - {"executor"}
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)} in [engine]; "
                             f"allowed: {sorted(known | {'executor'})}")
        values = {k: v for k, v in table.items() if k in known}
        try:
            return cls(kind=table.get("executor", "local"), **values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{source}: [engine]: {e}") from None
