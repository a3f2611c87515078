"""Read-ahead: the bytes of upcoming files, read in Rust (GIL released) on a helper thread,
ahead of the workers, within a byte budget."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from . import _core
from .task import Chunk
from .types import FileInfo

__all__ = ["Prefetcher"]

_END = object()


class Prefetcher:
    """Wraps a stream of chunks: yields ``(chunk, nbytes)`` once the chunk's files are read.

    ``release(nbytes)`` gives budget back when a chunk is done. FIFOs and devices are never
    read ahead (the native reader refuses what is not a regular file), nor files larger than
    ``max_file_bytes``.
    """

    def __init__(self, chunks: Iterator[Chunk], budget: int, max_file_bytes: int) -> None:
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
                    it for _, it in chunk
                    if isinstance(it, FileInfo) and not it.prefetched
                    and it.size_bytes <= self._max_file
                ]
                want = sum(i.size_bytes for i in infos)
                with self._cond:
                    while (not self._stop and self._in_use > 0
                           and self._in_use + want > self._budget):
                        self._cond.wait(0.1)
                    if self._stop:
                        return
                    self._in_use += want
                if infos:
                    datas = _core.read_files([os.fspath(i) for i in infos],
                                             max_file_bytes=self._max_file)
                    for info, data in zip(infos, datas):
                        info.set_prefetched(data)
                if not self._put((chunk, want)):
                    return
        except BaseException as exc:  # surfaces in the consumer
            self._put(exc)
        finally:
            self._put(_END)

    def _put(self, value: Any) -> bool:
        while not self._stop:
            try:
                self._q.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(self, wait: bool) -> tuple[Chunk, int] | None:
        """The next chunk read ahead; None when none is ready (``wait``: after up to 50 ms).

        Raises StopIteration at the end. Never waits long: the driver must keep collecting
        results, which is what frees the budget the next chunk needs.
        """
        try:
            got = self._q.get(timeout=0.05) if wait else self._q.get_nowait()
        except queue.Empty:
            return None
        if got is _END:
            self._q.put(_END)
            raise StopIteration
        if isinstance(got, BaseException):
            raise got
        return got  # type: ignore[no-any-return]

    def release(self, nbytes: int) -> None:
        with self._cond:
            self._in_use -= nbytes
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
