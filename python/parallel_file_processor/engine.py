"""The seed's facade: ``ParallelProcessor`` and ``FileProcessor``.

The user's function runs over every item through one driver (:mod:`.job`) on the runner the
mode names (:mod:`.runners`): sequential, threads, processes, asyncio, an executor of the
user's or a Dask cluster. In-process modes call the user's own function object; process mode
and a cluster receive a pickled copy.

* items are dispatched in **chunks**, a sliding window of a few per worker, so ten million
  items never sit in memory as futures;
* every item's failure is **recorded** (type, message, traceback, attempts, duration, worker)
  and the run goes on; ``retries`` with exponential backoff; per-item ``timeout``;
* **read-ahead** (``prefetch=True``): the Rust core reads upcoming files' bytes with the GIL
  released, so ``FileInfo.read_bytes()`` returns at once;
* progress callbacks run on the calling thread; Ctrl-C stops the workers and raises
  :class:`BatchInterrupted` carrying every result that finished.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import resource
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from .checkpoint import Checkpoint, Resume, function_identity
from .errors import BatchInterrupted
from .job import BatchSource, ItemRun, IterSource, Source, chunked
from .prefetch import Prefetcher
from .progress import ProgressArg, Reporter
from .ratelimit import RateLimit, parse_rate
from .runners import Runner, make_runner
from .task import ChunkTask, cancelled_result, rebuild_exception
from .types import BatchResult, FileInfo, ProcessingMode, ProcessingResult, Status

__all__ = ["ParallelProcessor", "FileProcessor", "BatchInterrupted"]

T = TypeVar("T")
R = TypeVar("R")

_MIB = 1024 * 1024

log = logging.getLogger(__name__)


class _Run:
    """An :class:`ItemRun` with the runner and read-ahead it owns (closed together)."""

    def __init__(self, items: ItemRun, runner: Runner, prefetcher: Prefetcher | None,
                 resume: Resume | None = None) -> None:
        self.items = items
        self.runner = runner
        self.prefetcher = prefetcher
        self.resume = resume

    def close(self) -> None:
        if self.prefetcher is not None:
            self.prefetcher.close()
        self.runner.close()
        if self.resume is not None:
            self.resume.checkpoint.close()


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
            Sequential, thread and async modes call this very object (shared state, locks and
            connections work); process mode and a cluster run a pickled copy.
        mode: ``SEQUENTIAL``, ``THREAD_POOL``, ``PROCESS_POOL`` or ``ASYNC`` (or their names).
        max_workers: workers (threads: 2x cores, processes: cores, async: concurrent tasks).
        batch_size: items per chunk (default: sized automatically).
        timeout: seconds per item (a stuck process worker is killed and replaced; a stuck
            thread is given up and replaced by a fresh one).
        executor: run chunks on an existing ``concurrent.futures.Executor`` or a Dask client.
        retries, retry_on, backoff: retry failed items with exponential backoff.
        on_error: ``"collect"`` (default), ``"raise"`` (stop at the first failure) or
            ``"skip"`` (count failures but keep no result for them).
        progress: ``True`` for a tqdm bar, or ``callback(completed, total)``.
        prefetch: read the bytes of upcoming ``FileInfo`` items ahead in Rust.
        prefetch_bytes: memory budget for read-ahead (default 256 MiB).
        initializer, initargs: called once per worker (thread, process or Dask worker).
        start_method: ``"forkserver"`` (default on Linux), ``"spawn"`` or ``"fork"``.
        max_tasks_per_worker: replace a process worker after this many items.
        max_memory_mb: replace a process worker whose memory grows past this.
        adaptive: in thread mode, run items inline on the calling thread when they are too
            cheap for threads to pay off (default True; never when a timeout is set).
        checkpoint: a file where every finished item's outcome is kept as the run goes; a
            re-run with the same file does not run those items again (their outcomes come
            back as they were, ``from_checkpoint=True``), so a run that died resumes and a
            re-run does only new work. Files are keyed by path, size and modification time
            (a changed or new file runs), other items by a stable key of their value, or by
            ``key(item)``. Outcomes belong to the function (module, name, a hash of its code)
            and ``version``: another function starts over (with a warning) unless
            ``reuse="always"``. Failed items run again unless ``retry_failed=False``.
        rate_limit: calls per second for the whole run (a number, or a string such as
            ``"100/min"``), whatever the mode and the number of workers. A call that raises
            :class:`RateLimited` (or any exception with a numeric ``retry_after``) pauses the
            whole run for that long, runs again without using up ``retries``, and halves the
            rate, which then climbs back as calls succeed.
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
        checkpoint: str | os.PathLike[str] | None = None,
        key: Callable[[T], Any] | None = None,
        version: str | None = None,
        reuse: str = "same",
        retry_failed: bool = True,
        rate_limit: float | str | None = None,
    ) -> None:
        self.processor = processor
        if reuse not in ("same", "always"):
            raise ValueError("reuse must be 'same' or 'always'")
        self.checkpoint = checkpoint
        self.key = key
        self.version = version
        self.reuse = reuse
        self.retry_failed = retry_failed
        self.rate_limit = parse_rate(rate_limit) if rate_limit is not None else None
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

    # -- public API --

    def process(self, items: Iterable[T], *, prefetch: bool | None = None) -> BatchResult[R]:
        """Process all items and return a BatchResult (results in input order).

        ``items`` may be any iterable; a generator is consumed as the run goes (streaming).
        """
        start = time.perf_counter()
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        batch: BatchResult[R] = BatchResult(total_files=total or 0)
        skip = self.on_error == "skip"
        run = self._open(items, total, ordered=False, prefetch=prefetch)
        try:
            for part in self._reported(run, total, batch):
                for r in part:
                    if r.success:
                        batch.successful += 1
                    else:
                        batch.failed += 1
                        if r.error:
                            batch.errors.append(r.error)
                        if skip:
                            continue
                    batch.results.append(r)
        except KeyboardInterrupt:
            # First Ctrl-C: stop the workers, keep what finished, mark the rest cancelled.
            # (A second Ctrl-C during this clean-up ends everything at once.)
            for r in run.items.stop():
                batch.add(r)
            batch.interrupted = True
            left = run.items.unfinished()
            if total is not None:  # a sequence: what was never taken from it is cancelled too
                left.extend(itertools.islice(enumerate(items), run.items.pulled, None))
            for index, item in left:
                batch.add(cancelled_result(index, item))
            log.info("interrupted: %d items finished, %d cancelled",
                     batch.successful + batch.failed, batch.cancelled)
            raise BatchInterrupted(batch) from None
        finally:
            run.close()
            if total is None:
                batch.total_files = run.items.pulled
            batch.results.sort(key=_by_index)
            batch.total_duration_seconds = time.perf_counter() - start
            batch.total_bytes = sum(r.file_info.size_bytes for r in batch.results)
            usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            batch.peak_memory_mb = max(usage, children)
            batch.worker_peak_memory_mb.update(getattr(run.runner, "peak_mb", {}))
            batch.runner_stats.update(run.runner.stats)
            if run.resume is not None:
                batch.runner_stats["from_checkpoint"] = run.resume.reused
            if log.isEnabledFor(logging.DEBUG):
                seconds = batch.total_duration_seconds
                log.debug("%d items in %.3f s (%.0f items/s): %d ok, %d failed, %d cancelled; "
                          "peak memory %.0f MiB; %s", batch.total_files, seconds,
                          batch.total_files / seconds if seconds else 0.0, batch.successful,
                          batch.failed, batch.cancelled, batch.peak_memory_mb or 0.0,
                          batch.runner_stats or "no worker restarts")
        return batch

    def iter(self, items: Iterable[T], *, ordered: bool = False,
             prefetch: bool | None = None) -> Iterator[ProcessingResult[R]]:
        """Yield ProcessingResults as they finish (``ordered=True``: in input order), keeping
        only a few chunks in flight, so any number of items streams in bounded memory."""
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        run = self._open(items, total, ordered=ordered, prefetch=prefetch)
        try:
            for part in self._reported(run, total, None):
                yield from part
        finally:
            run.close()

    imap = iter

    # -- building a run --

    def _task(self) -> ChunkTask:
        return ChunkTask(self.processor, self.retries, self.retry_on, self.backoff,
                         self.max_backoff)

    def _open(self, items: Iterable[Any], total: int | None, *, ordered: bool,
              prefetch: bool | None) -> _Run:
        runner = make_runner(
            self.mode if self.executor is None else self.executor, self._task(),
            self.max_workers, timeout=self.timeout, initializer=self.initializer,
            initargs=self.initargs, adaptive=self.adaptive, start_method=self.start_method,
            max_tasks_per_worker=self.max_tasks_per_worker, max_memory_mb=self.max_memory_mb)
        resume = self._resume()
        try:
            size = self.batch_size or runner.chunk_size(total)
            limited = self.rate_limit is not None
            if limited:
                size = 1  # one call per token, started as it is dispatched
            limiter = RateLimit(self.rate_limit if self.rate_limit is not None else math.inf)
            prefetcher = None
            source: Source
            wants_prefetch = self.prefetch if prefetch is None else prefetch
            # Bytes read here would be left behind when items are pickled to another process.
            read_ahead = wants_prefetch and runner.in_process
            if hasattr(items, "take") and (getattr(items, "reads_ahead", False)
                                           or not read_ahead):
                # A stream (files as a walk finds them), reading ahead itself or not at all.
                source = BatchSource(items, size)
            elif read_ahead:
                prefetcher = Prefetcher(chunked(items, size), self.prefetch_bytes,
                                        self.prefetch_max_file_bytes)
                source = prefetcher
            else:
                source = IterSource(chunked(items, size))
            if read_ahead or getattr(items, "reads_ahead", False):
                runner_task = getattr(runner, "task", None)
                if runner_task is not None:
                    runner_task.drop_unread = True
            # Ordered streams: a few chunks per worker beyond the first missing result.
            ahead = max(runner.capacity, 2) * size * 2
            run = ItemRun(source, runner, ordered=ordered, ahead=ahead,
                          release=prefetcher.release if prefetcher is not None else None,
                          resume=resume, limiter=limiter,
                          max_inflight=runner.workers if limited else None)
            log.debug("%s: %d workers, chunks of %d items, %d chunks in flight, %s items%s",
                      type(runner).__name__, runner.workers, size, runner.capacity,
                      total if total is not None else "streamed",
                      ", read-ahead" if prefetcher is not None else "")
        except BaseException:
            runner.close()
            if resume is not None:
                resume.checkpoint.close()
            raise
        return _Run(run, runner, prefetcher, resume)

    def _resume(self) -> Resume | None:
        """The run's checkpoint, opened (a warning when it belonged to another function)."""
        if self.checkpoint is None:
            return None
        ck = Checkpoint(self.checkpoint, function_identity(self.processor, self.version),
                        reuse=self.reuse, retry_failed=self.retry_failed)
        if ck.note is not None:
            log.warning("%s", ck.note)
            warnings.warn(ck.note, stacklevel=4)
        log.info("checkpoint %s: %d outcomes kept from earlier runs", ck.path, ck.reused)
        return Resume(ck, self.key)

    def _reported(self, run: _Run, total: int | None, batch: BatchResult[Any] | None
                  ) -> Iterator[list[ProcessingResult[Any]]]:
        """Lists of results as they finish; progress is reported here, on this thread."""
        callback = self._progress_callback
        raise_first = self.on_error == "raise"
        done = 0
        with Reporter(self.progress, desc="Processing", unit="item", total=total) as reporter:
            report = callback is not None or reporter.active
            waiting = False
            for part in run.items:
                if reporter.active and run.items.waiting != waiting:
                    waiting = run.items.waiting
                    reporter.note("waiting: rate limited" if waiting else "")
                if raise_first:
                    for r in part:
                        if not r.success:
                            raise rebuild_exception(r)
                yield part
                if report:
                    known = total if total is not None else (
                        run.items.pulled if run.items.exhausted else 0)
                    if callback is not None:  # once per item, as the seed's callback was
                        shown = known or run.items.pulled
                        for n in range(done + 1, done + len(part) + 1):
                            callback(n, shown)
                    done += len(part)
                    reporter.update(done, known)


