"""Filtered directory scanning, backed by the Rust core (walkdir + globset + rayon).

``FileScanner`` is the seed's class with the same constructor and methods; :func:`scan` and
:func:`scan_frame` are the direct forms. Patterns without ``/`` match file names (like the seed's
``fnmatch`` on ``path.name``); patterns with ``/`` or ``**`` match the path relative to the root.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .log import files_failed
from .options import ScanOptions
from .progress import ProgressArg, Reporter
from .types import FileError, FileInfo

if TYPE_CHECKING:
    import pandas as pd

    from .job import Plan
    from .runners import Runner

__all__ = ["FileScanner", "FileStream", "ScanResult", "scan", "scan_frame", "scan_roots",
           "scan_on", "scan_plan", "scan_shard"]

PathLike = str | os.PathLike[str]

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    """Files found by a scan, plus what could not be read (the scan went on)."""

    files: list[FileInfo]
    errors: list[FileError] = field(default_factory=list)
    #: FIFOs, sockets and devices that matched but were not listed: ``(path, kind)``.
    special: list[tuple[Path, str]] = field(default_factory=list)
    entries_seen: int = 0

    def __iter__(self) -> Iterator[FileInfo]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def to_dataframe(self) -> pd.DataFrame:
        """The files as a DataFrame (path, relative_path, size_bytes, modified_time, extension)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "path": [str(f.path) for f in self.files],
                "relative_path": [f.relative_path for f in self.files],
                "size_bytes": pd.array([f.size_bytes for f in self.files], dtype="int64"),
                "modified_time": pd.array([f.modified_time for f in self.files], dtype="float64"),
                "extension": [f.extension for f in self.files],
            }
        )

    def errors_df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [(str(e.path), e.error_type, e.message) for e in self.errors],
            columns=["path", "error_type", "message"],
        )


def _roots(roots: Iterable[PathLike] | PathLike) -> list[str]:
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    out = [os.fsdecode(os.fspath(r)) for r in roots]
    if not out:
        raise ValueError("at least one root directory is needed")
    return out


