"""Shards on a ``concurrent.futures.Executor`` the user already has.

A thread executor calls the user's function object directly; a process executor receives
the task pickled (the function by value where its workers could not import it). Per-item
timeouts need a worker the runner can watch, so they apply to the package's own pools only.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import Any

from ..task import ChunkTask, executor_failure, run_chunk
from .base import Event, Results, Runner, Shard

__all__ = ["ExecutorRunner"]


class ExecutorRunner(Runner):
    def __init__(self, task: ChunkTask, executor: Executor) -> None:
        super().__init__()
        self.task = task
        self.executor = executor
        self.in_process = isinstance(executor, ThreadPoolExecutor)
        self.workers = int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)
        self.capacity = self.workers * 2
        self._futures: dict[Future[Any], Shard] = {}

    @property
    def inflight(self) -> int:
        return len(self._futures)

    def submit(self, shard: Shard) -> None:
        self._futures[self.executor.submit(run_chunk, self.task, shard.items)] = shard

    def poll(self, timeout: float) -> list[Event]:
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        events: list[Event] = []
        for fut in done:
            shard = self._futures.pop(fut)
            try:
                part = fut.result()
            except BaseException as exc:  # the executor itself failed the chunk
                part = [executor_failure(index, item, exc) for index, item in shard.items]
            events.append(Results(shard.id, part, True))
        return events

    def stop(self) -> list[Event]:
        for fut in self._futures:
            fut.cancel()
        return []
