"""The processing engine: the user's function over every item, in parallel, fault-tolerant.

``ParallelProcessor`` and ``FileProcessor`` keep the seed's constructors and methods. Underneath:

* items are dispatched in **chunks** (one future per chunk, results returned per chunk; in
  process mode the function is pickled once per worker, items once per chunk), with a sliding
  window of chunks in flight, so ten million items never sit in memory as futures;
* every item's failure is **recorded** (type, message, traceback, attempts, duration, worker)
  and the run goes on; ``retries`` with exponential backoff; per-item ``timeout``;
* process workers are **supervised**: a stuck item's worker is killed and replaced, a worker
  that dies (segfault, ``os._exit``, out of memory) costs only the item it was running;
* **read-ahead** (``prefetch=True``): the Rust core reads upcoming files' bytes in parallel
  with the GIL released, so ``FileInfo.read_bytes()`` returns at once;
* progress callbacks run on the calling thread; Ctrl-C cancels what is pending and raises
  :class:`BatchInterrupted` carrying every completed result.

Threads cannot be killed: in thread and async modes a timed-out item is marked ``timeout`` and
the run goes on while the stuck call finishes in the background (its result is dropped).
"""

from __future__ import annotations

import inspect
import itertools
import multiprocessing
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import traceback as tb
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import WorkerCrashed
from .progress import ProgressArg, Reporter
from .types import BatchResult, FileInfo, ProcessingMode, ProcessingResult, Status

__all__ = [
    "ParallelProcessor",
    "FileProcessor",
    "BatchInterrupted",
    "ChunkTask",
    "run_chunk",
]

T = TypeVar("T")
R = TypeVar("R")

_EMPTY_INFO_ARGS = (Path(""), 0, 0.0, "")
_MIB = 1024 * 1024


class WorkerStartError(RuntimeError):
    """Worker processes die before running anything (e.g. an unimportable main script)."""


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: pending items were cancelled; ``.result`` holds what completed."""

    def __init__(self, result: BatchResult[Any]) -> None:
        super().__init__(f"interrupted after {result.successful + result.failed} items")
        self.result = result


# --- running one item, one chunk (in any worker) --------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to run items: picklable (the function travels as bytes,
    pickled with cloudpickle when plain pickle cannot, e.g. lambdas and notebook functions)."""

    fn_bytes: bytes
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    backoff: float = 0.1
    max_backoff: float = 10.0

    @classmethod
    def make(cls, fn: Callable[..., Any], **kw: Any) -> ChunkTask:
        return cls(dumps_function(fn), **kw)

    def function(self) -> Callable[..., Any]:
        cached = _FN_CACHE.get(self.fn_bytes)
        if cached is None:
            cached = pickle.loads(self.fn_bytes)
            _FN_CACHE.clear()  # one task at a time per worker: keep only the current function
            _FN_CACHE[self.fn_bytes] = cached
        return cached


_FN_CACHE: dict[bytes, Callable[..., Any]] = {}


def dumps_function(fn: Callable[..., Any]) -> bytes:
    """Pickle ``fn`` by reference when a worker can import it, else by value with cloudpickle
    (lambdas, closures, functions of ``__main__`` in a notebook or ``python -c``)."""
    qualname = getattr(fn, "__qualname__", "")
    by_value = getattr(fn, "__module__", None) == "__main__" or "<" in qualname
    if not by_value:
        try:
            return pickle.dumps(fn)
        except Exception:
            by_value = True
    try:
        import cloudpickle
    except ImportError:
        try:
            return pickle.dumps(fn)  # a script's __main__ function: workers re-import the script
        except Exception as exc:
            raise TypeError(
                f"{fn!r} cannot be pickled for worker processes; define it at module level or "
                "install cloudpickle (pip install parallel-file-processor[process])"
            ) from exc
    return cloudpickle.dumps(fn)


def file_info_for(item: Any) -> FileInfo:
    """The seed's rule: FileInfo items as they are, Paths stat'ed, anything else a placeholder."""
    if isinstance(item, FileInfo):
        return item
    if isinstance(item, Path):
        try:
            return FileInfo.from_path(item)
        except OSError:
            return FileInfo(item, 0, 0.0, item.suffix.lower())
    return FileInfo(*_EMPTY_INFO_ARGS)


class _Slot:
    """Where a worker says which item it is running and since when (for timeouts)."""

    __slots__ = ("index", "started", "abandoned")

    def __init__(self) -> None:
        self.index = -1
        self.started = 0.0
        self.abandoned = False


def run_item(task: ChunkTask, index: int, item: Any, worker_id: str) -> ProcessingResult[Any]:
    """Run the function on one item with retries; never raises for the item's own errors."""
    return run_chunk(task, [(index, item)], worker_id=worker_id)[0]


