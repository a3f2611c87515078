"""The data types every capability shares, with the seed API's names and fields.

``FileInfo``, ``ProcessingResult``, ``BatchResult`` and ``ProcessingMode`` are exactly the seed's,
extended with fields a batch user needs (error type, traceback, attempts, worker id, memory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ProcessingMode",
    "FileInfo",
    "FileError",
    "ProcessingResult",
    "BatchResult",
    "Status",
]

T = TypeVar("T")

_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_READ_CHUNK = 1 << 20


class ProcessingMode(Enum):
    """How :class:`~parallel_file_processor.ParallelProcessor` runs the user's function."""

    SEQUENTIAL = "sequential"
    THREAD_POOL = "thread_pool"
    PROCESS_POOL = "process_pool"
    ASYNC = "async"

    @classmethod
    def _missing_(cls, value: object) -> ProcessingMode | None:
        # Accept "thread_pool", "THREAD_POOL", "threads", "process"... from YAML and the CLI.
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            aliases = {
                "sequential": cls.SEQUENTIAL,
                "serial": cls.SEQUENTIAL,
                "thread": cls.THREAD_POOL,
                "threads": cls.THREAD_POOL,
                "thread_pool": cls.THREAD_POOL,
                "process": cls.PROCESS_POOL,
                "processes": cls.PROCESS_POOL,
                "process_pool": cls.PROCESS_POOL,
                "async": cls.ASYNC,
                "asyncio": cls.ASYNC,
            }
            return aliases.get(key)
        return None


class FileInfo:
    """File metadata container (the seed's fields), able to read its file.

    ``path`` is a :class:`pathlib.Path`, built the first time it is read: the scanner hands over
    the path as a string, so a million FileInfo objects cost what their strings cost.
    ``read_bytes()`` / ``read_text()`` return bytes prefetched by the Rust core when the engine
    runs with ``prefetch=True``, so they do not block on I/O; otherwise they read the file.
    """

    __slots__ = ("_path", "size_bytes", "modified_time", "extension", "relative_path", "_data")
    __match_args__ = ("path", "size_bytes", "modified_time", "extension", "relative_path")

    def __init__(
        self,
        path: Path | str,
        size_bytes: int,
        modified_time: float,
        extension: str,
        relative_path: str | None = None,
    ) -> None:
        self._path = path
        self.size_bytes = size_bytes
        self.modified_time = modified_time
        self.extension = extension
        self.relative_path = relative_path
        self._data: bytes | None = None

    @property
    def path(self) -> Path:
        p = self._path
        if type(p) is str:
            p = self._path = Path(p)
        return p  # type: ignore[return-value]

    @path.setter
    def path(self, value: Path | str) -> None:
        self._path = value

    @property
    def path_str(self) -> str:
        """The path as a string, without building a :class:`~pathlib.Path`."""
        return os.fspath(self._path)

    @classmethod
    def from_path(cls, path: Path | str, base_path: Path | str | None = None) -> FileInfo:
        """Create a FileInfo from a path (``stat`` is called once)."""
        path = Path(path)
        st = path.stat()
        relative = str(path.relative_to(base_path)) if base_path else None
        return cls(path, st.st_size, st.st_mtime, path.suffix.lower(), relative)

    @property
    def name(self) -> str:
        return os.path.basename(os.fspath(self._path))

    def _fields(self) -> tuple[Any, ...]:
        return (os.fspath(self._path), self.size_bytes, self.modified_time, self.extension,
                self.relative_path)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(os.fspath(self._path))

    def __repr__(self) -> str:
        return (f"FileInfo(path={self.path!r}, size_bytes={self.size_bytes!r}, "
                f"modified_time={self.modified_time!r}, extension={self.extension!r}, "
                f"relative_path={self.relative_path!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefetched bytes stay behind: a copy sent to another process reads its own file.
        return (FileInfo, (self._path, self.size_bytes, self.modified_time, self.extension,
                           self.relative_path))

    def read_bytes(self) -> bytes:
        """The file's bytes: prefetched ones if the engine read ahead, else read now.

        Prefetched bytes are handed over once and then released, so memory stays bounded.
        """
        data = self._data
        if data is not None:
            self._data = None
            return data
        # Plain descriptor reads sized from the scan: no buffered-reader object per file.
        fd = os.open(self._path, _O_READ)
        try:
            first = os.read(fd, max(self.size_bytes, 0) + 1)
            if not first:
                return first
            rest = []
            while chunk := os.read(fd, _READ_CHUNK):
                rest.append(chunk)
            return first + b"".join(rest) if rest else first
        finally:
            os.close(fd)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The file's text, decoded from :meth:`read_bytes`."""
        return self.read_bytes().decode(encoding, errors)

    def set_prefetched(self, data: bytes | None) -> None:
        """Hand over bytes read ahead (used by the engine's read-ahead)."""
        self._data = data

    @property
    def prefetched(self) -> bool:
        """Whether bytes read ahead are waiting for :meth:`read_bytes`."""
        return self._data is not None

    def __fspath__(self) -> str:
        return os.fspath(self._path)


@dataclass(slots=True, frozen=True)
class FileError:
    """A file, directory or archive that could not be handled, and why; the run went on."""

    path: Path
    error_type: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error_type}: {self.message}"


