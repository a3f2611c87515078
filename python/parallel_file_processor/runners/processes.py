"""Shards on supervised worker processes: per-item timeouts, crash isolation, recycling.

Workers start with ``forkserver`` on Linux (``spawn`` elsewhere, or ``start_method=``), so no
process forks while native threads run. ``start_method="fork"`` is honoured while this process
has one thread; once it has more (the native pool, a progress bar's monitor, the user's own), a
forked child could deadlock on a lock one of them held, so workers start with ``forkserver``.
Workers never import the main script: the function travels by value (cloudpickle) when a
worker could not import it, so a script without a main guard, ``python -c``, standard input
and notebooks all work. A worker whose parent died exits at once, quietly.

Each worker reports the item it is running in shared memory (index, start time) and sends its
results at least every 0.1 s, so a stuck item's worker is killed and replaced, a worker that
dies costs only the item it was running, and Ctrl-C keeps everything that finished. Log records
made in a worker (by the user's function or the package) travel over the same pipe and are
handled by the parent's loggers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import spawn
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_connections
from typing import Any

from .. import log as pfp_log
from ..errors import WorkerStartError
from ..task import ChunkTask, dumps_function, run_item
from ..types import ProcessingResult, Status
from .base import Event, Results, Runner, Shard, Stopped

__all__ = ["ProcessRunner"]

_MIB = 1024 * 1024
_FLUSH_S = 0.1

log = logging.getLogger(__name__)


# --- starting workers without the main script ------------------------------------------------

_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """While a worker starts, leave the main module out of what it is told to prepare.

    ``multiprocessing`` normally re-imports the parent's main script in every spawned or
    forkserver child (so functions of ``__main__`` can be found by reference), which runs an
    unguarded script again and fails for ``-c`` and standard input. This package never needs
    it: functions of ``__main__`` travel by value.
    """
    with _START_LOCK:
        original = spawn.get_preparation_data

        def prepare(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        spawn.get_preparation_data = prepare
        try:
            yield
        finally:
            spawn.get_preparation_data = original


def _start(proc: Any) -> None:
    with _without_main():
        proc.start()


# --- the worker process ----------------------------------------------------------------------


def _exit_with_parent() -> None:
    """A daemon thread that ends this worker as soon as its parent is gone (kill -9 included)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait_connections([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="pfp-parent-watch", daemon=True).start()


#: the user's function may log from threads of its own: one message on the pipe at a time
_SEND_LOCK = threading.Lock()


def _send(conn: Connection, msg: tuple[Any, ...]) -> None:
    """Send results; a result that cannot be pickled becomes that item's error."""
    try:
        with _SEND_LOCK:
            conn.send(msg)
    except (pickle.PicklingError, TypeError, AttributeError):
        kind, chunk_id, results, rss = msg
        fixed = [_picklable(r) for r in results]
        with _SEND_LOCK:
            conn.send((kind, chunk_id, fixed, rss))


def _record_sender(conn: Connection) -> Callable[[logging.LogRecord], None]:
    def send(record: logging.LogRecord) -> None:
        with _SEND_LOCK:
            conn.send(("log", None, record, 0.0))

    return send


def _picklable(r: ProcessingResult[Any]) -> ProcessingResult[Any]:
    try:
        pickle.dumps(r)
        return r
    except Exception as exc:
        what = type(r.result).__name__ if r.success else type(r.item).__name__
        r.success, r.status, r.error_type = False, Status.FAILED, "PicklingError"
        r.error = (f"the result ({what}) cannot be sent back from a worker process: {exc}; "
                   "return plain data, or use thread mode")
        r.result = None
        try:
            pickle.dumps(r)
        except Exception:
            r.item, r.traceback = repr(r.item), None
        return r


def _worker_main(conn: Connection, state: Any, task: ChunkTask, setup: bytes | None,
                 log_levels: dict[str, int]) -> None:
    """A worker: runs chunks sent over ``conn``, reports the running item in ``state`` (shared
    memory: index, start time; the parent sets the third slot to stop the run), flushes
    results at least every 0.1 s and sends log records to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    pfp_log.forward_records(_record_sender(conn), log_levels)
    wid = f"pid:{os.getpid()}"
    try:
        if setup is not None:
            initializer, initargs = pickle.loads(setup)
            initializer(*initargs)
    except BaseException as exc:
        with contextlib.suppress(OSError), _SEND_LOCK:
            conn.send(("init_failed", None, f"{type(exc).__name__}: {exc}", 0.0))
        return
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                return
            chunk_id, chunk = msg
            results: list[ProcessingResult[Any]] = []
            last_flush = time.monotonic()
            for index, item in chunk:
                state[0], state[1] = float(index), time.monotonic()
                results.append(run_item(task, index, item, wid))
                if state[2]:  # the run is stopping (Ctrl-C): hand over what finished, end
                    _send(conn, ("partial", chunk_id, results, 0.0))
                    return
                if time.monotonic() - last_flush > _FLUSH_S:
                    _send(conn, ("partial", chunk_id, results, 0.0))
                    results, last_flush = [], time.monotonic()
            state[0] = -1.0
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            _send(conn, ("done", chunk_id, results, rss))
    except (EOFError, OSError):
        return  # the parent went away


# --- the pool --------------------------------------------------------------------------------


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    state: Any
    wid: str
    shard: Shard | None = None
    received: set[int] = field(default_factory=set)
    items_done: int = 0


class ProcessRunner(Runner):
    in_process = False

    def __init__(
        self,
        task: ChunkTask,
        workers: int,
        *,
        start_method: str | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        timeout: float | None = None,
        max_tasks_per_worker: int | None = None,
        max_memory_mb: float | None = None,
    ) -> None:
        super().__init__()
        method = start_method or ("forkserver" if sys.platform.startswith("linux") else "spawn")
        self.ctx: Any = None
        self._use(method)
        self.task = task
        self.workers = workers
        self.capacity = workers * 2
        self.timeout = timeout
        self.max_tasks = max_tasks_per_worker
        self.max_memory_mb = max_memory_mb
        self._setup = dumps_function((initializer, initargs)) if initializer else None
        self._log_levels = pfp_log.levels()
        self._queue: deque[Shard] = deque()
        self._startup_failures = 0
        self.peak_mb: dict[str, float] = {}
        self.stats = {"worker_restarts": 0}
        self._pool: list[_Worker] = [self._spawn() for _ in range(workers)]

    def chunk_size(self, total: int | None) -> int:
        if total is None:
            return 64
        return max(1, min(512, total // (self.workers * 8) or 1))

    def _use(self, method: str) -> None:
        self.ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            # Workers fork from a server that already imported this module.
            self.ctx.set_forkserver_preload([__name__])

    def _spawn(self) -> _Worker:
        if self.ctx.get_start_method() == "fork":
            threads = threads_running()
            if threads > 1:
                log.warning("start_method='fork': this process runs %d threads and a forked "
                            "worker could deadlock on a lock one of them holds; starting "
                            "workers with forkserver instead", threads)
                self._use("forkserver")
        parent, child = self.ctx.Pipe()
        state = self.ctx.RawArray("d", 3)
        state[0] = -1.0
        proc = self.ctx.Process(target=_worker_main,
                                args=(child, state, self.task, self._setup, self._log_levels),
                                daemon=True, name="pfp-worker")
        _start(proc)
        child.close()
        return _Worker(proc, parent, state, f"pid:{proc.pid}")

    @property
    def inflight(self) -> int:
        return len(self._queue) + sum(1 for w in self._pool if w.shard is not None)

    def submit(self, shard: Shard) -> None:
        self._queue.append(shard)
        self._assign()

    def _assign(self) -> None:
        for w in self._pool:
            if not self._queue:
                return
            if w.shard is None:
                shard = self._queue.popleft()
                w.shard, w.received = shard, set()
                try:
                    w.conn.send((shard.id, shard.items))
                except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
                    pass  # the worker is gone: the next poll sees it and requeues the shard

    def _replace(self, w: _Worker, *, kill: bool) -> None:
        if kill and w.proc.is_alive():
            w.proc.kill()
        w.proc.join(timeout=5)
        w.conn.close()
        self._pool[self._pool.index(w)] = self._spawn()
        self.stats["worker_restarts"] += 1

    def _rss_mb(self, w: _Worker) -> float:
        try:
            with open(f"/proc/{w.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / _MIB
        except (OSError, ValueError, IndexError):
            return 0.0

    def _drain(self, w: _Worker, events: list[Event]) -> bool:
        """Read every message a worker sent; False when its pipe is closed."""
        while True:
            try:
                if not w.conn.poll():
                    return True
                kind, shard_id, results, rss = w.conn.recv()
            except (EOFError, OSError):
                return False
            if kind == "log":
                pfp_log.replay(results)
                continue
            if kind == "init_failed":
                raise WorkerStartError(f"the initializer failed in a worker process: {results}")
            if w.shard is None or shard_id != w.shard.id:
                continue
            w.received.update(r.index for r in results)
            w.items_done += len(results)
            done = kind == "done"
            events.append(Results(shard_id, results, done))
            if done:
                self.peak_mb[w.wid] = max(self.peak_mb.get(w.wid, 0.0), rss)
                w.shard = None
                if self._should_recycle(w):
                    log.debug("recycling worker %s after %d items (%.0f MiB)", w.wid,
                              w.items_done, self._rss_mb(w))
                    with contextlib.suppress(OSError):
                        w.conn.send(None)
                    self._replace(w, kill=False)
                return True

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        busy = [w for w in self._pool if w.shard is not None]
        if not busy:
            self._assign()
            return events
        handles = {w.conn: w for w in busy} | {w.proc.sentinel: w for w in busy}
        ready = wait_connections(list(handles), timeout=timeout)
        seen: set[int] = set()
        for h in ready:
            w = handles[h]
            if id(w) in seen:
                continue
            seen.add(id(w))
            # Every message first: results sent just before an exit count.
            alive = self._drain(w, events)
            if w.shard is not None and (not alive or not w.proc.is_alive()):
                self._lost(w, events)
        if self.timeout is not None:
            self._timeouts(events)
        self._assign()
        return events

    def _lost(self, w: _Worker, events: list[Event]) -> None:
        """A worker died mid-shard: the item it was running is the culprit."""
        assert w.shard is not None
        w.proc.join(timeout=1)
        how = _exit_description(w.proc.exitcode)
        running = int(w.state[0])
        shard, w.shard = w.shard, None
        if w.items_done == 0 and running < 0 and not w.received:
            # Died before running anything: a start-up failure, not an item's fault.
            self._startup_failures += 1
            if self._startup_failures > 2 * len(self._pool) + 2:
                raise WorkerStartError(f"worker processes die at start-up ({how})")
            self._queue.appendleft(shard)
            self._replace(w, kill=True)
            return
        self._startup_failures = 0
        if running < 0:  # died between items: blame the first one not reported
            running = next((i for i, _ in shard.items if i not in w.received), -1)
        events.append(Stopped(shard.id, running if running >= 0 else None, Status.CRASHED,
                              f"worker process died ({how})", w.wid))
        self._replace(w, kill=True)

    def _timeouts(self, events: list[Event]) -> None:
        assert self.timeout is not None
        now = time.monotonic()
        for w in list(self._pool):
            running = int(w.state[0])
            if w.shard is None or running < 0 or now - w.state[1] <= self.timeout:
                continue
            self._drain(w, events)
            if w.shard is None:
                continue
            events.append(Stopped(w.shard.id, running, Status.TIMEOUT,
                                  f"item did not finish within {self.timeout:g} s", w.wid))
            w.shard = None
            self._replace(w, kill=True)

    def _should_recycle(self, w: _Worker) -> bool:
        if self.max_tasks is not None and w.items_done >= self.max_tasks:
            return True
        return self.max_memory_mb is not None and self._rss_mb(w) > self.max_memory_mb

    def stop(self) -> list[Event]:
        """Ctrl-C: every worker hands over what it finished (and the item it is running, if
        that ends within ~0.2 s), then all are killed."""
        events: list[Event] = []
        busy = [w for w in self._pool if w.shard is not None]
        for w in busy:
            w.state[2] = 1.0
        deadline = time.monotonic() + 0.2
        while busy and time.monotonic() < deadline:
            handles = {w.conn: w for w in busy} | {w.proc.sentinel: w for w in busy}
            for h in wait_connections(list(handles), timeout=deadline - time.monotonic()):
                w = handles[h]
                with contextlib.suppress(WorkerStartError):
                    alive = self._drain(w, events)
                if not alive or not w.proc.is_alive() or w.shard is None:
                    if w in busy:
                        busy.remove(w)
        for w in busy:
            with contextlib.suppress(WorkerStartError):
                self._drain(w, events)
        self.close(kill=True)
        return events

    def close(self, *, kill: bool = False) -> None:
        pool, self._pool = self._pool, []
        for w in pool:
            try:
                if kill or w.shard is not None:
                    w.proc.kill()
                else:
                    w.conn.send(None)
            except (OSError, ValueError):
                pass
        for w in pool:
            w.proc.join(timeout=0.5 if kill else 5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=1)
            w.conn.close()


def threads_running() -> int:
    """Threads of this process, native ones included (the OS's count where there is one)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return threading.active_count()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"

