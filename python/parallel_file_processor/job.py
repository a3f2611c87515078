"""The driver: every job runs here, on whatever runner it is given.

One loop for every runner (inline, threads, processes, asyncio, executors, Dask). It keeps a
bounded window of shards in flight, turns a lost worker into a result for the item it was
running and requeues the rest, splits a shard that keeps killing workers, keeps ``ordered``
streams in bounded memory, and on Ctrl-C returns every result that finished.

Two ways in:

* :class:`ItemRun`: the user's function over a stream of items (the engine), results as they
  finish;
* :func:`execute`: a :class:`Plan` (shards of a native job, a function that runs one shard,
  and a merge of their results), as one value. This is how the capabilities run on a
  cluster: the same loop, the same retries of shards lost with their worker, one result per
  shard taken exactly once.

Every item is dispatched in :meth:`ItemRun._dispatch` and every finished item passes
:meth:`ItemRun._finished`, whatever the runner: the places for run-wide concerns (a rate
limit, a checkpoint of finished items).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .checkpoint import Resume
from .errors import WorkerCrashed
from .log import item_failed, reported_by_caller
from .progress import ProgressArg, Reporter
from .ratelimit import RateLimit
from .runners import LOST, UNRUNNABLE, Event, Results, Runner, Shard, Stopped, make_runner
from .task import Chunk, ChunkTask, executor_failure, lost_result
from .types import ProcessingResult, Status

__all__ = [
    "ItemRun",
    "Source",
    "IterSource",
    "BatchSource",
    "chunked",
    "POLL_S",
    "Plan",
    "execute",
    "run_one",
    "shard_runner",
    "where_visible",
    "balanced_shards",
    "scatter",
    "probes",
    "file_sizes",
    "SHARDS_PER_WORKER",
]

#: How long the driver waits for events before looking again (progress, Ctrl-C, timeouts).
POLL_S = 0.05
#: Times a shard dropped by the cluster (a restart) runs again before its items fail.
MAX_LOST = 3
#: Times a shard of a native job runs again after its worker died under it.
SHARD_RETRIES = 3
#: Shards per worker: enough to even out uneven shards, few enough to keep overhead low.
SHARDS_PER_WORKER = 3
#: Per-file cost, in bytes, used when balancing shards: opening a file costs about as much as
#: reading this many bytes, so many small files weigh more than their size.
FILE_COST_BYTES = 64 * 1024

_MISSING = object()

S = TypeVar("S")
R = TypeVar("R")
T = TypeVar("T")

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

    ``resume``: items a checkpoint holds come back as their stored outcomes without running,
    and every outcome is recorded as it arrives. ``limiter``: no shard is dispatched before the
    run-wide rate limit allows it (shards are then single items, at most ``max_inflight`` of
    them), and an item whose call asked for a pause (``Status.RATE_LIMITED``) pauses the run
    and runs again.
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
        resume: Resume | None = None,
        limiter: RateLimit | None = None,
        max_inflight: int | None = None,
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
        self._resume = resume
        self._limiter = limiter
        self._max_inflight = max_inflight
        #: outcomes taken from the checkpoint, handed out with the next results
        self._ready: list[ProcessingResult[Any]] = []

    # -- the loop --

    def __iter__(self) -> Iterator[list[ProcessingResult[Any]]]:
        runner = self.runner
        limiter = self._limiter
        while True:
            self._fill()
            out: list[ProcessingResult[Any]] = []
            if self._ready:
                out, self._ready = self._ready, []
            elif not runner.inflight and not self._requeue and self.exhausted:
                break
            elif runner.inflight:
                wait = POLL_S if limiter is None else min(POLL_S, max(limiter.delay(), 0.001))
                out = self._handle(runner.poll(wait))
            elif limiter is not None and limiter.delay() > 0:
                time.sleep(min(POLL_S, limiter.delay()))  # held back: the rate limit
            # (else nothing in flight: the source is still finding work, and waits for it)
            if out:
                if not self.ordered:
                    yield out
                else:
                    ready = self._in_order(out)
                    if ready:
                        yield ready
        if self._buffer:  # ordered: whatever is left (only after gaps that never fill)
            yield [self._buffer.pop(i) for i in sorted(self._buffer)]

    @property
    def waiting(self) -> bool:
        """Whether the run is held back by a pause a call asked for (``retry_after``)."""
        return self._limiter is not None and self._limiter.waiting

    def _fill(self) -> None:
        runner = self.runner
        cap = runner.capacity if self._max_inflight is None else min(runner.capacity,
                                                                      self._max_inflight)
        limiter = self._limiter
        while runner.inflight < cap:
            if limiter is not None and limiter.delay() > 0:
                return
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
                if self._resume is not None:
                    chunk, done = self._resume.split(chunk)
                    self._ready.extend(done)
                    if not chunk:
                        if nbytes and self._release is not None:
                            self._release(nbytes)
                        continue
                shard = Shard(next(self._ids), chunk, nbytes)
            if limiter is not None:
                limiter.take()
            self._dispatch(shard)

    def _dispatch(self, shard: Shard) -> None:
        """The one place work goes to the runner: new shards and shards run again alike."""
        self._open[shard.id] = (dict(shard.items), shard.nbytes)
        self.runner.submit(shard)

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
                    item = pending.pop(r.index, _MISSING)
                    if item is _MISSING:
                        continue
                    if r.status == Status.RATE_LIMITED:
                        self._pause(r, item)
                    else:
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
        self._finished(out)
        return out

    def _finished(self, out: list[ProcessingResult[Any]]) -> None:
        """Every result of every runner passes here exactly once (a shard's results are taken
        once, however often it ran): the one place outcomes are checkpointed, the rate limit
        learns of calls that went through, and failures are logged."""
        if not out:
            return
        if self._resume is not None:
            self._resume.record(out)
        if self._limiter is not None:
            self._limiter.succeeded(len(out))
        for r in out:
            if not r.success:
                item_failed(log, r)

    def _pause(self, r: ProcessingResult[Any], item: Any) -> None:
        """A call asked for a pause: the whole run waits, the item runs again (its retries
        untouched) and the rate is halved."""
        seconds = float(r.result) if isinstance(r.result, (int, float)) else 1.0
        if self._limiter is not None:
            self._limiter.pause(seconds)
        log.info("item %d was rate limited (%s: %s); pausing the run for %g s and running it "
                 "again", r.index, r.error_type, r.error, seconds)
        self._again([(r.index, item)])

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
        if ev.status == Status.CRASHED and running is not None and running in pending:
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


# --- plans: a native job in shards --------------------------------------------------------------


@dataclass
class Plan(Generic[S, R, T]):
    """A job cut into shards.

    ``run_shard(shard)`` runs one shard wherever the runner puts it: a module-level function
    (a worker process or a cluster imports it by name) with picklable shards and results.
    ``merge(results)`` makes the job's value from every shard's result, in shard order, on the
    caller. ``weights`` say how much of the progress each shard is (default: one each).
    """

    shards: list[S]
    run_shard: Callable[[S], R]
    merge: Callable[[list[R]], T]
    weights: list[int] | None = None
    desc: str = "Running"
    unit: str = "shard"
    by_bytes: bool = False


class _ShardItem:
    """A shard as the runner sees it: one item, named for the log."""

    __slots__ = ("fn", "shard", "name")

    def __init__(self, fn: Callable[[Any], Any], shard: Any, name: str) -> None:
        self.fn = fn
        self.shard = shard
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_ShardItem, (self.fn, self.shard, self.name))

    def __repr__(self) -> str:
        return self.name


def _run_shard(item: _ShardItem) -> tuple[bool, Any]:
    """Run one shard in whichever worker the runner chose: ``(True, result)``, or ``(False,
    (exception, traceback))`` so the caller raises the shard's own exception."""
    # Files a shard could not handle are reported once, by the merge on the caller.
    with reported_by_caller():
        try:
            return True, item.fn(item.shard)
        except Exception as exc:
            return False, (exc, traceback.format_exc())