def _failed_item(
    task: ChunkTask,
    fn: Callable[[Any], Any],
    index: int,
    item: Any,
    worker_id: str,
    start: float,
    exc: Exception,
) -> ProcessingResult[Any]:
    """After a first failure: retry with backoff while allowed, then record the outcome."""
    attempts = 1
    while attempts <= task.retries and isinstance(exc, task.retry_on):
        time.sleep(min(task.max_backoff, task.backoff * 2 ** (attempts - 1)))
        attempts += 1
        try:
            value = fn(item)
        except Exception as again:
            exc = again
            continue
        return ProcessingResult(
            file_info_for(item), True, value, None, time.perf_counter() - start, None, None,
            attempts, worker_id, Status.OK, index, item,
        )
    return ProcessingResult(
        file_info_for(item), False, None, str(exc) or type(exc).__name__,
        time.perf_counter() - start, type(exc).__name__,
        "".join(tb.format_exception(type(exc), exc, exc.__traceback__)), attempts, worker_id,
        Status.FAILED, index, item,
    )


def run_chunk(
    task: ChunkTask,
    chunk: list[tuple[int, Any]],
    slot: _Slot | None = None,
    worker_id: str | None = None,
) -> list[ProcessingResult[Any]]:
    """Run a chunk of ``(index, item)`` pairs in order; per-item errors become results.

    This is the unit every backend ships to its workers (threads, processes, a user's executor,
    Dask). ``slot`` lets the dispatcher see the running item (for timeouts) and abandon the rest.
    """
    wid = worker_id or f"{os.getpid()}:{threading.current_thread().name}"
    fn = task.function()
    out: list[ProcessingResult[Any]] = []
    append = out.append
    clock = time.perf_counter
    ok = Status.OK
    # The per-item path is kept flat (no helper call, positional fields): with cheap items the
    # engine's own overhead is what a user would measure.
    for index, item in chunk:
        if slot is not None:
            if slot.abandoned:
                break
            slot.index, slot.started = index, time.monotonic()
        start = clock()
        try:
            value = fn(item)
        except Exception as exc:
            append(_failed_item(task, fn, index, item, wid, start, exc))
            continue
        info = item if type(item) is FileInfo else file_info_for(item)
        append(ProcessingResult(info, True, value, None, clock() - start, None, None, 1, wid,
                                ok, index, item))
    if slot is not None:
        slot.index = -1
    return out


def _timeout_result(
    index: int, item: Any, timeout: float, worker_id: str | None
) -> ProcessingResult[Any]:
    return ProcessingResult(
        file_info=file_info_for(item),
        success=False,
        error=f"item did not finish within {timeout:g} s",
        duration_seconds=timeout,
        error_type="TimeoutError",
        attempts=1,
        worker_id=worker_id,
        status=Status.TIMEOUT,
        index=index,
        item=item,
    )


def _crashed_result(index: int, item: Any, worker_id: str, how: str) -> ProcessingResult[Any]:
    return ProcessingResult(
        file_info=file_info_for(item),
        success=False,
        error=f"worker process died ({how})",
        error_type=WorkerCrashed.__name__,
        attempts=1,
        worker_id=worker_id,
        status=Status.CRASHED,
        index=index,
        item=item,
    )


def _cancelled_result(index: int, item: Any) -> ProcessingResult[Any]:
    return ProcessingResult(
        file_info=file_info_for(item),
        success=False,
        error="cancelled",
        attempts=0,
        error_type="Cancelled",
        status=Status.CANCELLED,
        index=index,
        item=item,
    )


# --- thread workers ------------------------------------------------------------------------


