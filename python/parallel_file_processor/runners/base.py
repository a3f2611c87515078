"""The one interface every runner implements, and the events it reports.

A runner runs *shards* (chunks of ``(index, item)`` pairs) of one task and reports what
happened as events. It knows how to run, watch and stop its workers; it does not know what the
run is for. The driver (:mod:`parallel_file_processor.job`) decides what to submit, requeues
the items of a shard whose worker was lost, and turns events into results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ..task import Chunk
from ..types import ProcessingResult

__all__ = ["Runner", "Shard", "Results", "Stopped", "Event", "LOST", "UNRUNNABLE", "client_of",
           "is_dask_client", "native_threads", "sharing_cores"]

#: ``Stopped.status`` for work the cluster dropped (a restart): every item runs again.
LOST = "lost"
#: ``Stopped.status`` for work no worker is left to run: every item fails with the message.
UNRUNNABLE = "unrunnable"


@dataclass(slots=True)
class Shard:
    """A chunk of items and its id; ``nbytes`` is what read-ahead holds for it."""

    id: int
    items: Chunk
    nbytes: int = 0


@dataclass(slots=True)
class Results:
    """Items of a shard that finished (``done``: the shard finished)."""

    shard: int
    results: list[ProcessingResult[Any]]
    done: bool


@dataclass(slots=True)
class Stopped:
    """A shard stopped before it finished.

    ``status`` says why: ``Status.CRASHED`` (its worker died), ``Status.TIMEOUT`` (an item ran
    too long and its worker was given up), :data:`LOST` or :data:`UNRUNNABLE`. ``running`` is
    the index of the item that was running (the culprit), when the runner knows it.
    """

    shard: int
    running: int | None
    status: str
    message: str
    worker_id: str | None = None


Event = Results | Stopped


class Runner(ABC):
    """Where shards run: inline, threads, processes, asyncio, an executor or a Dask cluster."""

    #: parallel workers (threads, processes, concurrent tasks, cluster threads)
    workers: int = 1
    #: shards it wants in flight to keep every worker busy
    capacity: int = 1
    #: whether it calls the task's function object in this process (no pickling)
    in_process: bool = True
    #: whether its workers run on this machine (they see its files; nothing to check)
    local: bool = True
    #: abandoned threads, recycled processes... (reported in the batch's summary)
    stats: dict[str, Any]

    def __init__(self) -> None:
        self.stats = {}

    def chunk_size(self, total: int | None) -> int:
        """Items per shard: a few shards per worker, at most 512."""
        if total is None:
            return 64
        return max(1, min(512, total // (self.workers * 4) or 1))

    @abstractmethod
    def submit(self, shard: Shard) -> None:
        """Start (or queue) a shard."""

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for something to happen; return what happened."""

    @property
    @abstractmethod
    def inflight(self) -> int:
        """Shards submitted and not yet finished or stopped."""

    def stop(self) -> list[Event]:
        """Ctrl-C: stop starting items, return at once with every result already finished."""
        return []

    def close(self) -> None:  # noqa: B027 - most runners have something to release
        """Release the workers (idempotent)."""

    def check_visible(self, paths: Sequence[str], *, strict: bool) -> None:  # noqa: B027
        """Raise :class:`~parallel_file_processor.errors.PathsNotVisibleError` when the
        workers cannot see ``paths`` (``strict``: each must exist on every worker; else only a
        path some see and others do not). Workers on this machine see what it sees."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_of(executor: Any) -> Any:
    """A ``Client`` from a ``Client`` or the ``ClientExecutor`` of ``client.get_executor()``."""
    return getattr(executor, "_client", executor)


def is_dask_client(obj: Any) -> bool:
    """A Dask ``Client`` (or its ``get_executor()``), told apart without importing Dask."""
    obj = client_of(obj)
    return hasattr(obj, "submit") and hasattr(obj, "scheduler_info")


_CORES: ContextVar[int | None] = ContextVar("pfp_cores", default=None)


def native_threads(requested: int | None) -> int | None:
    """Threads for a native job started here: the caller's choice, else this worker's share of
    the machine's cores when a runner set one (:func:`sharing_cores`), else None (the native
    default: every core)."""
    return requested if requested is not None else _CORES.get()


@contextmanager
def sharing_cores(threads: int) -> Iterator[None]:
    """Inside, native jobs use ``threads`` threads unless told otherwise (a cluster worker
    running several tasks at once gives each its share of the cores)."""
    token = _CORES.set(threads)
    try:
        yield
    finally:
        _CORES.reset(token)