def shard_runner(where: Any = None, *, workers: int | None = None) -> Runner:
    """A runner for plans: ``where`` is None or a mode name (this machine), an ``Executor``
    or a Dask ``Client``. Use it as a context manager; it runs any number of plans."""
    return make_runner(where, ChunkTask(_run_shard), workers or os.cpu_count() or 1,
                       adaptive=False)


def execute(plan: Plan[Any, Any, T], runner: Runner, *, progress: ProgressArg = None) -> T:
    """Run every shard of ``plan`` on ``runner`` (a :func:`shard_runner`) and merge them.

    A shard whose worker died under it runs again, up to :data:`SHARD_RETRIES` times, then
    :class:`WorkerCrashed` is raised; work a cluster restart dropped is resubmitted. An
    exception a shard raised is raised here, once the other shards are stopped; so is Ctrl-C.
    Each shard's result is taken once, however often it ran.
    """
    n = len(plan.shards)
    if not n:
        return plan.merge([])
    name = getattr(plan.run_shard, "__name__", "shard")
    items = [_ShardItem(plan.run_shard, s, f"{name} shard {i + 1} of {n}")
             for i, s in enumerate(plan.shards)]
    weights = plan.weights or [1] * n
    total = sum(weights)
    out: list[Any] = [None] * n
    run = ItemRun(IterSource(chunked(items, 1)), runner, crash_retries=SHARD_RETRIES)
    started = time.perf_counter()
    log.debug("%s: %d shards on %s (weights %d to %d)", name, n, type(runner).__name__,
              min(weights), max(weights))
    done = 0
    with Reporter(progress, desc=plan.desc, unit=plan.unit, by_bytes=plan.by_bytes) as rep:
        try:
            for part in run:
                for r in part:
                    out[r.index] = _shard_value(r, plan.desc)
                    done += weights[r.index]
                    rep.update(done, total)
        except BaseException:
            run.stop()
            raise
    log.debug("%s: %d shards done in %.3f s", name, n, time.perf_counter() - started)
    return plan.merge(out)


