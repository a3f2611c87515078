"""parallel-file-processor: scan, hash, unzip and process many files in parallel.

A Rust core (directory scanning, hashing, ZIP extraction, read-ahead) under a typed Python API::

    from parallel_file_processor import FileScanner, FileProcessor, ProcessingMode

    files = FileScanner(extensions={".csv"}).list_files("data/")

Names are imported lazily, so ``import parallel_file_processor`` stays fast (pandas is loaded
only when a DataFrame is asked for).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ArchiveError as ArchiveError
from .errors import CacheError as CacheError
from .errors import CheckpointError as CheckpointError
from .errors import ConfigError as ConfigError
from .errors import ManifestError as ManifestError
from .errors import MissingExtraError as MissingExtraError
from .errors import PatternError as PatternError
from .errors import PFPError as PFPError
from .errors import RateLimited as RateLimited
from .errors import RootNotADirectoryError as RootNotADirectoryError
from .errors import SchemaError as SchemaError
from .errors import TargetExistsError as TargetExistsError
from .errors import UnsafeArchiveError as UnsafeArchiveError
from .errors import WorkerCrashed as WorkerCrashed
from .errors import ZipBombError as ZipBombError

__version__ = "0.1.0"

# public name -> submodule that defines it (imported on first use)
_LAZY: dict[str, str] = {
    "FileInfo": "types",
    "FileError": "types",
    "ProcessingMode": "types",
    "ProcessingResult": "types",
    "BatchResult": "types",
    "Status": "types",
    "FileScanner": "scan",
    "ScanResult": "scan",
    "scan": "scan",
    "scan_frame": "scan",
    "ProgressTracker": "progress",
    "ParallelProcessor": "engine",
    "FileProcessor": "engine",
    "BatchInterrupted": "engine",
    "ResultAggregator": "results",
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
    "CheckpointError",
    "RateLimited",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'parallel_file_processor' has no attribute {name!r}")
    mod = importlib.import_module(f".{module}", __name__)
    for public, owner in _LAZY.items():
        if owner == module:
            globals()[public] = getattr(mod, public)
    return globals()[name]


class _Package(ModuleType):
    """The package's module type: ``scan`` and ``aggregate`` are functions *and* submodules.

    Importing a submodule binds it on its package (``parallel_file_processor.scan = <module>``),
    which would make ``from parallel_file_processor import scan`` the module once anything had
    imported ``.scan``. Binding the function of that name instead keeps the public name a
    function however the submodules get imported, without importing them up front."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (isinstance(value, ModuleType) and _LAZY.get(name) == name
                and value.__name__ == f"{__name__}.{name}"):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted(__all__)


# Type checkers do not run ``__getattr__``: they see every lazy name here, each re-exported
# explicitly (``X as X``), so ``mypy --strict`` accepts ``from parallel_file_processor import
# hash_files``. At run time this block is skipped and the names load on first use.
if TYPE_CHECKING:
    from .aggregate import aggregate as aggregate
    from .aggregate import aggregate_csv as aggregate_csv
    from .engine import BatchInterrupted as BatchInterrupted
    from .engine import FileProcessor as FileProcessor
    from .engine import ParallelProcessor as ParallelProcessor
    from .extract import ArchiveResult as ArchiveResult
    from .extract import ZipEntry as ZipEntry
    from .extract import extract_all_zips as extract_all_zips
    from .extract import extract_zips as extract_zips
    from .extract import list_zip as list_zip
    from .extract import zip_frame as zip_frame
    from .hash import HashResult as HashResult
    from .hash import VerifyResult as VerifyResult
    from .hash import find_duplicates as find_duplicates
    from .hash import hash_files as hash_files
    from .hash import hash_frame as hash_frame
    from .hash import verify_manifest as verify_manifest
    from .hash import write_manifest as write_manifest
    from .progress import ProgressTracker as ProgressTracker
    from .results import ResultAggregator as ResultAggregator
    from .scan import FileScanner as FileScanner
    from .scan import ScanResult as ScanResult
    from .scan import scan as scan
    from .scan import scan_frame as scan_frame
    from .types import BatchResult as BatchResult
    from .types import FileError as FileError
    from .types import FileInfo as FileInfo
    from .types import ProcessingMode as ProcessingMode
    from .types import ProcessingResult as ProcessingResult
    from .types import Status as Status
