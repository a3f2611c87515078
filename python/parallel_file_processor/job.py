"""The driver: items through a runner, in shards, as a stream of results.

One loop for every runner (inline, threads, processes, asyncio, executors, Dask). It keeps a
bounded window of shards in flight, turns a lost worker into a result for the item it was
running and requeues the rest, splits a shard that keeps killing workers, keeps ``ordered``
streams in bounded memory, and on Ctrl-C returns every result that finished.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from .log import item_failed
from .runners import LOST, UNRUNNABLE, Event, Results, Runner, Shard, Stopped
from .task import Chunk, executor_failure, lost_result
from .types import ProcessingResult, Status

__all__ = ["ItemRun", "Source", "IterSource", "BatchSource", "chunked", "POLL_S"]

#: How long the driver waits for events before looking again (progress, Ctrl-C, timeouts).
POLL_S = 0.05
#: Times a shard dropped by the cluster (a restart) runs again before its items fail.
MAX_LOST = 3

_MISSING = object()

log = logging.getLogger(__name__)


def chunked(items: Iterable[Any], size: int) -> Iterator[Chunk]:
    """Lists of ``(index, item)`` pairs, lazily: the input is never copied whole."""
    it = enumerate(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class Source(Protocol):
    """Where shards come from: ``take(wait)`` gives ``(chunk, nbytes)``, None when nothing is
    ready yet (a read-ahead or a walk still working), and raises StopIteration at the end."""

    def take(self, wait: bool) -> tuple[Chunk, int] | None: ...


class BatchSource:
    """A :class:`Source` over something that hands out lists of items as they are found:
    ``take(timeout)`` gives a list (empty when nothing came in time) or None at the end.

    Full chunks go out as soon as they are there; a partial one only when nothing is running
    (so the first item starts at once) or at the end.
    """

    def __init__(self, batches: Any, size: int) -> None:
        self._batches = batches
        self._size = size
        self._buffer: list[Any] = []
        self._next_index = 0
        self._end = False

    def take(self, wait: bool) -> tuple[Chunk, int] | None:
        buf = self._buffer
        while len(buf) < self._size and not self._end:
            got = self._batches.take(POLL_S if wait and not buf else 0.0)
            if got is None:
                self._end = True
            elif not got:
                break
            else:
                buf.extend(got)
        if not buf:
            if self._end:
                raise StopIteration
            return None
        if len(buf) < self._size and not (wait or self._end):
            return None
        items = buf[:self._size]
        del buf[:self._size]
        start = self._next_index
        self._next_index += len(items)
        return list(enumerate(items, start)), 0


class IterSource:
    """A :class:`Source` over an iterator of chunks (always ready)."""

    def __init__(self, chunks: Iterator[Chunk]) -> None:
        self._chunks = chunks

    def take(self, wait: bool) -> tuple[Chunk, int] | None:
        return next(self._chunks), 0


class ItemRun:
    """One run of a task over items.

    Iterate to get lists of :class:`ProcessingResult` as they finish (``ordered``: in input
    order, with at most ``ahead`` items dispatched beyond the first one still missing). After an
    interrupt, :meth:`stop` returns what finished and :meth:`unfinished` what did not.

    ``source`` gives ``(chunk, nbytes)``; ``release(nbytes)`` is called when a shard is done
    (read-ahead budget). ``crash_retries``: times an item whose worker died is run again before
    it is recorded as crashed (native shards retry; user items do not).
    """

    def __init__(
        self,
        source: Source,
        runner: Runner,
        *,
        ordered: bool = False,
        ahead: int | None = None,
        release: Callable[[int], None] | None = None,
        crash_retries: int = 0,
    ) -> None:
        self.runner = runner
        self.ordered = ordered
        self.ahead = ahead
        #: items taken from the input so far
        self.pulled = 0
        #: the input is used up
        self.exhausted = False
        self._source = source
        self._release = release
        self._crash_retries = crash_retries
        self._ids = itertools.count()
        self._open: dict[int, tuple[dict[int, Any], int]] = {}
        self._requeue: deque[Shard] = deque()
        self._retried: dict[int, int] = {}
        self._next = 0
        self._buffer: dict[int, ProcessingResult[Any]] = {}

    # -- the loop --

    def __iter__(self) -> Iterator[list[ProcessingResult[Any]]]:
        runner = self.runner
        while True:
            self._fill()
            if not runner.inflight and not self._requeue and self.exhausted:
                break
            # Nothing in flight: the source is still finding work, and waits for it itself.
            out = self._handle(runner.poll(POLL_S)) if runner.inflight else []
            if out:
                if not self.ordered:
                    yield out
                else:
                    ready = self._in_order(out)
                    if ready:
                        yield ready
        if self._buffer:  # ordered: whatever is left (only after gaps that never fill)
            yield [self._buffer.pop(i) for i in sorted(self._buffer)]

    def _fill(self) -> None:
        runner = self.runner
        while runner.inflight < runner.capacity:
            if self._requeue:
                shard = self._requeue.popleft()
            elif self.exhausted or self._blocked():
                return
            else:
                try:
                    nxt = self._source.take(not runner.inflight and not self._requeue)
                except StopIteration:
                    self.exhausted = True
                    return
                if nxt is None:
                    return  # nothing ready yet: collect results meanwhile
                chunk, nbytes = nxt
                if not chunk:
                    continue
                self.pulled += len(chunk)
                shard = Shard(next(self._ids), chunk, nbytes)
            self._open[shard.id] = (dict(shard.items), shard.nbytes)
            runner.submit(shard)

    def _blocked(self) -> bool:
        """Ordered streams stop dispatching while too much waits behind a missing result."""
        return (self.ordered and self.ahead is not None
                and self.pulled - self._next >= self.ahead)

    def _in_order(self, out: list[ProcessingResult[Any]]) -> list[ProcessingResult[Any]]:
        buf = self._buffer
        for r in out:
            buf[r.index] = r
        ready = []
        while self._next in buf:
            ready.append(buf.pop(self._next))
            self._next += 1
        return ready

    # -- events --

    def _handle(self, events: list[Event]) -> list[ProcessingResult[Any]]:
        out: list[ProcessingResult[Any]] = []
        for ev in events:
            entry = self._open.get(ev.shard)
            if entry is None:
                continue
            pending, nbytes = entry
            if type(ev) is Results:
                for r in ev.results:
                    if pending.pop(r.index, _MISSING) is not _MISSING:
                        out.append(r)
                if not ev.done:
                    continue
                self._close(ev.shard, nbytes)
                if pending:  # finished without a word about some items: run them again
                    log.debug("shard %d finished without %d of its items; running them again",
                              ev.shard, len(pending))
                    self._again(list(pending.items()))
            else:
                assert isinstance(ev, Stopped)
                self._close(ev.shard, nbytes)
                self._stopped(ev, pending, out)
        # Every result of every runner passes here exactly once: the one place failures are
        # logged.
        for r in out:
            if not r.success:
                item_failed(log, r)
        return out

    def _close(self, shard: int, nbytes: int) -> None:
        del self._open[shard]
        if nbytes and self._release is not None:
            self._release(nbytes)

    def _again(self, items: Chunk) -> None:
        self._requeue.append(Shard(next(self._ids), items))

    def _stopped(self, ev: Stopped, pending: dict[int, Any],
                 out: list[ProcessingResult[Any]]) -> None:
        if ev.status == UNRUNNABLE:
            log.info("shard %d cannot run: %s", ev.shard, ev.message)
            out.extend(lost_result(i, it, Status.FAILED, ev.message) for i, it in pending.items())
            return
        if ev.status == LOST:
            log.info("shard %d was dropped (%s); resubmitting its %d items", ev.shard,
                     ev.message, len(pending))
            for index, item in pending.items():
                self._retried[index] = self._retried.get(index, 0) + 1
                if self._retried[index] > MAX_LOST:
                    out.append(executor_failure(index, item, RuntimeError(ev.message)))
                else:
                    self._again([(index, item)])
            return
        running = ev.running
        if running is None and ev.status == Status.CRASHED and pending:
            if len(pending) > 1:
                # Which item took the worker down is unknown: run them one by one.
                log.info("shard %d lost its worker (%s); running its %d items one by one",
                         ev.shard, ev.message, len(pending))
                for pair in pending.items():
                    self._again([pair])
                return
            running = next(iter(pending))
            tries = self._retried.get(running, 0)
            if tries < self._crash_retries:
                log.info("shard %d lost its worker (%s); retrying (attempt %d of %d)", ev.shard,
                         ev.message, tries + 2, self._crash_retries + 1)
                self._retried[running] = tries + 1
                self._again(list(pending.items()))
                return
        if running is not None and running in pending:
            item = pending.pop(running)
            out.append(lost_result(running, item, ev.status, ev.message, ev.worker_id))
        if pending:
            log.debug("shard %d stopped (%s); requeueing its %d other items", ev.shard,
                      ev.status, len(pending))
            self._again(list(pending.items()))

    # -- interrupt --

    def stop(self) -> list[ProcessingResult[Any]]:
        """Stop the runner; every result that finished and was not handed out yet."""
        out = self._handle(self.runner.stop())
        if self.ordered:
            out.extend(self._buffer.pop(i) for i in sorted(self._buffer))
        return out

    def unfinished(self) -> list[tuple[int, Any]]:
        """Items taken from the input that have no result."""
        left = [pair for pending, _ in self._open.values() for pair in pending.items()]
        left.extend(pair for shard in self._requeue for pair in shard.items)
        return left
