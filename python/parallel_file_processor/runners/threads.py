"""Shards on a pool of daemon threads, calling the user's function object directly.

``ThreadPoolExecutor`` joins its threads at interpreter exit, so one call that never returns
(the case per-item timeouts exist for) would hang the program; daemon threads do not. A thread
stuck in a timed-out call cannot be killed: it is given up and a fresh thread takes its place
(up to ``max_abandoned`` times), so the run goes on.

Items too cheap to gain much from threads (a probe of the first few shows under 50 µs each)
are timed both ways (``adaptive``): for a few dozen milliseconds on the calling thread, then as
long on two threads (which pays off when the items spend their time in system calls that
release the GIL, such as opening and reading files); the rest of the run goes the faster way.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..task import ChunkTask, Slot, run_chunk
from ..types import Status
from .base import UNRUNNABLE, Event, Results, Runner, Shard, Stopped
from .inline import InlineRunner

__all__ = ["ThreadRunner"]

#: Items cheaper than this are timed inline and on a couple of threads before deciding (a GIL
#: hand-off costs about as much as such an item).
_CHEAP_ITEM_S = 50e-6
#: How long each way is timed.
_TRIAL_S = 0.03
#: Threads for cheap items: more only add GIL hand-offs.
_CHEAP_THREADS = 2

log = logging.getLogger(__name__)


class ThreadRunner(Runner):
    def __init__(
        self,
        task: ChunkTask,
        workers: int,
        *,
        timeout: float | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        adaptive: bool = True,
        max_abandoned: int | None = None,
    ) -> None:
        super().__init__()
        self.task = task
        self.workers = workers
        self.capacity = workers * 2
        self.timeout = timeout
        self._initializer = initializer
        self._initargs = initargs
        self._max_abandoned = max_abandoned if max_abandoned is not None else max(16, 4 * workers)
        self._jobs: queue.SimpleQueue[tuple[Shard, Slot] | None] = queue.SimpleQueue()
        self._finished: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._running: dict[int, tuple[Shard, Slot]] = {}
        self._reported: dict[int, int] = {}
        self._threads = 0
        self._live = 0
        self._stuck = 0
        self._init_error: BaseException | None = None
        self._lock = threading.Lock()
        self.stats = {"abandoned_threads": 0}
        # None: not decided yet (probe the first shard); an InlineRunner: items are too cheap.
        self._inline: InlineRunner | None = None
        self._probing = adaptive and timeout is None and initializer is None
        # Cheap items: ("inline" | "threads", since, items done) while timing each way.
        self._trial: tuple[str, float, int] | None = None
        self._inline_rate = 0.0
        if not self._probing:
            self._start_threads(workers)

    # -- threads --

    def _start_threads(self, n: int) -> None:
        for _ in range(n):
            t = threading.Thread(target=self._work, name=f"pfp-worker-{self._threads}",
                                 daemon=True)
            self._threads += 1
            with self._lock:
                self._live += 1
            t.start()

    def _work(self) -> None:
        wid = f"{os.getpid()}:{threading.current_thread().name}"
        if self._initializer is not None:
            try:
                self._initializer(*self._initargs)
            except BaseException as exc:
                self._init_error = exc
                self._finished.put(-1)
                return
        task = self.task
        while True:
            job = self._jobs.get()
            if job is None:
                break
            shard, slot = job
            try:
                if not (slot.abandoned or slot.stop):
                    run_chunk(task, shard.items, slot, wid)
            finally:
                self._finished.put(shard.id)
            if slot.abandoned:
                # A replacement thread took over while this one was stuck: it ends here.
                with self._lock:
                    self._stuck -= 1
                    self._live -= 1
                return
        with self._lock:
            self._live -= 1

    # -- Runner --

    @property
    def inflight(self) -> int:
        if self._inline is not None:
            return self._inline.inflight + len(self._running)
        return len(self._running)

    def submit(self, shard: Shard) -> None:
        if self._inline is not None:
            self._inline.submit(shard)
            return
        slot = Slot()
        self._running[shard.id] = (shard, slot)
        self._reported[shard.id] = 0
        if not self._probing:
            self._jobs.put((shard, slot))

    def poll(self, timeout: float) -> list[Event]:
        if self._inline is not None:
            # Threads given up after a trial still finish the shards they hold.
            if self._inline.inflight:
                events = self._inline.poll(timeout)
                if self._running:
                    events.extend(self._poll_threads(0.0))
            else:
                events = self._poll_threads(timeout) if self._running else []
            if self._trial is not None:
                self._timed(events)
            return events
        if self._probing:
            return self._probe() if self._running else []
        events = self._poll_threads(timeout)
        if self._trial is not None:
            self._timed(events)
        return events

    def _timed(self, events: list[Event]) -> None:
        """Count finished items while timing one way; once both are timed, pick the faster."""
        assert self._trial is not None
        way, since, done = self._trial
        done += sum(len(e.results) for e in events if type(e) is Results)
        elapsed = time.perf_counter() - since
        if elapsed < _TRIAL_S:
            self._trial = (way, since, done)
            return
        rate = done / elapsed
        if way == "inline":
            # Now the same on threads: queued shards move over.
            self._inline_rate = rate
            assert self._inline is not None
            queued = self._inline.take_queued()
            self._inline = None
            self._start_threads(min(self.workers, _CHEAP_THREADS))
            for shard in queued:
                self.submit(shard)
            self._trial = ("threads", time.perf_counter(), 0)
            return
        self._trial = None
        self.stats["cheap_items_on"] = "threads" if rate > self._inline_rate * 1.1 else "inline"
        if self.stats["cheap_items_on"] == "inline":
            # Threads finish what they hold; nothing new goes to them.
            self._inline = InlineRunner(self.task)
            for _ in range(self._threads):
                self._jobs.put(None)
            self._threads = 0

    def _poll_threads(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        try:
            first = self._finished.get(timeout=timeout)
        except queue.Empty:
            first = None
        done = [] if first is None else [first]
        while True:
            try:
                done.append(self._finished.get_nowait())
            except queue.Empty:
                break
        if self._init_error is not None:
            from ..errors import WorkerStartError

            exc = self._init_error
            raise WorkerStartError(
                f"the initializer failed in a worker thread: {type(exc).__name__}: {exc}"
            ) from exc
        for sid in done:
            entry = self._running.pop(sid, None)
            if entry is None:
                continue  # an abandoned shard's thread finished at last
            shard, slot = entry
            events.append(Results(sid, slot.results[self._reported.pop(sid):], True))
        # Results of shards still running (progress, and nothing lost on Ctrl-C).
        for sid, (_, slot) in self._running.items():
            n = len(slot.results)
            if n > self._reported[sid]:
                events.append(Results(sid, slot.results[self._reported[sid]:n], False))
                self._reported[sid] = n
        if self.timeout is not None:
            events.extend(self._timeouts())
        return events

    def _probe(self) -> list[Event]:
        """Run the first few items here; too cheap for threads -> stay inline."""
        self._probing = False
        sid, (shard, slot) = next(iter(self._running.items()))
        wid = f"{os.getpid()}:main"
        t0 = time.perf_counter()
        probed = 0
        items = shard.items
        while probed < len(items) and probed < 16 and time.perf_counter() - t0 < 0.01:
            run_chunk(self.task, items[probed:probed + 1], slot, wid)
            probed += 1
        per_item = (time.perf_counter() - t0) / max(1, probed)
        log.debug("probe: %d items at %.1f us each; %s", probed, per_item * 1e6,
                  "running inline" if per_item < _CHEAP_ITEM_S else
                  f"starting {self.workers} threads")
        events: list[Event] = [Results(sid, list(slot.results), probed == len(items))]
        rest = items[probed:]
        pending = [s for s, _ in self._running.values() if s.id != sid]
        self._running.clear()
        self._reported.clear()
        if per_item < _CHEAP_ITEM_S:
            self._inline = InlineRunner(self.task)
            if rest:
                self._inline.submit(Shard(sid, rest, shard.nbytes))
            for s in pending:
                self._inline.submit(s)
            self._trial = ("inline", time.perf_counter(), 0)
            return events
        self._start_threads(self.workers)
        if rest:
            self.submit(Shard(sid, rest, shard.nbytes))
        for s in pending:
            self.submit(s)
        return events

    def _timeouts(self) -> list[Event]:
        assert self.timeout is not None
        now = time.monotonic()
        events: list[Event] = []
        for sid, (_, slot) in list(self._running.items()):
            running = slot.index
            if running < 0 or slot.abandoned or now - slot.started <= self.timeout:
                continue
            # The thread stays stuck in the call: give it up, move the chunk's other items on.
            slot.abandoned = True
            del self._running[sid]
            n = len(slot.results)
            if n > self._reported[sid]:
                events.append(Results(sid, slot.results[self._reported[sid]:n], False))
            del self._reported[sid]
            events.append(Stopped(sid, running, Status.TIMEOUT,
                                  f"item did not finish within {self.timeout:g} s"))
            self.stats["abandoned_threads"] += 1
            with self._lock:
                self._stuck += 1
            replace = self.stats["abandoned_threads"] <= self._max_abandoned
            log.info("item %d ran past %g s: its thread is given up%s", running, self.timeout,
                     ", a fresh one takes its place" if replace else
                     f" (no more replacements: {self._max_abandoned} given up)")
            if replace:
                self._start_threads(1)
        with self._lock:
            healthy = self._live - self._stuck
        if healthy <= 0 and self._running:
            # Every thread is stuck and no more may be started: nothing else can run.
            for sid in list(self._running):
                self._running.pop(sid)[1].abandoned = True
                self._reported.pop(sid, None)
                events.append(Stopped(
                    sid, None, UNRUNNABLE,
                    f"not run: {self.stats['abandoned_threads']} worker threads are stuck in "
                    "calls that timed out"))
        return events

    def stop(self) -> list[Event]:
        events: list[Event] = []
        if self._inline is not None:
            events.extend(self._inline.stop())
        for sid, (_, slot) in self._running.items():
            slot.stop = True
            n = len(slot.results)
            if n > self._reported.get(sid, 0):
                events.append(Results(sid, slot.results[self._reported[sid]:n], False))
                self._reported[sid] = n
        return events

    def close(self) -> None:
        for _ in range(self._threads):
            self._jobs.put(None)
        self._threads = 0
