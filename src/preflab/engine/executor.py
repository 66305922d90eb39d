"""Where batches run. The local executor runs them in order in this process; the Ray
executor (:mod:`preflab.engine.ray_executor`) runs them on a pool of actors, each
holding its own copy of the scorer. Batches are independent, so either may stand in
for the other and both give the same numbers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from preflab.settings import check_settings, setting

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
    each uses (None: as many as its CPUs). Settings (:func:`~preflab.settings.setting`):
    a stage's config nests them and its command shows them as ``--executor``,
    ``--ray-address``, ``--actors``, ``--actor-cpus`` and ``--actor-gpus``."""

    kind: str = setting("local", "Where batches run: local (this process) or ray (a pool "
                                 "of Ray actors, each holding its own copy of the model; "
                                 "needs preflab[ray]).", flag="--executor", choices=EXECUTORS)
    address: str | None = setting(None, "Ray: join this cluster (e.g. auto or "
                                        "ray://head:10001) instead of starting a local one.",
                                  flag="--ray-address", shown="a local cluster")
    actors: int = setting(2, "Ray: actors, each with its own copy of the model.", min=1)
    num_cpus: float = setting(1.0, "Ray: CPUs reserved per actor (also its torch threads).",
                              flag="--actor-cpus", min=0)
    num_gpus: float = setting(0.0, "Ray: GPUs per actor (1: one GPU each).",
                              flag="--actor-gpus", min=0)
    threads: int | None = setting(None, "Ray: torch threads per actor.", min=1,
                                  shown="its CPUs", cli=False)

    def __post_init__(self) -> None:
        check_settings(self)

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