def _shard_value(r: ProcessingResult[Any], desc: str) -> Any:
    if not r.success:
        why = (f"its worker died each of the {SHARD_RETRIES + 1} times it ran"
               if r.status == Status.CRASHED else "it could not be run")
        raise WorkerCrashed(f"{desc}: {r.item!r}: {why} ({r.error})")
    ok, value = r.result  # type: ignore[misc]
    if ok:
        return value
    exc, where = value
    log.debug("%r raised %s:\n%s", r.item, type(exc).__name__, where)
    raise exc


def _call(spec: tuple[Callable[..., Any], tuple[Any, ...]]) -> Any:
    fn, args = spec
    return fn(*args)


def _only(parts: list[R]) -> R:
    return parts[0]


def run_one(runner: Runner, fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` on one of the runner's workers (``fn`` at module level)."""
    return execute(Plan([(fn, args)], _call, _only), runner)


def where_visible(runner: Runner, probe: Sequence[str], fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` (a listing, stat'ing files) here when the runner's workers share this
    machine or this machine sees every path of ``probe`` too: no round trip, no file list to
    move; else on one of the workers."""
    if runner.local or (probe and all(os.path.exists(p) for p in probe)):
        return fn(*args)
    return run_one(runner, fn, *args)


# --- planning ---------------------------------------------------------------------------------


def balanced_shards(sizes: Sequence[int], shards: int) -> list[list[int]]:
    """Split indices into ``shards`` groups of about equal weight: largest first onto the
    lightest group (greedy LPT). Each group keeps its indices in input order.

    >>> balanced_shards([10_000_000, 1, 1, 8_000_000], 2)
    [[0], [1, 2, 3]]
    """
    shards = max(1, min(shards, len(sizes)))
    heap = [(0, i) for i in range(shards)]
    groups: list[list[int]] = [[] for _ in range(shards)]
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        weight, g = heapq.heappop(heap)
        groups[g].append(index)
        heapq.heappush(heap, (weight + sizes[index] + FILE_COST_BYTES, g))
    return [sorted(g) for g in groups if g]


def scatter(groups: Sequence[Sequence[int]], parts: Sequence[Sequence[T]], n: int) -> list[T]:
    """The per-shard results of index groups (as :func:`balanced_shards` made them) back in
    input order."""
    out: list[Any] = [None] * n
    for g, part in zip(groups, parts):
        for i, x in zip(g, part):
            out[i] = x
    return out


def probes(paths: Sequence[str], limit: int = 64) -> list[str]:
    """A few parent directories standing for a long list of paths."""
    parents = list(dict.fromkeys(os.path.dirname(p) or "." for p in paths))
    if len(parents) > limit:
        step = len(parents) / limit
        parents = [parents[int(i * step)] for i in range(limit)]
    return parents


def file_sizes(paths: Sequence[str]) -> list[int]:
    """Each file's size (0 when it cannot be stat'ed: its job reports why)."""
    out = []
    for p in paths:
        try:
            out.append(os.stat(p).st_size)
        except OSError:
            out.append(0)
    return out