class FileScanner:
    """Scan directories for files matching patterns, extensions, sizes and times.

    The positional arguments are the seed's; the rest are keyword-only::

        scanner = FileScanner(["*.csv"], ["*_backup*"], min_size=100, skip_hidden=True)
        files = scanner.list_files("data/")          # list[FileInfo]
        print(scanner.last_errors)                   # unreadable entries, if any

    Args:
        include_patterns: globs a file must match (any), e.g. ``["*.csv", "reports/**/*.xlsx"]``.
        exclude_patterns: globs that drop files, and directories (not descended into).
        extensions: extensions to keep, e.g. ``{".csv", ".xlsx"}`` (case-insensitive).
        min_size: minimum size in bytes.
        max_size: maximum size in bytes (``None``: no limit).
        recursive: scan subdirectories.
        max_depth: deepest level listed (1: the directory's own entries), like ``fd --max-depth``.
        skip_hidden: drop names starting with ``.`` (hidden files are included by default).
        follow_symlinks: descend into symlinked directories (loops are reported, not followed).
        same_file_system: do not cross mount points.
        modified_after, modified_before: keep files with ``after <= mtime < before``
            (epoch seconds or ``datetime``).
        include_special: list FIFOs/sockets/devices too (never opened by this package).
        sort: return files sorted by path (default: unsorted, faster).
        threads: walker threads (default: one per core).
    """

    def __init__(
        self,
        include_patterns: list[str] | None = None,
        exclude_patterns: list[str] | None = None,
        extensions: Iterable[str] | None = None,
        min_size: int = 0,
        max_size: int | None = None,
        recursive: bool = True,
        *,
        max_depth: int | None = None,
        skip_hidden: bool = False,
        follow_symlinks: bool = False,
        same_file_system: bool = False,
        modified_after: Any = None,
        modified_before: Any = None,
        include_special: bool = False,
        sort: bool = False,
        threads: int | None = None,
    ) -> None:
        self.include_patterns = list(include_patterns or ["*"])
        self.exclude_patterns = list(exclude_patterns or [])
        self.extensions = set(extensions) if extensions else None
        self.min_size = min_size
        self.max_size = max_size
        self.recursive = recursive
        self.max_depth = max_depth
        self.skip_hidden = skip_hidden
        self.follow_symlinks = follow_symlinks
        self.same_file_system = same_file_system
        self.modified_after = modified_after
        self.modified_before = modified_before
        self.include_special = include_special
        self.sort = sort
        self.threads = threads
        #: Entries that could not be read during the last scan (permission, vanished, loops...).
        self.last_errors: list[FileError] = []
        if min_size < 0 or (max_size is not None and max_size < 0):
            raise ValueError("min_size and max_size must be >= 0")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1")

    def options(self, *, with_metadata: bool = True) -> ScanOptions:
        """This scanner's filters as the one options object the native scanner reads."""
        return ScanOptions.make(
            self.include_patterns, self.exclude_patterns, self.extensions, self.min_size,
            self.max_size, self.recursive, max_depth=self.max_depth,
            skip_hidden=self.skip_hidden, follow_symlinks=self.follow_symlinks,
            same_file_system=self.same_file_system, modified_after=self.modified_after,
            modified_before=self.modified_before, include_special=self.include_special,
            sort=self.sort, threads=self.threads, with_metadata=with_metadata,
        )

    def _run(self, roots: Any, progress: ProgressArg, output: str,
             with_metadata: bool = True) -> dict[str, Any]:
        out = _scan_files(_roots(roots), self.options(with_metadata=with_metadata), progress,
                          output)
        self.last_errors = [FileError(Path(p), t, m) for p, t, m in out["errors"]]
        files_failed(log, self.last_errors)
        return out

    def scan_result(self, directory: PathLike | Iterable[PathLike], *,
                    progress: ProgressArg = None) -> ScanResult:
        """Scan one or several roots; files, errors and special files in one result."""
        result = scan_roots(_roots(directory), self.options(), progress)
        self.last_errors = list(result.errors)
        files_failed(log, self.last_errors)
        return result

    def scan(self, directory: PathLike) -> Generator[FileInfo, None, None]:
        """Scan ``directory`` and yield a :class:`FileInfo` per matching file (the seed's API),
        as the walk finds them (in path order with ``sort=True``).

        Raises FileNotFoundError when the directory does not exist and ``ValueError``
        (:class:`RootNotADirectoryError`) when it is not a directory. Entries that could not
        be read are in :attr:`last_errors` once the generator is exhausted.
        """
        yield from self.stream(directory)

    def stream(self, directory: PathLike | Iterable[PathLike], *, batch_size: int = 1024,
               read_ahead: int | None = None, read_budget: int = 256 << 20) -> FileStream:
        """The matching files as the native walk finds them: a :class:`FileStream` (iterate
        it for FileInfo objects, or ``batches()`` for lists). The walk goes on in native
        threads with the GIL released and waits when the consumer falls behind.

        ``read_ahead=N``: the walker threads also read every regular file of at most ``N``
        bytes as they find it, so ``FileInfo.read_bytes()`` returns at once; at most
        ``read_budget`` bytes are held that were not handed over yet.

        The root is checked at once (``FileNotFoundError``...). :attr:`last_errors` is
        complete once the stream is exhausted.
        """
        self.last_errors = []
        native = _core.ScanStream(_roots(directory), self.options(), batch_size=batch_size,
                                  read_ahead=read_ahead, read_budget=read_budget)
        return FileStream(native, self, reads_ahead=read_ahead is not None)

    def list_files(self, directory: PathLike) -> list[FileInfo]:
        """All matching files as a list."""
        return self.scan_result(directory).files

    def write(self, directory: PathLike | Iterable[PathLike], fd: int, fmt: str = "paths", *,
              progress: ProgressArg = None) -> int:
        """Write a row per matching file to the file descriptor ``fd`` as the walk finds them,
        formatted natively (``"paths"``, ``"json"`` lines, ``"csv"``, or an aligned
        ``"table"``, written at the end); returns the number of rows. What `pfp scan` prints.

        :attr:`last_errors` holds what could not be read. A failed write (a closed pipe, a full
        disk) stops the walk and raises ``OSError``.
        """
        with Reporter(progress, desc="Scanning", unit="entry") as rep:
            # Paths alone need no stat (unless a size or time filter does).
            out = _core.scan_write(_roots(directory),
                                   self.options(with_metadata=fmt != "paths"), fd, fmt,
                                   progress=rep.native())
        self.last_errors = [FileError(Path(p), t, m) for p, t, m in out["errors"]]
        return int(out["rows"])

    def count(self, directory: PathLike) -> int:
        """Count matching files without building a FileInfo for each (and without ``stat``
        unless a size or time filter needs it)."""
        return int(self._run(directory, None, "count", with_metadata=False)["files"])

    def frame(self, directory: PathLike | Iterable[PathLike], *,
              progress: ProgressArg = None) -> pd.DataFrame:
        """Matching files as a DataFrame, built from native columns (see :func:`scan_frame`)."""
        loader = _import_in_background("pandas", "pyarrow")
        out = self._run(directory, progress, "columns")
        if loader is not None:
            loader.join()
        df = _frame_from_columns(out["files"])
        df.attrs["errors"] = list(self.last_errors)
        return df


