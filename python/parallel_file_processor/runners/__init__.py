"""Where work runs, behind one interface (:class:`~.base.Runner`).

The one resolver, :func:`make_runner`, turns what the user gave (None, a mode name, an
``Executor``, a Dask ``Client``) into a runner. Inline, threads, a thread executor and asyncio
call the user's function object in this process; processes, a process executor and a Dask
cluster receive it pickled. Dask is imported only when a client is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..task import ChunkTask
from ..types import ProcessingMode
from .base import (
    LOST,
    UNRUNNABLE,
    Event,
    Results,
    Runner,
    Shard,
    Stopped,
    is_dask_client,
    native_threads,
)

__all__ = ["make_runner", "is_dask_client", "native_threads", "Runner", "Shard", "Results",
           "Stopped", "Event", "LOST", "UNRUNNABLE"]


def make_runner(
    where: Any,
    task: ChunkTask,
    workers: int,
    *,
    timeout: float | None = None,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
    adaptive: bool = True,
    start_method: str | None = None,
    max_tasks_per_worker: int | None = None,
    max_memory_mb: float | None = None,
) -> Runner:
    """The runner for ``where``: None or a mode (a :class:`ProcessingMode` or its name; None is
    sequential), a ``concurrent.futures.Executor``, or a Dask ``Client`` (or its
    ``get_executor()``)."""
    if where is not None and not isinstance(where, (str, ProcessingMode)):
        if is_dask_client(where):
            from .dask import DaskRunner

            return DaskRunner(where, task, timeout=timeout, initializer=initializer,
                              initargs=initargs)
        from .executor import ExecutorRunner

        return ExecutorRunner(task, where)
    mode = ProcessingMode(where or ProcessingMode.SEQUENTIAL)
    if mode == ProcessingMode.SEQUENTIAL:
        from .inline import InlineRunner

        return InlineRunner(task, initializer=initializer, initargs=initargs)
    if mode == ProcessingMode.PROCESS_POOL:
        from .processes import ProcessRunner

        return ProcessRunner(task, workers, start_method=start_method, initializer=initializer,
                             initargs=initargs, timeout=timeout,
                             max_tasks_per_worker=max_tasks_per_worker,
                             max_memory_mb=max_memory_mb)
    if mode == ProcessingMode.ASYNC:
        from .aio import AsyncRunner

        return AsyncRunner(task, workers, timeout=timeout, initializer=initializer,
                           initargs=initargs)
    from .threads import ThreadRunner

    return ThreadRunner(task, workers, timeout=timeout, initializer=initializer,
                        initargs=initargs, adaptive=adaptive)
