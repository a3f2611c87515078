"""Running the user's function on items: one item, one chunk, in whatever worker runs it.

A :class:`ChunkTask` holds the user's own function object. In-process runners (inline,
threads, asyncio, a thread executor) call that very object: nothing is pickled, so shared
state, locks, connections and loaded models just work. Only when a task crosses a process
boundary (process mode, a user's process executor, a Dask cluster) does it pickle itself, the
function by value with cloudpickle where a worker could not import it.
"""

from __future__ import annotations

import builtins
import logging
import os
import pickle
import threading
import time
import traceback as tb
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._core import untrack_results
from .errors import WorkerCrashed
from .log import describe_item
from .ratelimit import retry_after_of
from .types import FileInfo, ProcessingResult, Status

__all__ = [
    "ChunkTask",
    "Slot",
    "Chunk",
    "dumps_function",
    "file_info_for",
    "run_chunk",
    "run_item",
    "timeout_result",
    "crashed_result",
    "lost_result",
    "cancelled_result",
    "executor_failure",
    "rebuild_exception",
    "log_retry",
]

#: A chunk of work: ``(index, item)`` pairs, the index being the item's position in the input.
Chunk = list[tuple[int, Any]]

_EMPTY_INFO_ARGS = (Path(""), 0, 0.0, "")

log = logging.getLogger(__name__)


def dumps_function(obj: Any) -> bytes:
    """Pickle a function (or a tuple holding functions) for another process.

    Functions of ``__main__`` (a script, ``python -c``, standard input, a notebook), lambdas
    and closures travel by value with cloudpickle, so workers never import the main script;
    functions of importable modules travel by reference.
    """
    import cloudpickle

    return cloudpickle.dumps(obj)