def _scan_files(roots: list[str], options: ScanOptions, progress: ProgressArg,
                output: str) -> dict[str, Any]:
    with Reporter(progress, desc="Scanning", unit="entry") as rep:
        out: dict[str, Any] = _core.scan_files(roots, options, progress=rep.native(),
                                               output=output)
    return out


def scan_roots(roots: list[str], options: ScanOptions, progress: ProgressArg = None
               ) -> ScanResult:
    """One native scan of ``roots``: files, errors and special files (nothing logged)."""
    out = _scan_files(roots, options, progress, "objects")
    errors = [FileError(Path(p), t, m) for p, t, m in out["errors"]]
    special = [(Path(p), kind) for p, kind in out["special"]]
    return ScanResult(out["files"], errors, special, out["entries_seen"])


class FileStream:
    """Files as a walk finds them (from :meth:`FileScanner.stream`).

    Iterating gives :class:`FileInfo` objects; :meth:`batches` gives lists;
    :meth:`take` gives whatever arrived within a timeout, so a consumer can keep working while
    the walk is slower than it. Entries that could not be read are in :attr:`errors` (and the
    scanner's ``last_errors``) once the stream is exhausted. :meth:`close` stops the walk.
    """

    def __init__(self, native: Any, scanner: FileScanner, *, reads_ahead: bool = False) -> None:
        self._native = native
        self._scanner = scanner
        #: the walk reads each file's bytes as it finds them (``read_ahead=``)
        self.reads_ahead = reads_ahead
        self.errors: list[FileError] = []

    def _finish(self) -> None:
        logged = bool(self.errors)
        self.errors = [FileError(Path(p), t, m) for p, t, m in self._native.errors]
        if not logged:
            files_failed(log, self.errors)
        self._scanner.last_errors = list(self.errors)

    def batches(self) -> Iterator[list[FileInfo]]:
        try:
            yield from self._native
            self._finish()
        finally:
            self._native.close()

    def __iter__(self) -> Iterator[FileInfo]:
        for batch in self.batches():
            yield from batch

    def take(self, timeout: float | None = None) -> list[FileInfo] | None:
        """FileInfo objects that arrived within ``timeout`` seconds (``[]``: none in time;
        None: the walk is over)."""
        got: list[FileInfo] | None = self._native.take(timeout)
        if got is None:
            self._finish()
        return got

    @property
    def done(self) -> bool:
        return bool(self._native.done)

    @property
    def read_ahead_bytes(self) -> int:
        """Bytes read ahead and not handed over yet."""
        return int(self._native.read_ahead_bytes)

    def close(self) -> None:
        self._native.close()

    def __enter__(self) -> FileStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _import_in_background(*modules: str) -> threading.Thread | None:
    """Import heavy modules on another thread while the native walk (GIL released) runs."""
    missing = [m for m in modules if m not in sys.modules]
    if not missing:
        return None

    def load() -> None:
        for name in missing:
            try:
                importlib.import_module(name)
            except ImportError:
                pass

    thread = threading.Thread(target=load, name="pfp-import", daemon=True)
    thread.start()
    return thread


def _strings(col: dict[str, Any], n: int) -> Any:
    """A string column from (data, offsets) buffers: Arrow-backed when pyarrow is present."""
    if col["utf8"]:
        try:
            import pandas as pd
            import pyarrow as pa
        except ImportError:
            pass
        else:
            arr = pa.LargeStringArray.from_buffers(
                n, pa.py_buffer(col["offsets"]), pa.py_buffer(col["data"])
            )
            return pd.arrays.ArrowExtensionArray(arr)
    import numpy as np

    data: bytes = col["data"]
    offsets = np.frombuffer(col["offsets"], dtype="<i8")
    # Non-UTF-8 names decode as os.fsdecode does (surrogateescape), so they open again; such
    # strings cannot live in an Arrow-backed column, hence object dtype.
    values = np.empty(n, dtype=object)
    values[:] = [os.fsdecode(data[offsets[i] : offsets[i + 1]]) for i in range(n)]
    import pandas as pd

    return pd.Series(values, dtype=object, copy=False)


