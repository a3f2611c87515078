"""The data types every capability shares, with the seed API's names and fields.

``FileInfo``, ``ProcessingResult``, ``BatchResult`` and ``ProcessingMode`` are exactly the seed's,
extended with fields a batch user needs (error type, traceback, attempts, worker id, memory).
"""

from __future__ import annotations

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
    "results_frame",
    "is_dataframe",
]

T = TypeVar("T")


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


# The seed's FileInfo (path, size_bytes, modified_time, extension, relative_path; from_path;
# equality, pickling) as a native class: a scan of a million files makes a million small
# objects without a ``pathlib.Path`` each (``.path`` builds one on first use).
from ._core import FileInfo  # noqa: E402


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
    #: the service the function calls said "too many requests" (``RateLimited``): the driver
    #: pauses the run and runs the item again; a user never sees this status
    RATE_LIMITED = "rate_limited"


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
    #: taken from the run's checkpoint: the outcome of an earlier run, not run again
    from_checkpoint: bool = False


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
        return results_frame(self.results, self.result_keys)


_RESULT_COLUMNS = [
    "file_path", "file_name", "file_size", "success", "duration_seconds", "error", "status",
    "error_type", "attempts", "worker_id",
]


def results_frame(results: list[ProcessingResult[Any]], result_keys: list[str]) -> pd.DataFrame:
    """One row per result: the seed's columns (file_path, file_name, file_size, success,
    duration_seconds, error) plus status, error_type, attempts, worker_id, and the keys of dict
    results flattened as ``result_<key>`` (keys starting with ``_`` left out); every key of
    ``result_keys`` is a column even when no result has it."""
    import pandas as pd

    rows = []
    for r in results:
        path = r.file_info.path
        is_file = str(path) not in ("", ".")
        row: dict[str, Any] = {
            "file_path": str(path) if is_file else None,
            "file_name": path.name if is_file else None,
            "file_size": r.file_info.size_bytes,
            "success": r.success,
            "duration_seconds": r.duration_seconds,
            "error": r.error,
            "status": r.status,
            "error_type": r.error_type,
            "attempts": r.attempts,
            "worker_id": r.worker_id,
        }
        if not is_file:
            row["item"] = repr(r.item) if r.item is not None else None
        if isinstance(r.result, dict):  # failed items may carry one too (extraction)
            for k, v in r.result.items():
                if not str(k).startswith("_"):
                    row[f"result_{k}"] = v
        elif r.success and r.result is not None and not is_dataframe(r.result):
            row["result"] = r.result
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else _RESULT_COLUMNS)
    for key in result_keys:  # same columns whether items succeed or not
        if f"result_{key}" not in df.columns:
            df[f"result_{key}"] = pd.Series(dtype="object")
    return df


def is_dataframe(obj: Any) -> bool:
    """A pandas DataFrame (or one of its kind), told apart without importing pandas."""
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")