class Status:
    """Values of :attr:`ProcessingResult.status`."""

    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


_EMPTY_PATH = Path("")


@dataclass(slots=True)
class ProcessingResult(Generic[T]):
    """Result of processing a single file or item.

    The first five fields are the seed's. ``item`` is the original input (for non-file items
    ``file_info`` is a placeholder with an empty path, as in the seed).
    """

    file_info: FileInfo
    success: bool
    result: T | None = None
    error: str | None = None
    duration_seconds: float = 0.0
    error_type: str | None = None
    traceback: str | None = None
    attempts: int = 1
    worker_id: str | None = None
    status: str = Status.OK
    index: int = -1
    item: Any = field(default=None, repr=False)


@dataclass
class BatchResult(Generic[T]):
    """Aggregated results from batch processing (the seed's fields, plus run diagnostics)."""

    total_files: int = 0
    successful: int = 0
    failed: int = 0
    results: list[ProcessingResult[T]] = field(default_factory=list)
    total_duration_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    cancelled: int = 0
    interrupted: bool = False
    peak_memory_mb: float | None = None
    worker_peak_memory_mb: dict[str, float] = field(default_factory=dict)
    total_bytes: int = 0
    #: what the workers went through: ``abandoned_threads`` (stuck in calls that timed out),
    #: ``worker_restarts`` (process workers replaced after a crash, timeout or recycling)
    runner_stats: dict[str, int] = field(default_factory=dict)
    #: keys every item's result dict has (extraction: ``source``, ``destination``,
    #: ``files_extracted``): results tables keep their columns even when no item succeeded
    result_keys: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Success rate as a percentage (100.0 for an empty batch, as in the seed)."""
        if self.total_files == 0:
            return 100.0
        return (self.successful / self.total_files) * 100

    def successful_results(self) -> list[T]:
        """The results of successful items (``None`` results left out, as in the seed)."""
        return [r.result for r in self.results if r.success and r.result is not None]

    def failed_results(self) -> list[ProcessingResult[T]]:
        """The ProcessingResults of items that failed, timed out, crashed or were cancelled."""
        return [r for r in self.results if not r.success]

    def add(self, result: ProcessingResult[T]) -> None:
        """Record one result, keeping the counters in step."""
        self.results.append(result)
        if result.success:
            self.successful += 1
        elif result.status == Status.CANCELLED:
            self.cancelled += 1
        else:
            self.failed += 1
            if result.error:
                self.errors.append(result.error)

    def errors_df(self) -> pd.DataFrame:
        """One row per failed item: path, item, status, error type, message, attempts, traceback."""
        import pandas as pd

        rows = [
            {
                "path": str(r.file_info.path) if r.file_info.path != _EMPTY_PATH else None,
                "item": None if r.file_info.path != _EMPTY_PATH else repr(r.item),
                "status": r.status,
                "error_type": r.error_type,
                "error": r.error,
                "attempts": r.attempts,
                "worker_id": r.worker_id,
                "duration_seconds": r.duration_seconds,
                "traceback": r.traceback,
            }
            for r in self.results
            if not r.success
        ]
        columns = [
            "path", "item", "status", "error_type", "error", "attempts", "worker_id",
            "duration_seconds", "traceback",
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per item; see :meth:`ResultAggregator.to_dataframe`."""
        from .aggregate import ResultAggregator

        return ResultAggregator(self).to_dataframe()
