"""Items as asyncio tasks on an event loop of their own thread, at most ``workers`` at once.

A coroutine function is awaited; a plain function runs in the loop's default thread pool
(``asyncio.to_thread``). Either way it is the user's own object. There are no batch barriers:
a new item starts as soon as one finishes. A timed-out item is marked ``timeout`` (a plain
function's thread cannot be stopped and finishes in the background).
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
import traceback as tb
from collections.abc import Callable
from typing import Any

from ..task import ChunkTask, file_info_for, log_retry, timeout_result
from ..types import ProcessingResult, Status
from .base import Event, Results, Runner, Shard

__all__ = ["AsyncRunner"]

_DONE = object()


class AsyncRunner(Runner):
    def __init__(
        self,
        task: ChunkTask,
        workers: int,
        *,
        timeout: float | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__()
        self.task = task
        self.workers = workers
        self.timeout = timeout
        self._chunk = max(1, min(64, workers // 2))
        # Enough items queued on the loop that a free slot never waits for the driver.
        self.capacity = max(4, (2 * workers) // self._chunk + 2)
        self._out: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._left: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0
        self._initializer = initializer
        self._initargs = initargs
        self._is_coro = inspect.iscoroutinefunction(task.fn)
        self._loop = asyncio.new_event_loop()
        self._sem: asyncio.Semaphore | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="pfp-asyncio",
                                        daemon=True)
        self._thread.start()

    def chunk_size(self, total: int | None) -> int:
        return self._chunk

    @property
    def inflight(self) -> int:
        return self._inflight

    def submit(self, shard: Shard) -> None:
        self._inflight += 1
        self._loop.call_soon_threadsafe(self._start, shard)

    def _start(self, shard: Shard) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.workers)
            if self._initializer is not None:
                self._initializer(*self._initargs)
        self._left[shard.id] = len(shard.items)
        if not shard.items:
            self._out.put((shard.id, _DONE))
        for index, item in shard.items:
            t = self._loop.create_task(self._one(shard.id, index, item))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _one(self, sid: int, index: int, item: Any) -> None:
        assert self._sem is not None
        async with self._sem:
            result = await self._run(index, item)
        self._out.put((sid, result))
        self._left[sid] -= 1
        if self._left[sid] == 0:
            del self._left[sid]
            self._out.put((sid, _DONE))

    async def _run(self, index: int, item: Any) -> ProcessingResult[Any]:
        task, timeout = self.task, self.timeout
        fn = task.fn
        start = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                call = fn(item) if self._is_coro else asyncio.to_thread(fn, item)
                value = await (asyncio.wait_for(call, timeout) if timeout else call)
                return ProcessingResult(file_info_for(item), True, value, None,
                                        time.perf_counter() - start, None, None, attempts,
                                        "asyncio", Status.OK, index, item)
            except asyncio.TimeoutError:
                return timeout_result(index, item, timeout or 0.0, "asyncio")
            except Exception as exc:
                if attempts <= task.retries and isinstance(exc, task.retry_on):
                    delay = min(task.max_backoff, task.backoff * 2 ** (attempts - 1))
                    log_retry(task, index, item, exc, attempts, delay)
                    await asyncio.sleep(delay)
                    continue
                return ProcessingResult(
                    file_info_for(item), False, None, str(exc) or type(exc).__name__,
                    time.perf_counter() - start, type(exc).__name__, tb.format_exc(), attempts,
                    "asyncio", Status.FAILED, index, item)

    def _drain(self, first: tuple[int, Any] | None) -> list[Event]:
        got: list[tuple[int, Any]] = [] if first is None else [first]
        while True:
            try:
                got.append(self._out.get_nowait())
            except queue.Empty:
                break
        by_shard: dict[int, list[ProcessingResult[Any]]] = {}
        done: set[int] = set()
        for sid, value in got:
            if value is _DONE:
                done.add(sid)
            else:
                by_shard.setdefault(sid, []).append(value)
        events: list[Event] = [Results(sid, rs, sid in done) for sid, rs in by_shard.items()]
        events.extend(Results(sid, [], True) for sid in done if sid not in by_shard)
        self._inflight -= len(done)
        return events

    def poll(self, timeout: float) -> list[Event]:
        try:
            first = self._out.get(timeout=timeout)
        except queue.Empty:
            return []
        return self._drain(first)

    def stop(self) -> list[Event]:
        def cancel() -> None:
            for t in list(self._tasks):
                t.cancel()

        self._loop.call_soon_threadsafe(cancel)
        return [Results(e.shard, e.results, False) for e in self._drain(None)
                if isinstance(e, Results)]

    def close(self) -> None:
        if self._loop.is_closed():
            return

        def shutdown() -> None:
            for t in list(self._tasks):
                t.cancel()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(timeout=1)
        if not self._thread.is_alive():
            self._loop.close()
