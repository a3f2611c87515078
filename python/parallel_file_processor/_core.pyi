"""Stubs for the native module (Rust, PyO3). Users call the typed wrappers in the package."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, final

from typing_extensions import disjoint_base

from .options import ScanOptions

__all__ = [
    "__version__",
    "FileInfo",
    "untrack_results",
    "scan_files",
    "scan_write",
    "ScanStream",
    "read_files",
    "hash_paths",
    "hash_scan",
    "HashResult",
    "write_hash_rows",
    "find_duplicates",
    "algorithms",
    "extract_archives",
    "list_zip",
    "DEFAULT_MAX_TOTAL_SIZE",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_ENTRIES",
    "read_sheets",
]

__version__: str

# The aliases below exist only for type checkers: private names, so stubtest does not look
# for them in the module.

#: ``progress(items_done, items_total, bytes_done, bytes_total)``, called on the calling thread.
_NativeProgress = Callable[[int, int, int, int], Any]

#: what the native scanner reads field by field
_ScanOptionsLike = ScanOptions

@disjoint_base
class FileInfo:
    """File metadata container (the seed's fields), able to read its file."""

    __match_args__ = ("path", "size_bytes", "modified_time", "extension", "relative_path")
    size_bytes: int
    modified_time: float
    extension: str
    def __new__(
        cls,
        path: str | os.PathLike[str],
        size_bytes: int,
        modified_time: float,
        extension: str,
        relative_path: str | None = None,
    ) -> FileInfo: ...
    @property
    def path(self) -> Path: ...
    @path.setter
    def path(self, value: str | os.PathLike[str]) -> None: ...
    @property
    def path_str(self) -> str: ...
    @property
    def relative_path(self) -> str | None: ...
    @relative_path.setter
    def relative_path(self, value: str | None) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def prefetched(self) -> bool: ...
    def set_prefetched(self, data: bytes | None) -> None: ...
    def read_bytes(self) -> bytes: ...
    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str: ...
    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], base_path: str | os.PathLike[str] | None = None
    ) -> FileInfo: ...
    def __fspath__(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def untrack_results(results: list[Any], cls: type) -> None:
    """Take the items of ``results`` of exactly type ``cls`` out of the cyclic GC's watch."""

def scan_files(
    roots: list[str],
    options: _ScanOptionsLike,
    *,
    progress: _NativeProgress | None = None,
    output: str = "objects",
) -> dict[str, Any]:
    """Walk ``roots`` with the GIL released. ``files``: a list of FileInfo (``"objects"``),
    column buffers (``"columns"``), lists of path, relative path, size, mtime_ns, dev, ino
    (``"rows"``) or their number (``"count"``); ``special``, ``errors``, ``entries_seen``,
    ``cancelled``."""

def scan_write(
    roots: list[str],
    options: _ScanOptionsLike,
    fd: int,
    format: str,
    *,
    progress: _NativeProgress | None = None,
) -> dict[str, Any]:
    """Walk ``roots`` and write a row per file to descriptor ``fd`` from native buffers
    (``"paths"``, ``"json"``, ``"csv"`` or ``"table"``). Returns ``rows``, ``special``,
    ``errors``, ``entries_seen``, ``cancelled``."""

@final
class ScanStream:
    """Files as the walk finds them, in lists of FileInfo."""

    def __new__(
        cls,
        roots: list[str],
        options: _ScanOptionsLike,
        *,
        batch_size: int = 1024,
        read_ahead: int | None = None,
        read_budget: int = ...,
    ) -> ScanStream: ...
    def __iter__(self) -> ScanStream: ...
    def __next__(self) -> list[FileInfo]: ...
    def take(self, timeout: float | None = None) -> list[FileInfo] | None: ...
    def close(self) -> None: ...
    @property
    def errors(self) -> list[tuple[str, str, str]]: ...
    @property
    def special(self) -> list[tuple[str, str]]: ...
    @property
    def entries_seen(self) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def read_ahead_bytes(self) -> int: ...

def read_files(
    paths: list[str], *, max_file_bytes: int = ..., workers: int | None = None
) -> list[bytes | None]:
    """Read files in parallel with the GIL released (read-ahead for the engine); ``None`` for a
    file not read (too large, not regular, or an error the caller will meet itself)."""

#: (path, size, digest, error_type, message, changed, dev, ino, mtime_ns)
_HashRow = tuple[str, int, str | None, str | None, str | None, bool, int, int, int]

def algorithms() -> list[str]:
    """Names of the digest algorithms this build supports."""

def hash_paths(
    paths: list[str],
    algorithm: str,
    *,
    sizes: list[int] | None = None,
    head_tail: int | None = None,
    workers: int | None = None,
    progress: _NativeProgress | None = None,
    results: bool = False,
) -> Any:
    """Hash files in parallel with the GIL released; rows (HashResult objects with
    ``results=True``) in input order. ``head_tail=n`` hashes only the first and last ``n``
    bytes (and the size)."""

def hash_scan(
    roots: list[str],
    options: _ScanOptionsLike,
    algorithm: str,
    *,
    head_tail: int | None = None,
    workers: int | None = None,
    progress: _NativeProgress | None = None,
) -> dict[str, Any]:
    """Scan and hash every file as the walk finds it: ``files`` (HashResult, relative paths
    set), ``errors`` (path, error_type, message) of what could not be listed, ``cancelled``."""

@final
class HashResult:
    """One file's digest (``digest`` None and ``error`` set when it could not be hashed)."""

    __match_args__ = ("path", "size", "digest", "error")
    size: int
    digest: str | None
    error: str | None
    error_type: str | None
    changed: bool
    cached: bool
    relative_path: str | None
    @property
    def dev(self) -> int: ...
    @property
    def ino(self) -> int: ...
    @property
    def mtime_ns(self) -> int: ...
    def __new__(
        cls,
        path: str | os.PathLike[str],
        size: int,
        digest: str | None,
        error: str | None = None,
        error_type: str | None = None,
        changed: bool = False,
        cached: bool = False,
        relative_path: str | None = None,
        dev: int = 0,
        ino: int = 0,
        mtime_ns: int = 0,
    ) -> HashResult: ...
    @property
    def path(self) -> Path: ...
    @path.setter
    def path(self, value: str | os.PathLike[str]) -> None: ...
    @property
    def path_str(self) -> str: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def write_hash_rows(results: list[HashResult], fd: int, format: str) -> int:
    """Write digest, size, path, changed, error rows to descriptor ``fd`` (``"table"``,
    ``"json"`` lines or ``"csv"``), formatted natively; returns the number of rows."""

def find_duplicates(
    roots: list[str],
    options: _ScanOptionsLike,
    algorithm: str,
    *,
    include_empty: bool = False,
    partial_bytes: int = 4096,
    workers: int | None = None,
    progress: _NativeProgress | None = None,
    fd: int | None = None,
    format: str = "table",
) -> dict[str, Any]:
    """Duplicate files (size, head + tail, full hash; links apart): ``group``, ``size``,
    ``digest``, ``path``, ``hardlink_of`` columns (or rows written to ``fd``), ``rows``,
    ``groups``, ``reclaimable``, ``errors``, ``links_skipped``."""

# --- ZIP extraction ---------------------------------------------------------------------------

DEFAULT_MAX_TOTAL_SIZE: int
DEFAULT_MAX_RATIO: float
DEFAULT_MAX_ENTRIES: int

#: (archive, target, entries, bytes, status, error_type, message)
_ExtractRow = tuple[str, str, int, int, str, str | None, str | None]
#: (name, name_error, is_dir, is_symlink, size, compressed_size, method, crc32, mtime, mode,
#:  encrypted)
_ZipEntryRow = tuple[str, str | None, bool, bool, int, int, str, int, int | None, int | None, bool]

def extract_archives(
    jobs: list[tuple[str, str]],
    *,
    merge: bool = False,
    if_exists: str = "error",
    keep_partial: bool = False,
    members: list[str] = ...,
    exclude_members: list[str] = ...,
    max_total_size: int | None = None,
    max_ratio: float | None = None,
    max_entries: int | None = None,
    workers: int | None = None,
    progress: _NativeProgress | None = None,
) -> list[_ExtractRow]:
    """Extract ``(archive, target)`` pairs in parallel with the GIL released; one row per job,
    in order. Failures are per archive; Ctrl-C cancels and removes unfinished folders."""

def list_zip(path: str) -> list[_ZipEntryRow]:
    """An archive's central directory; raises ArchiveError for an unreadable archive."""

#: one column of a sheet: ``type`` (null, int64, float64, bool, string, timestamp, time,
#: duration), ``values``, ``validity`` (bitmap or None), ``offsets`` (strings), ``mixed``
_SheetColumn = dict[str, Any]

def read_sheets(
    paths: list[str],
    *,
    sheet_index: int = 0,
    sheet_name: str | None = None,
    all_sheets: bool = False,
    header: int | None = ...,
    skiprows: int = 0,
    nrows: int | None = None,
    na_values: list[str] = ...,
    keep_default_na: bool = True,
    decimal: str = ".",
    thousands: str | None = None,
    workers: int | None = None,
    progress: _NativeProgress | None = None,
) -> list[list[dict[str, Any]] | tuple[str, str]]:
    """Read workbooks (.xlsx, .xlsm, .xls, .ods) in parallel with the GIL released: per path,
    its sheets (``sheet``, ``header``, ``rows``, ``columns``) or ``(error_type, message)``."""
