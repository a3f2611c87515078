"""Safe, parallel ZIP extraction.

Archives are extracted by the Rust core on every core: in parallel with each other and, for big
archives, entry by entry (largest first, each worker reading with its own positioned reads).
Every archive is checked before anything is written and extracted into a temporary folder that
is renamed into place only when every entry succeeded. A hostile or broken archive gets a clear
error of its own (path traversal, links leaving the folder, clashing names, zip bombs,
corruption, CRC mismatches, encryption, a FIFO or device given as an archive) and the others
still extract. Archives made on Windows (``report\\2024\\jan.csv``) extract into folders; the
temporary folders of a run that was killed are removed by the next run into the same folder.

>>> results = extract_zips("downloads", "unpacked")                      # doctest: +SKIP
>>> [r.archive.name for r in results if not r.ok]                         # doctest: +SKIP
>>> zip_frame("downloads/data.zip").head()                                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .log import file_failed
from .progress import ProgressArg, Reporter
from .types import BatchResult, FileInfo, ProcessingResult, Status

if TYPE_CHECKING:
    import pandas as pd

    from .job import Plan
    from .runners import Runner

__all__ = [
    "ArchiveResult",
    "ZipEntry",
    "extract_zips",
    "extract_all_zips",
    "batch_from_results",
    "list_zip",
    "zip_frame",
    "extract_zips_on",
    "extract_plan",
    "extract_shard",
    "DEFAULT_MAX_TOTAL_SIZE",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_ENTRIES",
]

PathLike = str | os.PathLike[str]
Layout = str | Callable[[Path], PathLike]

log = logging.getLogger(__name__)

#: Bytes one archive may produce, uncompressed, unless ``max_total_size`` says otherwise.
DEFAULT_MAX_TOTAL_SIZE: int = _core.DEFAULT_MAX_TOTAL_SIZE
#: Uncompressed / compressed size allowed per entry (judged above 1 MiB of output).
DEFAULT_MAX_RATIO: float = _core.DEFAULT_MAX_RATIO
#: Entries one archive may hold.
DEFAULT_MAX_ENTRIES: int = _core.DEFAULT_MAX_ENTRIES


@dataclass(slots=True)
class ArchiveResult:
    """What happened to one archive.

    ``status`` is ``"extracted"``, ``"skipped"`` (the target existed and ``if_exists="skip"``)
    or ``"failed"`` (then ``error_type`` names the exception, e.g. ``UnsafeArchiveError``,
    ``ZipBombError``, ``ArchiveError``, ``TargetExistsError``, and ``error`` says why).
    """

    archive: Path
    destination: Path
    files_extracted: int
    bytes: int
    status: str
    error_type: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def source(self) -> Path:
        """The archive (the seed's name for it)."""
        return self.archive

    def to_dict(self) -> dict[str, Any]:
        """The seed's result dict: ``source``, ``destination``, ``files_extracted``."""
        return {"source": str(self.archive), "destination": str(self.destination),
                "files_extracted": self.files_extracted}

    def raise_for_error(self) -> None:
        """Raise the archive's error as its exception class (no-op when it did not fail)."""
        if self.status == "failed":
            raise _exception(self.error_type, f"{self.archive}: {self.error}")


@dataclass(slots=True, frozen=True)
class ZipEntry:
    """One entry of an archive, read from its central directory."""

    name: str
    size: int
    compressed_size: int
    method: str
    crc32: int
    mtime: datetime | None
    mode: int | None
    is_dir: bool
    is_symlink: bool
    encrypted: bool
    #: set when the name's bytes are not valid in the encoding the archive declares
    name_error: str | None = None


def _exception(error_type: str | None, message: str) -> BaseException:
    from . import errors

    cls = getattr(errors, error_type or "", None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls(message)
    import builtins

    cls = getattr(builtins, error_type or "", None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls(message)
    return errors.ArchiveError(message)


def _archives(dir_or_paths: PathLike | Iterable[PathLike],
              scanner_filters: dict[str, Any]) -> list[Path]:
    if isinstance(dir_or_paths, (str, os.PathLike)):
        p = Path(dir_or_paths)
        if p.is_dir():
            from .scan import FileScanner

            scanner_filters.setdefault("extensions", {".zip"})
            scanner_filters.setdefault("sort", True)
            return [f.path for f in FileScanner(**scanner_filters).scan_result(p).files]
        if not p.exists():
            raise FileNotFoundError(f"not found: {p}")
        paths = [p]
    else:
        paths = [Path(x) for x in dir_or_paths]
    if scanner_filters:
        raise TypeError("scanner filters apply to a directory, not a list of archives")
    return paths


def _within(root: Path, target: Path) -> bool:
    root_s = os.path.normpath(os.path.abspath(root))
    target_s = os.path.normpath(os.path.abspath(target))
    return target_s == root_s or target_s.startswith(root_s.rstrip(os.sep) + os.sep)


def _targets(archives: list[Path], output_dir: Path, layout: Layout) -> tuple[list[Path], bool]:
    """Each archive's target folder, and whether it is extracted into an existing folder."""
    if layout == "flat":
        return [output_dir] * len(archives), True
    out: list[Path] = []
    for a in archives:
        if layout in ("per-archive", "per_archive", None):
            rel: PathLike = a.stem
        elif callable(layout):
            rel = layout(a)
        elif isinstance(layout, str):
            rel = layout.format(stem=a.stem, name=a.name, parent=a.parent.name)
        else:
            raise TypeError("layout must be 'per-archive', 'flat', a template or a callable")
        target = output_dir / rel
        if not _within(output_dir, target) or os.path.normpath(target) == os.path.normpath(
                output_dir):
            raise ValueError(f"layout puts {a.name} at {target}, which is not inside {output_dir}")
        out.append(Path(os.path.normpath(target)))
    return out, False


def extract_zips(
    dir_or_paths: PathLike | Iterable[PathLike],
    output_dir: PathLike,
    *,
    layout: Layout = "per-archive",
    if_exists: str = "error",
    keep_partial: bool = False,
    members: Iterable[str] | None = None,
    exclude_members: Iterable[str] | None = None,
    max_total_size: int | None = None,
    max_ratio: float | None = None,
    max_entries: int | None = None,
    workers: int | None = None,
    progress: ProgressArg = None,
    client: Any = None,
    **scanner_filters: Any,
) -> list[ArchiveResult]:
    """Extract archives in parallel, safely; one :class:`ArchiveResult` per archive, in order.

    >>> [r.status for r in extract_zips(["a.zip", "b.zip"], "out")]   # doctest: +SKIP
    ['extracted', 'extracted']

    Args:
        dir_or_paths: a directory (every ``*.zip`` under it, with any scanner filter such as
            ``recursive=False`` or ``exclude=[...]``) or an iterable of archive paths.
        output_dir: where archives go; created if needed. Nothing is written outside it.
        layout: ``"per-archive"`` (``output_dir/<stem>/``, the default), ``"flat"`` (every
            archive straight into ``output_dir``), a template such as ``"{parent}/{stem}"``
            (fields ``stem``, ``name``, ``parent``) or a callable ``archive -> folder`` (relative
            to ``output_dir``).
        if_exists: when a target (or, with ``"flat"``, a top-level name) already exists:
            ``"error"`` (default: never silently mixed), ``"skip"`` or ``"overwrite"``.
        keep_partial: leave a failed archive's output at ``<target>.partial`` for inspection.
        members, exclude_members: only extract entries matching these globs (a pattern without
            ``/`` matches the entry's file name, one with ``/`` its whole name).
        max_total_size, max_ratio, max_entries: zip-bomb limits per archive (defaults
            :data:`DEFAULT_MAX_TOTAL_SIZE` = 64 GiB, :data:`DEFAULT_MAX_RATIO` = 200:1 above
            1 MiB, :data:`DEFAULT_MAX_ENTRIES` = 1,000,000).
        workers: threads for this call (default one per core).
        progress: ``True`` for a tqdm bar (bytes written), or ``callback(done, total)``.
        client: a ``distributed.Client``: archives are extracted on the Dask workers, which
            must see the same paths.

    A failed archive leaves nothing behind; Ctrl-C stops within ~200 ms, removes unfinished
    archive folders and raises ``KeyboardInterrupt``. What a run killed outright (``kill -9``)
    left in a target's folder is removed by the next run there (never a live run's), with a
    warning on the ``parallel_file_processor.extract`` logger. A FIFO, socket or device given
    as an archive fails at once (``ArchiveError``), never blocks. Backslashes are folder
    separators in archives made on Windows (ASCII or UTF-8 names; see the README for the rule).
    """
    if if_exists not in ("error", "skip", "overwrite"):
        raise ValueError(f"if_exists must be 'error', 'skip' or 'overwrite', not {if_exists!r}")
    if client is not None:
        options = {"layout": layout, "if_exists": if_exists, "keep_partial": keep_partial,
                   "members": list(members or ()), "exclude_members": list(exclude_members or ()),
                   "max_total_size": max_total_size, "max_ratio": max_ratio,
                   "max_entries": max_entries, "workers": workers}
        from .job import shard_runner  # the cluster machinery loads when it is used

        with shard_runner(client) as runner:
            return extract_zips_on(runner, dir_or_paths, output_dir, options, progress=progress,
                                   **scanner_filters)
    out_dir = Path(output_dir)
    archives = _archives(dir_or_paths, dict(scanner_filters))
    out_dir.mkdir(parents=True, exist_ok=True)
    targets, merge = _targets(archives, out_dir, layout)
    with Reporter(progress, desc="Extracting", by_bytes=True) as rep:
        rows = _core.extract_archives(
            [(os.fspath(a), os.fspath(t)) for a, t in zip(archives, targets)],
            merge=merge, if_exists=if_exists, keep_partial=keep_partial,
            members=list(members or ()), exclude_members=list(exclude_members or ()),
            max_total_size=max_total_size, max_ratio=max_ratio, max_entries=max_entries,
            workers=workers, progress=rep.native())
    for a, _, _, _, status, et, msg in rows:
        if status == "failed":
            file_failed(log, a, et, msg)
    return [ArchiveResult(Path(a), Path(t), n, b, status, et, msg)
            for a, t, n, b, status, et, msg in rows]


def extract_zips_on(runner: Runner, dir_or_paths: PathLike | Iterable[PathLike],
                    output_dir: PathLike, options: dict[str, Any] | None = None, *,
                    progress: ProgressArg = None, **filters: Any) -> list[ArchiveResult]:
    """:func:`extract_zips` on a runner's workers (``options``: its extraction options):
    archives in size-balanced shards, one result per archive in input order. Archives that
    share a target folder (``layout="flat"``, equal names) stay in one shard, so conflicts
    are decided as locally. The output folder must be shared too."""
    from .job import SHARDS_PER_WORKER, execute, file_sizes, probes, where_visible

    options = {"layout": "per-archive", "if_exists": "error", **(options or {})}

    if isinstance(dir_or_paths, (str, os.PathLike)):
        runner.check_visible([os.fspath(dir_or_paths)], strict=True)
        archives = [os.fspath(a) for a in where_visible(
            runner, [os.fspath(dir_or_paths)], _archives, dir_or_paths, filters)]
    else:
        archives = [os.fspath(a) for a in _archives(dir_or_paths, filters)]
        runner.check_visible(probes(archives), strict=False)
    out_dir = Path(output_dir)
    runner.check_visible([os.fspath(out_dir.parent if not out_dir.exists() else out_dir)],
                         strict=True)
    targets, _ = _targets([Path(a) for a in archives], out_dir, options["layout"])
    if not archives:
        out_dir.mkdir(parents=True, exist_ok=True)
        return []
    sizes = where_visible(runner, probes(archives), file_sizes, archives)
    plan = extract_plan(archives, targets, sizes, os.fspath(out_dir), options,
                        runner.workers * SHARDS_PER_WORKER)
    return execute(plan, runner, progress=progress)


def extract_plan(archives: list[str], targets: list[Path], sizes: list[int], output_dir: str,
                 options: dict[str, Any], shards: int
                 ) -> Plan[Any, list[ArchiveResult], list[ArchiveResult]]:
    """Extraction as a job: archives with one target are one unit (never extracted by two
    workers at once), units in about ``shards`` shards of equal size."""
    from .job import Plan, balanced_shards, scatter

    units: dict[Path, list[int]] = defaultdict(list)
    for i, t in enumerate(targets):
        units[t].append(i)
    unit_list = list(units.values())
    groups = balanced_shards([sum(sizes[i] for i in u) for u in unit_list], shards)
    members = [sorted(i for u in g for i in unit_list[u]) for g in groups]

    def merge(parts: list[list[ArchiveResult]]) -> list[ArchiveResult]:
        results: list[ArchiveResult] = scatter(members, parts, len(archives))
        for r in results:
            if r.status == "failed":
                file_failed(log, r.archive, r.error_type, r.error)
        return results

    return Plan([([archives[i] for i in m], output_dir, options) for m in members],
                extract_shard, merge, weights=[len(m) for m in members], desc="Extracting",
                unit="archive")


def extract_shard(shard: tuple[list[str], str, dict[str, Any]]) -> list[ArchiveResult]:
    """One shard of :func:`extract_plan`: its archives extracted natively, on a worker."""
    from .runners import native_threads

    archives, output_dir, options = shard
    options = dict(options, workers=native_threads(options.get("workers")))
    return extract_zips(archives, output_dir, **options)


def extract_all_zips(directory: PathLike, output_directory: PathLike, *,
                     max_workers: int | None = None, **options: Any) -> BatchResult[dict[str, Any]]:
    """The seed's ``FileProcessor.extract_all_zips``: a :class:`BatchResult` whose per-archive
    ``result`` dicts carry ``source``, ``destination`` and ``files_extracted``.

    >>> batch = extract_all_zips("archives", "extracted")             # doctest: +SKIP
    >>> batch.successful, batch.failed                                 # doctest: +SKIP
    """
    started = time.perf_counter()
    # The seed's call refreshes its output on a re-run (atomically: each archive's folder is
    # replaced in one rename once it extracted whole); extract_zips keeps its safe default.
    options.setdefault("if_exists", "overwrite")
    results = extract_zips(directory, output_directory, workers=max_workers, **options)
    base = Path(directory) if Path(directory).is_dir() else None
    batch = batch_from_results(results, base=base)
    batch.total_duration_seconds = time.perf_counter() - started
    return batch


def batch_from_results(results: list[ArchiveResult], files: list[FileInfo] | None = None, *,
                       base: Path | None = None) -> BatchResult[dict[str, Any]]:
    """Per-archive results as a :class:`BatchResult` (the seed's result dicts; failures
    recorded with their error type), e.g. for :class:`ResultAggregator`."""
    batch: BatchResult[dict[str, Any]] = BatchResult(
        total_files=len(results), result_keys=["source", "destination", "files_extracted"])
    for i, r in enumerate(results):
        if files is not None:
            info = files[i]
        elif r.archive.exists():
            info = FileInfo.from_path(r.archive, base)
        else:
            info = FileInfo(r.archive, 0, 0.0, r.archive.suffix.lower(), r.archive.name)
        if r.status == "failed":
            pr: ProcessingResult[dict[str, Any]] = ProcessingResult(
                info, False, {**r.to_dict(), "files_extracted": 0}, f"{r.error_type}: {r.error}",
                0.0, error_type=r.error_type, status=Status.FAILED, index=i, item=r.archive)
        else:
            pr = ProcessingResult(info, True, r.to_dict(), None, 0.0, index=i, item=r.archive,
                                  status=Status.SKIPPED if r.status == "skipped" else Status.OK)
        batch.add(pr)
        batch.total_bytes += r.bytes
    return batch


def list_zip(path: PathLike) -> list[ZipEntry]:
    """The entries of one archive, read from its central directory (nothing is extracted).

    >>> [e.name for e in list_zip("data.zip")]                         # doctest: +SKIP

    Raises :class:`~parallel_file_processor.errors.ArchiveError` for a corrupt archive.
    """
    return [ZipEntry(name, size, csize, method, crc,
                     datetime.fromtimestamp(mtime) if mtime is not None else None,
                     mode, is_dir, is_link, enc, name_error)
            for (name, name_error, is_dir, is_link, size, csize, method, crc, mtime, mode, enc)
            in _core.list_zip(os.fspath(path))]


def zip_frame(dir_or_paths: PathLike | Iterable[PathLike], **scanner_filters: Any
              ) -> pd.DataFrame:
    """Entries of one or many archives as a DataFrame: ``archive``, ``name``, ``size``,
    ``compressed_size``, ``method``, ``crc32``, ``mtime``, ``mode``, ``is_dir``,
    ``is_symlink``, ``encrypted``. Archives that cannot be read are listed in
    ``df.attrs["errors"]`` as ``(path, error_type, message)``.
    """
    import pandas as pd

    archives = _archives(dir_or_paths, dict(scanner_filters))
    rows: list[tuple[Any, ...]] = []
    errors: list[tuple[Path, str, str]] = []
    for a in archives:
        try:
            listed = _core.list_zip(os.fspath(a))
        except Exception as exc:  # noqa: BLE001 - recorded per archive, the listing goes on
            errors.append((a, type(exc).__name__, str(exc)))
            continue
        rows.extend((str(a), *r) for r in listed)
    columns = ["archive", "name", "name_error", "is_dir", "is_symlink", "size",
               "compressed_size", "method", "crc32", "mtime", "mode", "encrypted"]
    df = pd.DataFrame(rows, columns=columns)
    df["mtime"] = pd.to_datetime(df["mtime"], unit="s", utc=True)
    df = df[["archive", "name", "size", "compressed_size", "method", "crc32", "mtime", "mode",
             "is_dir", "is_symlink", "encrypted", "name_error"]]
    df.attrs["errors"] = errors
    return df
