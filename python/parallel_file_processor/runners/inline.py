"""Shards run one after another on the calling thread (sequential mode, and thread mode when
items are too cheap for threads to pay off)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

from ..task import ChunkTask, Slot, run_chunk
from .base import Event, Results, Runner, Shard

__all__ = ["InlineRunner"]


class InlineRunner(Runner):
    """Runs each shard on the calling thread when polled; the function is called directly."""

    def __init__(
        self,
        task: ChunkTask,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__()
        self.task = task
        self.workers = 1
        self.capacity = 2
        self._initializer = initializer
        self._initargs = initargs
        self._queue: deque[Shard] = deque()
        self._current: tuple[Shard, Slot] | None = None
        self._wid = f"{os.getpid()}:main"

    def submit(self, shard: Shard) -> None:
        self._queue.append(shard)

    def take_queued(self) -> list[Shard]:
        """The shards not started yet (to hand them to another runner)."""
        queued = list(self._queue)
        self._queue.clear()
        return queued

    @property
    def inflight(self) -> int:
        return len(self._queue) + (self._current is not None)

    def poll(self, timeout: float) -> list[Event]:
        if not self._queue:
            return []
        if self._initializer is not None:
            init, self._initializer = self._initializer, None
            init(*self._initargs)
        shard = self._queue.popleft()
        slot = Slot()
        self._current = (shard, slot)
        run_chunk(self.task, shard.items, slot, self._wid)
        self._current = None
        return [Results(shard.id, slot.results, True)]

    def stop(self) -> list[Event]:
        if self._current is None:
            return []
        shard, slot = self._current
        self._current = None
        return [Results(shard.id, list(slot.results), False)]
