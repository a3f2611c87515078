"""Exceptions raised by parallel_file_processor.

Each subclasses the built-in a user would already catch (``ValueError``, ``OSError``...), so code
written against the seed API keeps working, and also :class:`PFPError` for a catch-all.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PFPError",
    "RootNotADirectoryError",
    "PatternError",
    "ArchiveError",
    "UnsafeArchiveError",
    "ZipBombError",
    "TargetExistsError",
    "CacheError",
    "ManifestError",
    "WorkerCrashed",
    "ConfigError",
    "SchemaError",
    "MissingExtraError",
    "WorkerStartError",
    "SchedulerUnreachableError",
    "PathsNotVisibleError",
    "BatchInterrupted",
    "FunctionLoadError",
    "CheckpointError",
    "RateLimited",
]


class PFPError(Exception):
    """Base class of every error this package raises on purpose."""


class RootNotADirectoryError(PFPError, NotADirectoryError, ValueError):
    """A scan root exists but is not a directory (catchable as ``ValueError``, like the seed)."""


class PatternError(PFPError, ValueError):
    """An include/exclude glob could not be compiled."""


class ArchiveError(PFPError, ValueError):
    """An archive is corrupt, truncated, encrypted or uses an unsupported method."""


class UnsafeArchiveError(ArchiveError):
    """An archive entry would write outside its target (traversal, links, clashing names)."""


class ZipBombError(ArchiveError):
    """An archive exceeds the size, ratio or entry-count limits, or has overlapping entries."""


class TargetExistsError(PFPError, FileExistsError):
    """The output already exists and neither overwrite nor skip was chosen."""


class CacheError(PFPError, OSError):
    """A hash cache file is corrupt or unusable; the message names the file."""


class ManifestError(PFPError, ValueError):
    """A manifest could not be read at all (a malformed line is reported, not raised)."""


class WorkerCrashed(PFPError, RuntimeError):
    """A worker process died (segfault, ``os._exit``, out of memory) while running an item."""


class ConfigError(PFPError, ValueError):
    """A job file has an unknown key or a value of the wrong type; the message gives its path."""


class SchemaError(PFPError, ValueError):
    """Files being merged disagree on columns or types under a strict policy."""


class MissingExtraError(PFPError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class FunctionLoadError(PFPError, ImportError):
    """A ``MODULE:FUNCTION`` could not be loaded; the message names it and the cause."""


class WorkerStartError(PFPError, RuntimeError):
    """Worker processes die before running anything (a broken initializer, a missing module)."""


class SchedulerUnreachableError(PFPError, ConnectionError):
    """The Dask scheduler did not answer in time; the message names its address."""


class PathsNotVisibleError(PFPError, FileNotFoundError):
    """Inputs a Dask worker cannot see (the cluster needs a shared file system)."""


class CheckpointError(PFPError, OSError):
    """A checkpoint cannot be read or written, or an item cannot be keyed for it."""


class RateLimited(PFPError, RuntimeError):
    """Raise it from your function when the service it calls says "too many requests": the
    whole run pauses for ``retry_after`` seconds (not just this item), the item runs again
    without using up ``retries``, and the run's rate is halved, then climbs back as calls
    succeed. Any exception with a numeric ``retry_after`` attribute (as HTTP clients give for
    status 429) is treated the same way."""

    def __init__(self, retry_after: float = 1.0, message: str = "") -> None:
        super().__init__(message or f"rate limited: retry after {retry_after:g} s")
        self.retry_after = float(retry_after)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: pending items were cancelled; ``.result`` holds what completed.

    The one exception not under :class:`PFPError`: it is a ``KeyboardInterrupt``, so code that
    catches ``Exception`` does not swallow Ctrl-C.
    """

    def __init__(self, result: Any) -> None:
        super().__init__(f"interrupted after {result.successful + result.failed} items")
        self.result = result