class _DaemonThreadPool(Executor):
    """A minimal pool of daemon threads.

    ``ThreadPoolExecutor`` joins its threads at interpreter exit, so one call that never returns
    (the case per-item timeouts exist for) would hang the program; daemon threads do not.
    """

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = []
        for i in range(workers):
            t = threading.Thread(
                target=self._run, args=(initializer, initargs), name=f"pfp-worker-{i}", daemon=True
            )
            t.start()
            self._threads.append(t)

    def _run(self, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
        if initializer is not None:
            initializer(*initargs)
        while True:
            job = self._q.get()
            if job is None:
                return
            fut, fn, args = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self._q.put((fut, (lambda *a: fn(*a, **kwargs)) if kwargs else fn, args))
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._q.put(None)
        if wait:
            for t in self._threads:
                t.join()


# --- process workers -----------------------------------------------------------------------


def _process_worker(
    conn: Connection,
    state: Any,
    task: ChunkTask,
    initializer: Callable[..., Any] | None,
    initargs: tuple[Any, ...],
) -> None:
    """A worker process: runs chunks sent over ``conn``, reports the running item in ``state``
    (shared memory: index, start time) and flushes results at least every 0.1 s."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    wid = f"pid:{os.getpid()}"
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        chunk_id, chunk = msg
        results: list[ProcessingResult[Any]] = []
        last_flush = time.monotonic()
        for index, item in chunk:
            state[0], state[1] = float(index), time.monotonic()
            results.append(run_item(task, index, item, wid))
            if time.monotonic() - last_flush > 0.1:
                conn.send(("partial", chunk_id, results, 0.0))
                results, last_flush = [], time.monotonic()
        state[0] = -1.0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        conn.send(("done", chunk_id, results, rss))


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    state: Any
    wid: str
    chunk_id: int | None = None
    chunk: list[tuple[int, Any]] = field(default_factory=list)
    received: set[int] = field(default_factory=set)
    items_done: int = 0


class _ProcessPool:
    """Supervised worker processes with per-item timeouts, crash isolation and recycling."""

    def __init__(
        self,
        workers: int,
        task: ChunkTask,
        *,
        start_method: str | None,
        initializer: Callable[..., Any] | None,
        initargs: tuple[Any, ...],
        timeout: float | None,
        max_tasks_per_worker: int | None,
        max_memory_mb: float | None,
    ) -> None:
        method = start_method or ("forkserver" if sys.platform.startswith("linux") else "spawn")
        self.ctx: Any = multiprocessing.get_context(method)
        if method == "forkserver":
            # Workers fork from a server that already imported the engine: no per-worker import.
            self.ctx.set_forkserver_preload(["parallel_file_processor.engine"])
        self.task = task
        self.initializer, self.initargs = initializer, initargs
        self.timeout = timeout
        self.max_tasks = max_tasks_per_worker
        self.max_memory_mb = max_memory_mb
        self.startup_failures = 0
        self.workers: list[_Worker] = [self._spawn() for _ in range(workers)]
        self.peak_mb: dict[str, float] = {}

    def _spawn(self) -> _Worker:
        parent, child = self.ctx.Pipe()
        state = self.ctx.RawArray("d", 2)
        state[0] = -1.0
        proc = self.ctx.Process(
            target=_process_worker,
            args=(child, state, self.task, self.initializer, self.initargs),
            daemon=True,
        )
        proc.start()
        child.close()
        return _Worker(proc, parent, state, f"pid:{proc.pid}")

    def idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.chunk_id is None]

    def assign(self, w: _Worker, chunk_id: int, chunk: list[tuple[int, Any]]) -> None:
        w.chunk_id, w.chunk, w.received = chunk_id, chunk, set()
        try:
            w.conn.send((chunk_id, chunk))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            pass  # the worker is gone: the next poll sees its sentinel and requeues the chunk

    def _replace(self, w: _Worker, *, kill: bool) -> None:
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join(timeout=5)
        w.conn.close()
        self.workers[self.workers.index(w)] = self._spawn()

    def _rss_mb(self, w: _Worker) -> float:
        try:
            with open(f"/proc/{w.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MIB
        except (OSError, ValueError, IndexError):
            return 0.0

    def poll(
        self, wait_s: float
    ) -> tuple[list[ProcessingResult[Any]], list[list[tuple[int, Any]]], list[int]]:
        """Wait up to ``wait_s`` for workers. Returns (results, chunks to requeue, finished
        chunk ids)."""
        busy = [w for w in self.workers if w.chunk_id is not None]
        results: list[ProcessingResult[Any]] = []
        requeue: list[list[tuple[int, Any]]] = []
        finished: list[int] = []
        if not busy:
            return results, requeue, finished
        handles = {w.conn: w for w in busy} | {w.proc.sentinel: w for w in busy}
        ready = wait_connections(list(handles), timeout=wait_s)
        seen: set[int] = set()
        for h in ready:
            w = handles[h]
            if id(w) in seen:
                continue
            seen.add(id(w))
            # Drain every message before looking at liveness: results sent just before an exit
            # must count.
            alive = True
            while True:
                try:
                    if not w.conn.poll():
                        break
                    kind, chunk_id, chunk_results, rss = w.conn.recv()
                except (EOFError, OSError):
                    alive = False
                    break
                results.extend(chunk_results)
                w.received.update(r.index for r in chunk_results)
                w.items_done += len(chunk_results)
                if kind == "done":
                    finished.append(chunk_id)
                    self.peak_mb[w.wid] = max(self.peak_mb.get(w.wid, 0.0), rss)
                    w.chunk_id, w.chunk = None, []
                    if self._should_recycle(w):
                        w.conn.send(None)
                        self._replace(w, kill=False)
                    break
            if w.chunk_id is not None and (not alive or not w.proc.is_alive()):
                # Died mid-chunk: the item it was running is the culprit; the rest is innocent.
                w.proc.join(timeout=1)
                how = _exit_description(w.proc.exitcode)
                running = int(w.state[0])
                if w.items_done == 0 and running < 0 and not w.received:
                    # Died before running anything: a start-up failure, not an item's fault.
                    self.startup_failures += 1
                    if self.startup_failures > 2 * len(self.workers) + 2:
                        raise WorkerStartError(
                            f"worker processes die at start-up ({how}); with start_method "
                            "'spawn' or 'forkserver' the main script must be importable "
                            "(guard it with `if __name__ == '__main__':`), or use "
                            "start_method='fork'"
                        )
                    requeue.append(list(w.chunk))
                    finished.append(w.chunk_id)  # type: ignore[arg-type]
                    w.chunk_id = None
                    self._replace(w, kill=True)
                    continue
                self.startup_failures = 0
                rest = []
                for index, item in w.chunk:
                    if index in w.received:
                        continue
                    if index == running:
                        results.append(_crashed_result(index, item, w.wid, how))
                    else:
                        rest.append((index, item))
                if running < 0 and rest:  # died between items: blame the first pending one
                    index, item = rest.pop(0)
                    results.append(_crashed_result(index, item, w.wid, how))
                if rest:
                    requeue.append(rest)
                finished.append(w.chunk_id)  # type: ignore[arg-type]
                w.chunk_id = None
                self._replace(w, kill=True)
        if self.timeout is not None:
            now = time.monotonic()
            for w in list(self.workers):
                running = int(w.state[0])
                if w.chunk_id is None or running < 0 or now - w.state[1] <= self.timeout:
                    continue
                rest = []
                for index, item in w.chunk:
                    if index in w.received:
                        continue
                    if index == running:
                        results.append(_timeout_result(index, item, self.timeout, w.wid))
                    else:
                        rest.append((index, item))
                if rest:
                    requeue.append(rest)
                finished.append(w.chunk_id)
                w.chunk_id = None
                self._replace(w, kill=True)
        return results, requeue, finished

    def _should_recycle(self, w: _Worker) -> bool:
        if self.max_tasks is not None and w.items_done >= self.max_tasks:
            return True
        return self.max_memory_mb is not None and self._rss_mb(w) > self.max_memory_mb

    def shutdown(self, *, kill: bool = False) -> None:
        for w in self.workers:
            try:
                if kill:
                    w.proc.kill()
                else:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in self.workers:
            w.proc.join(timeout=0.5 if kill else 5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=1)
            w.conn.close()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --- read-ahead ----------------------------------------------------------------------------


class _Prefetcher:
    """Reads the bytes of upcoming FileInfo items in Rust (GIL released) on a helper thread,
    ahead of the workers, within a byte budget."""

    _END = object()

    def __init__(
        self, chunks: Iterator[list[tuple[int, Any]]], budget: int, max_file_bytes: int
    ) -> None:
        from . import _core

        self._core = _core
        self._chunks = chunks
        self._budget = budget
        self._max_file = max_file_bytes
        self._in_use = 0
        self._cond = threading.Condition()
        # Bounded by count too: items that are not files carry no bytes to budget.
        self._q: queue.Queue[Any] = queue.Queue(maxsize=32)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pfp-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in self._chunks:
                infos = [
                    it
                    for _, it in chunk
                    if isinstance(it, FileInfo)
                    and it._data is None
                    and it.size_bytes <= self._max_file
                ]
                want = sum(i.size_bytes for i in infos)
                with self._cond:
                    while (
                        not self._stop and self._in_use > 0 and self._in_use + want > self._budget
                    ):
                        self._cond.wait(0.1)
                    if self._stop:
                        return
                    self._in_use += want
                if infos:
                    datas = self._core.read_files(
                        [os.fsdecode(i.path) for i in infos], max_file_bytes=self._max_file
                    )
                    for info, data in zip(infos, datas):
                        info._data = data
                if not self._put((chunk, want)):
                    return
        except BaseException as exc:  # surfaces in the consumer
            self._put(exc)
        finally:
            self._put(self._END)

    def _put(self, value: Any) -> bool:
        while not self._stop:
            try:
                self._q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[list[tuple[int, Any]], int]]:
        while True:
            got = self._q.get()
            if got is self._END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got

    def release(self, nbytes: int) -> None:
        with self._cond:
            self._in_use -= nbytes
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()


# --- the processor -------------------------------------------------------------------------


def _is_dask_client(obj: Any) -> bool:
    return hasattr(obj, "submit") and hasattr(obj, "scheduler_info")


class ParallelProcessor(Generic[T, R]):
    """Process items in parallel with configurable execution modes (the seed's class).

    >>> def heavy(item):
    ...     return {"item": item, "square": item * item}
    >>> pp = ParallelProcessor(heavy, ProcessingMode.THREAD_POOL, max_workers=2)
    >>> result = pp.process(range(5))
    >>> result.successful, sorted(r["square"] for r in result.successful_results())
    (5, [0, 1, 4, 9, 16])

    Args:
        processor: the function run on each item (a coroutine function for ``ASYNC``).
        mode: ``SEQUENTIAL``, ``THREAD_POOL``, ``PROCESS_POOL`` or ``ASYNC`` (or their names).
        max_workers: workers (threads: 2x cores, processes: cores, async: concurrent tasks).
        batch_size: items per chunk (default: sized automatically).
        timeout: seconds per item (process mode kills and replaces a stuck worker).
        executor: run chunks on an existing ``concurrent.futures.Executor`` or a Dask client.
        retries, retry_on, backoff: retry failed items with exponential backoff.
        on_error: ``"collect"`` (default), ``"raise"`` (stop at the first failure) or
            ``"skip"`` (count failures but keep no result for them).
        progress: ``True`` for a tqdm bar, or ``callback(completed, total)``.
        prefetch: read the bytes of upcoming ``FileInfo`` items ahead in Rust.
        prefetch_bytes: memory budget for read-ahead (default 256 MiB).
        initializer, initargs: called once per worker (thread, process or Dask worker).
        start_method: ``"forkserver"`` (default on Linux) or ``"spawn"`` for process mode.
        max_tasks_per_worker: replace a process worker after this many items.
        max_memory_mb: replace a process worker whose memory grows past this.
        adaptive: in thread mode, run items inline on the calling thread when they are too
            cheap for threads to pay off (default True; never when a timeout is set).
    """

    def __init__(
        self,
        processor: Callable[[T], R],
        mode: ProcessingMode | str = ProcessingMode.THREAD_POOL,
        max_workers: int | None = None,
        batch_size: int | None = None,
        timeout: float | None = None,
        *,
        executor: Any = None,
        retries: int = 0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        on_error: str = "collect",
        progress: ProgressArg = None,
        prefetch: bool = False,
        prefetch_bytes: int = 256 * _MIB,
        prefetch_max_file_bytes: int = 64 * _MIB,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        start_method: str | None = None,
        max_tasks_per_worker: int | None = None,
        max_memory_mb: float | None = None,
        adaptive: bool = True,
    ) -> None:
        self.processor = processor
        self.mode = ProcessingMode(mode)
        if on_error not in ("collect", "raise", "skip"):
            raise ValueError("on_error must be 'collect', 'raise' or 'skip'")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        if max_workers is not None and max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        if start_method not in (None, "spawn", "forkserver", "fork"):
            raise ValueError("start_method must be 'spawn', 'forkserver' or 'fork'")
        self.max_workers = max_workers or self._default_workers()
        self.batch_size = batch_size
        self.timeout = timeout
        self.executor = executor
        self.retries = retries
        self.retry_on = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_error = on_error
        self.progress = progress
        self.prefetch = prefetch
        self.prefetch_bytes = prefetch_bytes
        self.prefetch_max_file_bytes = prefetch_max_file_bytes
        self.initializer = initializer
        self.initargs = initargs
        self.start_method = start_method
        self.max_tasks_per_worker = max_tasks_per_worker
        self.max_memory_mb = max_memory_mb
        self.adaptive = adaptive
        self._progress_callback: Callable[[int, int], Any] | None = None

    def _default_workers(self) -> int:
        cpu = os.cpu_count() or 4
        return cpu * 2 if self.mode == ProcessingMode.THREAD_POOL else cpu

    def on_progress(self, callback: Callable[[int, int], Any]) -> ParallelProcessor[T, R]:
        """Set ``callback(completed, total)``, called on the calling thread. Returns self."""
        self._progress_callback = callback
        return self

    # -- building blocks shared with other backends --

    def _chunk_task(self) -> ChunkTask:
        return ChunkTask.make(
            self.processor,
            retries=self.retries,
            retry_on=self.retry_on,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )

    def _chunk_size(self, total: int | None) -> int:
        if self.batch_size:
            return self.batch_size
        if total is None:
            return 64
        per_worker_chunks = 8 if self.mode == ProcessingMode.PROCESS_POOL else 4
        return max(1, min(512, total // (self.max_workers * per_worker_chunks) or 1))

    def _chunks(
        self, items: Iterable[Any], size: int | None = None
    ) -> Iterator[list[tuple[int, Any]]]:
        """Lists of ``(index, item)``, lazily: the input is never copied whole."""
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        size = size or self._chunk_size(total)
        it = enumerate(items)
        while True:
            chunk = list(itertools.islice(it, size))
            if not chunk:
                return
            yield chunk

    # -- public API --

    def process(self, items: Iterable[T]) -> BatchResult[R]:
        """Process all items and return a BatchResult (results in input order)."""
        start = time.perf_counter()
        items = items if hasattr(items, "__len__") else list(items)
        batch: BatchResult[R] = BatchResult(total_files=len(items))  # type: ignore[arg-type]
        collected = batch.results
        skip = self.on_error == "skip"
        batches = self._run_batches(items, batch)
        try:
            for part in batches:
                for r in part:
                    if r.success:
                        batch.successful += 1
                    else:
                        batch.failed += 1
                        if r.error:
                            batch.errors.append(r.error)
                        if skip:
                            continue
                    collected.append(r)
        except KeyboardInterrupt:
            # First Ctrl-C: stop the workers, keep what completed, mark the rest cancelled.
            # (A second Ctrl-C during this clean-up ends everything at once.)
            batches.close()
            batch.interrupted = True
            finished = {r.index for r in batch.results}
            for index, item in enumerate(items):  # type: ignore[arg-type]
                if index not in finished:
                    batch.add(_cancelled_result(index, item))
            raise BatchInterrupted(batch) from None
        finally:
            batches.close()
            batch.results.sort(key=_by_index)
            batch.total_duration_seconds = time.perf_counter() - start
            batch.total_bytes = sum(r.file_info.size_bytes for r in batch.results)
            usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            batch.peak_memory_mb = max(usage, children)
        return batch

    def iter(self, items: Iterable[T], *, ordered: bool = False) -> Iterator[ProcessingResult[R]]:
        """Yield ProcessingResults as they finish (``ordered=True``: in input order), keeping
        only a few chunks in flight, so any number of items streams in bounded memory."""
        return self._run(items, ordered=ordered)

    imap = iter

    # -- dispatch --

    def _run(
        self, items: Iterable[Any], *, ordered: bool
    ) -> Generator[ProcessingResult[Any], None, None]:
        pending: dict[int, ProcessingResult[Any]] = {}
        next_index = 0
        batches = self._run_batches(items, None)
        try:
            for part in batches:
                if not ordered:
                    yield from part
                    continue
                for result in part:
                    pending[result.index] = result
                while next_index in pending:
                    yield pending.pop(next_index)
                    next_index += 1
            for index in sorted(pending):
                yield pending.pop(index)
        finally:
            batches.close()

    def _run_batches(
        self, items: Iterable[Any], batch: BatchResult[Any] | None
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        """Lists of results as chunks finish; progress is reported here, on this thread."""
        total = len(items) if hasattr(items, "__len__") else 0  # type: ignore[arg-type]
        callback = self._progress_callback
        reporter = Reporter(self.progress, desc="Processing", unit="item")
        report = callback is not None or reporter.active
        done = 0
        raise_first = self.on_error == "raise"
        parts = self._dispatch(items, batch)
        try:
            for part in parts:
                if not part:
                    continue
                if raise_first:
                    for r in part:
                        if not r.success:
                            raise _rebuild_exception(r)
                yield part
                if report:
                    done += len(part)
                    if callback is not None:
                        callback(done, total)
                    reporter.update(done, total)
        finally:
            parts.close()
            reporter.close()

    def _dispatch(
        self, items: Iterable[Any], batch: BatchResult[Any] | None
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        """Yield lists of results (a chunk's worth) while keeping the chosen backend busy."""
        if self.executor is not None and _is_dask_client(_unwrap_client(self.executor)):
            from . import distributed as _distributed

            yield from _distributed.process_chunks(self, items)
            return
        if self.mode == ProcessingMode.ASYNC:
            yield from self._dispatch_async(items, batch)
            return
        chunks = self._chunks(items)
        prefetcher = None
        if self.prefetch:
            prefetcher = _Prefetcher(chunks, self.prefetch_bytes, self.prefetch_max_file_bytes)
            sized: Iterator[tuple[list[tuple[int, Any]], int]] = iter(prefetcher)
        else:
            sized = ((c, 0) for c in chunks)
        try:
            if self.mode == ProcessingMode.SEQUENTIAL and self.executor is None:
                yield from self._dispatch_inline(sized, prefetcher)
            elif self.mode == ProcessingMode.PROCESS_POOL and self.executor is None:
                yield from self._dispatch_processes(sized, prefetcher, batch)
            else:
                yield from self._dispatch_executor(sized, prefetcher, batch)
        finally:
            if prefetcher is not None:
                prefetcher.close()

    def _dispatch_inline(
        self, sized: Iterator[tuple[list[tuple[int, Any]], int]], prefetcher: _Prefetcher | None
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        task = self._chunk_task()
        if self.initializer is not None:
            self.initializer(*self.initargs)
        wid = f"{os.getpid()}:main"
        for chunk, nbytes in sized:
            yield run_chunk(task, chunk, worker_id=wid)
            if prefetcher is not None:
                prefetcher.release(nbytes)

    def _dispatch_executor(
        self,
        sized: Iterator[tuple[list[tuple[int, Any]], int]],
        prefetcher: _Prefetcher | None,
        batch: BatchResult[Any] | None,
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        task = self._chunk_task()
        own = self.executor is None
        # Too-cheap items: threads only add GIL hand-offs. Measure the first chunk inline and
        # keep going inline when an item costs less than the hand-off it would need.
        leftover: list[tuple[list[tuple[int, Any]], int]] = []
        if own and self.adaptive and self.timeout is None and self.initializer is None:
            first = next(sized, None)
            if first is None:
                return
            chunk, nbytes = first
            wid = f"{os.getpid()}:main"
            probed = 0
            t0 = time.perf_counter()
            # A short probe (a few items, at most ~10 ms) on the calling thread.
            probe: list[ProcessingResult[Any]] = []
            while probed < len(chunk) and probed < 16 and time.perf_counter() - t0 < 0.01:
                index, item = chunk[probed]
                probe.append(run_item(task, index, item, wid))
                probed += 1
            per_item = (time.perf_counter() - t0) / max(1, probed)
            yield probe
            if per_item < 50e-6:
                yield run_chunk(task, chunk[probed:], worker_id=wid)
                if prefetcher is not None:
                    prefetcher.release(nbytes)
                for chunk, nbytes in sized:
                    yield run_chunk(task, chunk, worker_id=wid)
                    if prefetcher is not None:
                        prefetcher.release(nbytes)
                return
            if chunk[probed:]:
                leftover.append((chunk[probed:], nbytes))
            elif prefetcher is not None:
                prefetcher.release(nbytes)
        sized = itertools.chain(leftover, sized)
        executor = self.executor or _DaemonThreadPool(
            self.max_workers, self.initializer, self.initargs
        )
        window = self.max_workers * 2
        inflight: dict[Future[Any], tuple[list[tuple[int, Any]], int, _Slot | None]] = {}
        shared_slots = own  # a user's process executor cannot share a slot object
        exhausted = False
        try:
            while True:
                while not exhausted and len(inflight) < window:
                    nxt = next(sized, None)
                    if nxt is None:
                        exhausted = True
                        break
                    chunk, nbytes = nxt
                    slot = _Slot() if shared_slots else None
                    fut = (
                        executor.submit(run_chunk, task, chunk, slot)
                        if slot is not None
                        else executor.submit(run_chunk, task, chunk)
                    )
                    inflight[fut] = (chunk, nbytes, slot)
                if not inflight:
                    return
                done, _ = wait(list(inflight), timeout=0.05, return_when=FIRST_COMPLETED)
                for fut in done:
                    chunk, nbytes, slot = inflight.pop(fut)
                    if prefetcher is not None:
                        prefetcher.release(nbytes)
                    if slot is not None and slot.abandoned:
                        continue  # its items were already accounted for
                    try:
                        part = fut.result()
                    except BaseException as exc:  # the executor itself failed the chunk
                        part = [_executor_failure(index, item, exc) for index, item in chunk]
                    yield part
                if self.timeout is not None:
                    yield list(self._thread_timeouts(inflight, executor, task))
        except BaseException:
            for fut in inflight:
                fut.cancel()
            for _, _, slot in inflight.values():
                if slot is not None:
                    slot.abandoned = True
            raise
        finally:
            if own:
                executor.shutdown(wait=False)

    def _thread_timeouts(
        self, inflight: dict[Future[Any], Any], executor: Executor, task: ChunkTask
    ) -> Iterator[ProcessingResult[Any]]:
        now = time.monotonic()
        assert self.timeout is not None
        for fut, (chunk, nbytes, slot) in list(inflight.items()):
            if slot is None or slot.abandoned or slot.index < 0:
                continue
            if now - slot.started <= self.timeout:
                continue
            # The thread stays stuck in the call; give up on it and move its other items on.
            slot.abandoned = True
            running = slot.index
            positions = [i for i, (index, _) in enumerate(chunk) if index == running]
            if not positions:
                continue
            pos = positions[0]
            yield _timeout_result(running, chunk[pos][1], self.timeout, None)
            rest = chunk[pos + 1 :]
            # Items before the stuck one finished; their results are in the abandoned future,
            # so they run again on a healthy worker (at-least-once, documented).
            redo = chunk[:pos] + rest
            del inflight[fut]
            if redo:
                new_slot = _Slot()
                inflight[executor.submit(run_chunk, task, redo, new_slot)] = (
                    redo,
                    nbytes,
                    new_slot,
                )

    def _dispatch_processes(
        self,
        sized: Iterator[tuple[list[tuple[int, Any]], int]],
        prefetcher: _Prefetcher | None,
        batch: BatchResult[Any] | None,
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        pool = _ProcessPool(
            self.max_workers,
            self._chunk_task(),
            start_method=self.start_method,
            initializer=self.initializer,
            initargs=self.initargs,
            timeout=self.timeout,
            max_tasks_per_worker=self.max_tasks_per_worker,
            max_memory_mb=self.max_memory_mb,
        )
        requeued: deque[list[tuple[int, Any]]] = deque()
        bytes_of: dict[int, int] = {}
        ids = itertools.count()
        exhausted = False
        interrupted = False
        try:
            while True:
                for w in pool.idle():
                    if requeued:
                        chunk, nbytes = requeued.popleft(), 0
                    elif not exhausted:
                        nxt = next(sized, None)
                        if nxt is None:
                            exhausted = True
                            break
                        chunk, nbytes = nxt
                    else:
                        break
                    cid = next(ids)
                    bytes_of[cid] = nbytes
                    pool.assign(w, cid, chunk)
                results, requeue, finished = pool.poll(0.05)
                requeued.extend(requeue)
                for cid in finished:
                    if prefetcher is not None:
                        prefetcher.release(bytes_of.pop(cid, 0))
                if results:
                    yield results
                if exhausted and not requeued and len(pool.idle()) == len(pool.workers):
                    return
        except BaseException:
            interrupted = True
            raise
        finally:
            if batch is not None:
                batch.worker_peak_memory_mb.update(pool.peak_mb)
            pool.shutdown(kill=interrupted)

    def _dispatch_async(
        self, items: Iterable[Any], batch: BatchResult[Any] | None
    ) -> Generator[list[ProcessingResult[Any]], None, None]:
        """Bounded concurrency, no batch barriers: a new item starts as soon as one finishes."""
        import asyncio  # only this mode needs it; importing it costs every worker ~45 ms

        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        fn = self.processor
        limit = self.max_workers
        timeout = self.timeout
        retries, retry_on = self.retries, self.retry_on
        backoff, max_backoff = self.backoff, self.max_backoff
        stop = threading.Event()
        is_coro = inspect.iscoroutinefunction(fn)

        async def one(index: int, item: Any) -> ProcessingResult[Any]:
            start = time.perf_counter()
            attempts = 0
            while True:
                attempts += 1
                try:
                    call = fn(item) if is_coro else asyncio.to_thread(fn, item)
                    value = await (asyncio.wait_for(call, timeout) if timeout else call)  # type: ignore[arg-type,misc]
                    return ProcessingResult(
                        file_info_for(item),
                        True,
                        value,
                        duration_seconds=time.perf_counter() - start,
                        attempts=attempts,
                        worker_id="asyncio",
                        index=index,
                        item=item,
                    )
                except asyncio.TimeoutError:
                    return _timeout_result(index, item, timeout or 0.0, "asyncio")
                except Exception as exc:
                    if attempts <= retries and isinstance(exc, retry_on):
                        await asyncio.sleep(min(max_backoff, backoff * 2 ** (attempts - 1)))
                        continue
                    return ProcessingResult(
                        file_info_for(item),
                        False,
                        None,
                        str(exc) or type(exc).__name__,
                        time.perf_counter() - start,
                        type(exc).__name__,
                        tb.format_exc(),
                        attempts,
                        "asyncio",
                        Status.FAILED,
                        index,
                        item,
                    )

        async def main() -> None:
            it = enumerate(items)
            running: set[asyncio.Task[ProcessingResult[Any]]] = set()
            if self.initializer is not None:
                self.initializer(*self.initargs)
            for index, item in itertools.islice(it, limit):
                running.add(asyncio.ensure_future(one(index, item)))
            while running:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    out.put(t.result())
                    if stop.is_set():
                        continue
                    nxt = next(it, None)
                    if nxt is not None:
                        running.add(asyncio.ensure_future(one(*nxt)))
                if stop.is_set():
                    for t in running:
                        t.cancel()
                    return

        def runner() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:
                out.put(exc)
            finally:
                out.put(_ASYNC_END)

        # The event loop runs on its own thread so this generator can stream (and the calling
        # thread keeps handling progress and Ctrl-C).
        thread = threading.Thread(target=runner, name="pfp-asyncio", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    got = out.get(timeout=0.1)
                except queue.Empty:
                    continue
                if got is _ASYNC_END:
                    return
                if isinstance(got, BaseException):
                    raise got
                part = [got]
                # Hand over everything already finished in one go.
                while True:
                    try:
                        more = out.get_nowait()
                    except queue.Empty:
                        break
                    if more is _ASYNC_END or isinstance(more, BaseException):
                        out.put(more)
                        break
                    part.append(more)
                yield part
        finally:
            stop.set()


_ASYNC_END = object()


def _by_index(r: ProcessingResult[Any]) -> int:
    return r.index


def _rebuild_exception(r: ProcessingResult[Any]) -> BaseException:
    """The error of the first failed item, for ``on_error="raise"``."""
    import builtins

    cls = getattr(builtins, r.error_type or "", None)
    msg = f"{r.error}\n(item {r.index}: {r.item!r}; original traceback:\n{r.traceback})"
    if r.error_type == WorkerCrashed.__name__:
        return WorkerCrashed(msg)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(msg)
        except Exception:
            pass
    return RuntimeError(f"{r.error_type}: {msg}")


def _executor_failure(index: int, item: Any, exc: BaseException) -> ProcessingResult[Any]:
    crashed = type(exc).__name__ == "BrokenProcessPool"
    return ProcessingResult(
        file_info_for(item),
        False,
        None,
        str(exc) or type(exc).__name__,
        0.0,
        WorkerCrashed.__name__ if crashed else type(exc).__name__,
        None,
        1,
        None,
        Status.CRASHED if crashed else Status.FAILED,
        index,
        item,
    )


def _unwrap_client(executor: Any) -> Any:
    return getattr(executor, "_client", executor)


# --- high level ----------------------------------------------------------------------------


class FileProcessor:
    """Scan a directory and process every matching file in parallel (the seed's class).

    >>> fp = FileProcessor(FileScanner(extensions={".csv"}))  # doctest: +SKIP
    >>> result = fp.process_directory("data/raw", lambda f: len(f.read_bytes()))  # doctest: +SKIP
    """

    def __init__(
        self,
        scanner: Any = None,
        mode: ProcessingMode | str = ProcessingMode.THREAD_POOL,
        max_workers: int | None = None,
        *,
        prefetch: bool = False,
        **engine_options: Any,
    ) -> None:
        from .scan import FileScanner

        self.scanner = scanner or FileScanner()
        self.mode = ProcessingMode(mode)
        self.max_workers = max_workers
        self.prefetch = prefetch
        self.engine_options = engine_options

    def process_directory(
        self,
        directory: Path | str,
        processor: Callable[[FileInfo], Any],
        progress_callback: Callable[[int, int], Any] | None = None,
    ) -> BatchResult[Any]:
        """Process all matching files in ``directory``; unreadable directory entries found by
        the scan are recorded as failed items too, so nothing is silently skipped."""
        files = self.scanner.list_files(directory)
        if not files and not self.scanner.last_errors:
            return BatchResult()
        parallel: ParallelProcessor[FileInfo, Any] = ParallelProcessor(
            processor,
            mode=self.mode,
            max_workers=self.max_workers,
            prefetch=self.prefetch,
            **self.engine_options,
        )
        if progress_callback:
            parallel.on_progress(progress_callback)
        result = parallel.process(files)
        for e in self.scanner.last_errors:
            result.total_files += 1
            result.add(
                ProcessingResult(
                    FileInfo(e.path, 0, 0.0, e.path.suffix.lower()),
                    False,
                    None,
                    e.message,
                    0.0,
                    e.error_type,
                    None,
                    0,
                    None,
                    Status.FAILED,
                    -1,
                    e.path,
                )
            )
        return result

    def aggregate_csv(
        self, directory: Path | str, output_path: Path | str | None = None, **read_kwargs: Any
    ) -> Any:
        """Read and combine every CSV under ``directory`` (see :func:`aggregate.aggregate_csv`)."""
        from .aggregate import aggregate_csv

        return aggregate_csv(directory, output_path=output_path, **read_kwargs)

    def extract_all_zips(self, directory: Path | str, output_directory: Path | str) -> Any:
        """Extract every ZIP under ``directory`` (see :func:`extract.extract_all_zips`)."""
        from .extract import extract_all_zips

        return extract_all_zips(directory, output_directory, max_workers=self.max_workers)
