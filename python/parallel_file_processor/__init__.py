"""parallel-file-processor: scan, hash, unzip and process many files in parallel.

A Rust core (directory scanning, hashing, ZIP extraction, read-ahead) under a typed Python API::

    from parallel_file_processor import FileScanner, FileProcessor, ProcessingMode

    files = FileScanner(extensions={".csv"}).list_files("data/")

Names are imported lazily, so ``import parallel_file_processor`` stays fast (pandas is loaded
only when a DataFrame is asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# ``scan`` and ``aggregate`` are both functions and submodules. Importing a submodule binds its
# name on the package, so once anything had imported ``.scan`` a lazy ``scan`` would resolve to
# the module; binding the functions now (a few ms) keeps ``from ... import scan`` a function.
from .aggregate import aggregate
from .errors import (
    ArchiveError,
    CacheError,
    ConfigError,
    ManifestError,
    MissingExtraError,
    PatternError,
    PFPError,
    RootNotADirectoryError,
    SchemaError,
    TargetExistsError,
    UnsafeArchiveError,
    WorkerCrashed,
    ZipBombError,
)
from .scan import scan
from .types import BatchResult, FileError, FileInfo, ProcessingMode, ProcessingResult, Status

__version__ = "0.1.0"

# public name -> submodule that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "FileScanner": "scan",
    "ScanResult": "scan",
    "scan": "scan",
    "scan_frame": "scan",
    "ProgressTracker": "progress",
    "ParallelProcessor": "engine",
    "FileProcessor": "engine",
    "BatchInterrupted": "engine",
    "ResultAggregator": "aggregate",
    "aggregate": "aggregate",
    "aggregate_csv": "aggregate",
    "HashResult": "hash",
    "hash_files": "hash",
    "hash_frame": "hash",
    "find_duplicates": "hash",
    "write_manifest": "hash",
    "verify_manifest": "hash",
    "VerifyResult": "hash",
    "ArchiveResult": "extract",
    "ZipEntry": "extract",
    "extract_zips": "extract",
    "extract_all_zips": "extract",
    "list_zip": "extract",
    "zip_frame": "extract",
}

__all__ = [
    "__version__",
    "ProcessingMode",
    "FileInfo",
    "FileError",
    "ProcessingResult",
    "BatchResult",
    "Status",
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
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'parallel_file_processor' has no attribute {name!r}")
    mod = importlib.import_module(f".{module}", __name__)
    # Importing a submodule binds its name on the package (``scan``, ``aggregate``), shadowing
    # the function of the same name: bind every public name of that module now.
    for public, owner in _LAZY.items():
        if owner == module:
            globals()[public] = getattr(mod, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from .aggregate import ResultAggregator, aggregate, aggregate_csv
    from .engine import BatchInterrupted, FileProcessor, ParallelProcessor
    from .extract import (
        ArchiveResult,
        ZipEntry,
        extract_all_zips,
        extract_zips,
        list_zip,
        zip_frame,
    )
    from .hash import (
        HashResult,
        VerifyResult,
        find_duplicates,
        hash_files,
        hash_frame,
        verify_manifest,
        write_manifest,
    )
    from .progress import ProgressTracker
    from .scan import FileScanner, ScanResult, scan, scan_frame