def _frame_from_columns(cols: dict[str, Any]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    n = cols["n"]
    mtime_ns = np.frombuffer(cols["mtime_ns"], dtype="<i8")
    return pd.DataFrame(
        {
            "path": _strings(cols["path"], n),
            "relative_path": _strings(cols["relative_path"], n),
            "size_bytes": np.frombuffer(cols["size_bytes"], dtype="<i8"),
            # as os.stat computes st_mtime (sec + nsec * 1e-9), so rows equal FileInfo's
            "modified_time": (mtime_ns // 10**9) + (mtime_ns % 10**9) * 1e-9,
            "extension": _strings(cols["extension"], n),
        },
        copy=False,
    )


def scan(
    *roots: PathLike,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    extensions: Iterable[str] | None = None,
    min_size: int = 0,
    max_size: int | None = None,
    recursive: bool = True,
    progress: ProgressArg = None,
    client: Any = None,
    **options: Any,
) -> ScanResult:
    """Scan one or more directories; return files, per-entry errors and special files.

    >>> result = scan("data", include=["*.csv"], min_size=100, sort=True)   # doctest: +SKIP
    >>> [f.relative_path for f in result], result.errors                     # doctest: +SKIP

    Keyword options are those of :class:`FileScanner`. With ``client`` (a ``distributed.Client``)
    the roots are scanned on the Dask workers (they must see the same paths).
    """
    scanner = FileScanner(include, exclude, extensions, min_size, max_size, recursive, **options)
    if client is None:
        return scanner.scan_result(roots, progress=progress)
    from .job import shard_runner  # the cluster machinery loads when it is used

    with shard_runner(client) as runner:
        return scan_on(runner, roots, scanner.options(), progress=progress)


def scan_on(runner: Runner, roots: Iterable[PathLike], options: ScanOptions, *,
            progress: ProgressArg = None) -> ScanResult:
    """:func:`scan` on a runner's workers: one task per root, merged as one scan of them
    all gives."""
    from .job import execute

    root_list = _roots(roots)
    runner.check_visible(root_list, strict=True)
    return execute(scan_plan(root_list, options), runner, progress=progress)


def scan_plan(roots: list[str], options: ScanOptions) -> Plan[Any, ScanResult, ScanResult]:
    """A scan of several roots as a job: one shard per root, merged as one scan of them all
    gives (sorted as one scan sorts with ``sort=True``)."""

    def merge(parts: list[ScanResult]) -> ScanResult:
        files = [f for part in parts for f in part.files]
        errors = [e for part in parts for e in part.errors]
        special = [s for part in parts for s in part.special]
        if options.sort:
            files.sort(key=lambda f: f.path)
            special.sort(key=lambda s: s[0])
            errors.sort(key=lambda e: e.path)
        files_failed(log, errors)
        return ScanResult(files, errors, special, sum(p.entries_seen for p in parts))

    from .job import Plan

    return Plan([(r, options) for r in roots], scan_shard, merge, desc="Scanning", unit="root")


def scan_shard(shard: tuple[str, ScanOptions]) -> ScanResult:
    """One root of :func:`scan_plan`, on whichever worker runs it."""
    root, options = shard
    return scan_roots([root], options)


def scan_frame(
    *roots: PathLike,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    extensions: Iterable[str] | None = None,
    min_size: int = 0,
    max_size: int | None = None,
    recursive: bool = True,
    progress: ProgressArg = None,
    **options: Any,
) -> pd.DataFrame:
    """Scan into a pandas DataFrame without building a Python object per file.

    Columns: ``path``, ``relative_path``, ``extension`` (Arrow-backed strings when pyarrow is
    installed), ``size_bytes`` (int64), ``modified_time`` (float seconds). Unreadable entries
    are in ``df.attrs["errors"]``.

    >>> df = scan_frame("data", extensions={".csv"})                          # doctest: +SKIP
    >>> df.groupby("extension").size_bytes.sum()                             # doctest: +SKIP
    """
    scanner = FileScanner(include, exclude, extensions, min_size, max_size, recursive, **options)
    return scanner.frame(roots, progress=progress)