def _by_index(r: ProcessingResult[Any]) -> int:
    return r.index


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
        *,
        prefetch: bool | None = None,
    ) -> BatchResult[Any]:
        """Process all matching files in ``directory``; unreadable directory entries found by
        the scan are recorded as failed items too, so nothing is silently skipped.

        Files are processed as the walk finds them (the first within milliseconds, while the
        walk goes on), in the order they are found; a scanner with ``sort=True`` lists them
        all first and processes them in path order.
        """
        from .scan import FileScanner

        wants_prefetch = self.prefetch if prefetch is None else prefetch
        parallel: ParallelProcessor[FileInfo, Any] = ParallelProcessor(
            processor,
            mode=self.mode,
            max_workers=self.max_workers,
            prefetch=wants_prefetch,
            **self.engine_options,
        )
        if progress_callback:
            parallel.on_progress(progress_callback)
        files: Any
        streams = (isinstance(self.scanner, FileScanner) and not self.scanner.sort
                   and type(self.scanner).list_files is FileScanner.list_files)
        if not streams:
            files = self.scanner.list_files(directory)
            if not files and not self.scanner.last_errors:
                return BatchResult()
        elif (wants_prefetch and parallel.executor is None
              and self.mode != ProcessingMode.PROCESS_POOL):
            # The walker threads read each file as they find it (in-process modes only: a
            # process worker would not get the bytes).
            files = self.scanner.stream(directory, read_ahead=parallel.prefetch_max_file_bytes,
                                        read_budget=parallel.prefetch_bytes)
        else:
            files = self.scanner.stream(directory)
        try:
            result = parallel.process(files)
        finally:
            if hasattr(files, "close"):
                files.close()
        for e in self.scanner.last_errors:
            result.total_files += 1
            result.add(
                ProcessingResult(
                    FileInfo(e.path, 0, 0.0, e.path.suffix.lower()), False, None, e.message,
                    0.0, e.error_type, None, 0, None, Status.FAILED, -1, e.path,
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