class ChunkTask:
    """The user's function and its retry policy, as workers run it.

    In-process runners call :attr:`fn` directly. Pickling (only done when the task goes to
    another process) sends the function as bytes, made once per task; a worker unpickles those
    bytes once and reuses the function for every chunk.
    """

    __slots__ = ("fn", "retries", "retry_on", "backoff", "max_backoff", "drop_unread", "_blob")

    def __init__(
        self,
        fn: Callable[..., Any],
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        self.fn = fn
        self.retries = retries
        self.retry_on = retry_on
        self.backoff = backoff
        self.max_backoff = max_backoff
        #: read-ahead is on: bytes the function did not read are dropped once it returns
        self.drop_unread = False
        self._blob: bytes | None = None

    def blob(self) -> bytes:
        """The function and retry classes pickled for another process (made once)."""
        if self._blob is None:
            self._blob = dumps_function((self.fn, self.retry_on))
        return self._blob

    def __reduce__(self) -> tuple[Any, ...]:
        return (task_from_blob, (self.blob(), self.retries, self.backoff, self.max_backoff))


_UNPICKLED: dict[bytes, tuple[Callable[..., Any], tuple[type[BaseException], ...]]] = {}
_UNPICKLED_LOCK = threading.Lock()


def task_from_blob(blob: bytes, retries: int, backoff: float, max_backoff: float) -> ChunkTask:
    """Rebuild a :class:`ChunkTask` in a worker (the function is unpickled once per worker)."""
    with _UNPICKLED_LOCK:
        got = _UNPICKLED.get(blob)
        if got is None:
            got = pickle.loads(blob)
            _UNPICKLED.clear()  # keep only the current function
            _UNPICKLED[blob] = got
    fn, retry_on = got
    task = ChunkTask(fn, retries, retry_on, backoff, max_backoff)
    task._blob = blob
    return task


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


class Slot:
    """Where a worker shows what it is doing: the running item and since when (for
    timeouts), the results so far (kept when the run is interrupted), and whether the runner
    gave up on it (the worker then stops at the next item)."""

    __slots__ = ("index", "started", "abandoned", "stop", "results")

    def __init__(self) -> None:
        self.index = -1
        self.started = 0.0
        #: the runner gave up on this chunk (a timeout): drop whatever still finishes
        self.abandoned = False
        #: the run is ending (Ctrl-C): keep the item that is finishing, start no other
        self.stop = False
        self.results: list[ProcessingResult[Any]] = []


def _failed_item(
    task: ChunkTask, index: int, item: Any, worker_id: str, start: float, exc: Exception
) -> ProcessingResult[Any]:
    """After a first failure: retry with backoff while allowed, then record the outcome.

    An exception asking for a pause (``retry_after``, as :class:`RateLimited` and HTTP
    clients' 429 errors carry) is not a failure of the item: it goes back to the driver, which
    pauses the whole run and runs the item again, without using up its retries.
    """
    pause = retry_after_of(exc)
    if pause is not None:
        return ProcessingResult(
            file_info_for(item), False, pause, str(exc) or type(exc).__name__,
            time.perf_counter() - start, type(exc).__name__, None, 1, worker_id,
            Status.RATE_LIMITED, index, item,
        )
    fn = task.fn
    attempts = 1
    while attempts <= task.retries and isinstance(exc, task.retry_on):
        delay = min(task.max_backoff, task.backoff * 2 ** (attempts - 1))
        log_retry(task, index, item, exc, attempts, delay)
        time.sleep(delay)
        attempts += 1
        try:
            value = fn(item)
        except Exception as again:
            exc = again
            pause = retry_after_of(exc)
            if pause is not None:
                return ProcessingResult(
                    file_info_for(item), False, pause, str(exc) or type(exc).__name__,
                    time.perf_counter() - start, type(exc).__name__, None, attempts,
                    worker_id, Status.RATE_LIMITED, index, item,
                )
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


def log_retry(task: ChunkTask, index: int, item: Any, exc: BaseException, attempts: int,
              delay: float) -> None:
    """INFO: an item failed and runs again after ``delay`` seconds."""
    if log.isEnabledFor(logging.INFO):
        path = item.path_str if isinstance(item, FileInfo) else (
            os.fspath(item) if isinstance(item, Path) else "")
        log.info("%s: %s: %s; retrying in %.2g s (attempt %d of %d)",
                 describe_item(index, item, path), type(exc).__name__, exc, delay, attempts + 1,
                 task.retries + 1)


def run_chunk(
    task: ChunkTask,
    chunk: Chunk,
    slot: Slot | None = None,
    worker_id: str | None = None,
) -> list[ProcessingResult[Any]]:
    """Run a chunk of ``(index, item)`` pairs in order; per-item errors become results.

    With a ``slot`` the results go into ``slot.results`` as they finish (the runner reads them
    while the chunk runs) and the chunk stops early once the slot is abandoned.
    """
    wid = worker_id or f"{os.getpid()}:{threading.current_thread().name}"
    fn = task.fn
    out: list[ProcessingResult[Any]] = slot.results if slot is not None else []
    append = out.append
    clock = time.perf_counter
    ok = Status.OK
    # The per-item path is kept flat (no helper call, positional fields): with cheap items the
    # engine's own overhead is what a user would measure.
    drop = task.drop_unread
    if slot is None:
        for index, item in chunk:
            start = clock()
            try:
                value = fn(item)
            except Exception as exc:
                append(_failed_item(task, index, item, wid, start, exc))
                if drop and type(item) is FileInfo:
                    item.set_prefetched(None)
                continue
            info = item if type(item) is FileInfo else file_info_for(item)
            append(ProcessingResult(info, True, value, None, clock() - start, None, None, 1,
                                    wid, ok, index, item))
            if drop and info.prefetched:
                info.set_prefetched(None)  # unread bytes count against the read-ahead budget
        untrack_results(out, ProcessingResult)
        return out
    monotonic = time.monotonic
    for index, item in chunk:
        if slot.abandoned or slot.stop:
            break
        slot.index, slot.started = index, monotonic()
        start = clock()
        try:
            value = fn(item)
        except Exception as exc:
            result = _failed_item(task, index, item, wid, start, exc)
        else:
            info = item if type(item) is FileInfo else file_info_for(item)
            result = ProcessingResult(info, True, value, None, clock() - start, None, None, 1,
                                      wid, ok, index, item)
        if drop and type(item) is FileInfo and item.prefetched:
            item.set_prefetched(None)  # unread bytes count against the read-ahead budget
        if slot.abandoned:
            break  # the runner gave up on this chunk (a timeout): the result is not wanted
        append(result)
    slot.index = -1
    untrack_results(out, ProcessingResult)
    return out


def run_item(task: ChunkTask, index: int, item: Any, worker_id: str) -> ProcessingResult[Any]:
    """Run the function on one item with retries; never raises for the item's own errors."""
    return run_chunk(task, [(index, item)], worker_id=worker_id)[0]


def timeout_result(
    index: int, item: Any, timeout: float, worker_id: str | None
) -> ProcessingResult[Any]:
    return ProcessingResult(
        file_info_for(item), False, None, f"item did not finish within {timeout:g} s", timeout,
        "TimeoutError", None, 1, worker_id, Status.TIMEOUT, index, item,
    )


def crashed_result(index: int, item: Any, worker_id: str | None, how: str
                   ) -> ProcessingResult[Any]:
    return lost_result(index, item, Status.CRASHED, f"worker process died ({how})", worker_id)


def lost_result(index: int, item: Any, status: str, message: str,
                worker_id: str | None = None) -> ProcessingResult[Any]:
    """An item whose worker was lost (``crashed``), gave up on it (``timeout``) or could not
    run it at all (``failed``)."""
    error_type = {Status.TIMEOUT: "TimeoutError", Status.CRASHED: WorkerCrashed.__name__}.get(
        status, "RuntimeError")
    return ProcessingResult(
        file_info_for(item), False, None, message, 0.0, error_type, None, 1, worker_id,
        status, index, item,
    )


def cancelled_result(index: int, item: Any, why: str = "cancelled") -> ProcessingResult[Any]:
    return ProcessingResult(
        file_info_for(item), False, None, why, 0.0, "Cancelled", None, 0, None,
        Status.CANCELLED, index, item,
    )


def executor_failure(index: int, item: Any, exc: BaseException) -> ProcessingResult[Any]:
    """An item lost because the executor itself failed its chunk (not the item's own error)."""
    crashed = type(exc).__name__ in ("BrokenProcessPool", "KilledWorker")
    return ProcessingResult(
        file_info_for(item), False, None, str(exc) or type(exc).__name__, 0.0,
        WorkerCrashed.__name__ if crashed else type(exc).__name__, None, 1, None,
        Status.CRASHED if crashed else Status.FAILED, index, item,
    )


def rebuild_exception(r: ProcessingResult[Any]) -> BaseException:
    """The error of a failed item, for ``on_error="raise"``."""
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
