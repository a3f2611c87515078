"""Hashing trees: digests, duplicates and manifests, on every core.

The Rust core hashes files in parallel (largest first, one reused buffer per worker, plain reads
so a file truncated while hashed gives an error instead of a crash, BLAKE3's multi-threaded
hasher for large files). Digests are lowercase hex and equal those of ``b3sum``,
``sha256sum``, ``sha1sum``, ``md5sum`` and ``xxhsum -H3``.

>>> results = hash_files("data", algorithm="sha256", extensions={".csv"})   # doctest: +SKIP
>>> dupes = find_duplicates("photos")                                        # doctest: +SKIP
>>> dupes.attrs["reclaimable_bytes"]                                         # doctest: +SKIP
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .errors import CacheError, ManifestError
from .log import file_failed
from .manifest import VerifyResult, manifest_from_results, verify_manifest
from .options import ScanOptions
from .progress import ProgressArg, Reporter

if TYPE_CHECKING:
    import pandas as pd

    from .job import Plan
    from .runners import Runner

__all__ = [
    "ALGORITHMS",
    "HashResult",
    "hash_files",
    "hash_frame",
    "find_duplicates",
    "write_manifest",
    "verify_manifest",
    "VerifyResult",
    "scan_options",
    "file_identity",
    "manifest_from_results",
    "write_duplicates",
    "duplicates_frame",
    "hash_files_on",
    "find_duplicates_on",
    "hash_plan",
    "hash_shard",
    "duplicates_shard",
    "list_tree",
    "file_identities",
]

ALGORITHMS: tuple[str, ...] = tuple(_core.algorithms())
PathLike = str | os.PathLike[str]

log = logging.getLogger(__name__)

_SCAN_KEYS = {"include", "exclude", "extensions", "min_size", "max_size", "recursive",
              "max_depth", "skip_hidden", "follow_symlinks", "same_file_system",
              "modified_after", "modified_before", "sort"}


#: One file's digest (``digest`` None and ``error`` set when it could not be hashed): ``path``
#: (a :class:`pathlib.Path`, built on first access), ``size``, ``digest``, ``error``,
#: ``error_type``, ``changed``, ``cached``, ``relative_path``; ``dev``, ``ino`` and
#: ``mtime_ns`` identify the file as it was hashed. A native class: a million results cost
#: what their strings cost.
HashResult = _core.HashResult


# --- the cache -------------------------------------------------------------------------------


class _Cache:
    """Digests keyed by (algorithm, device, inode, size, mtime_ns) in SQLite (WAL, batched
    commits), so an unchanged tree is only stat'ed on a re-run."""

    def __init__(self, path: PathLike, *, rebuild: bool = False) -> None:
        self.path = Path(path)
        if rebuild:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS digests (algorithm TEXT NOT NULL, dev INTEGER NOT "
                "NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
                "digest TEXT NOT NULL, PRIMARY KEY (algorithm, dev, ino))")
            self.db.execute("SELECT count(*) FROM digests").fetchone()
        except sqlite3.DatabaseError as exc:
            raise _cache_error(
                f"hash cache {self.path} is unusable ({exc}); delete it or pass "
                "rebuild_cache=True", exc) from None

    def load(self, algorithm: str) -> dict[tuple[int, int], tuple[int, int, str]]:
        try:
            rows = self.db.execute(
                "SELECT dev, ino, size, mtime_ns, digest FROM digests WHERE algorithm = ?",
                (algorithm,))
            return {(d, i): (s, m, h) for d, i, s, m, h in rows}
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"hash cache {self.path} is corrupt ({exc}); pass "
                             "rebuild_cache=True to start over") from None

    def store(self, algorithm: str, rows: list[tuple[int, int, int, int, str]]) -> None:
        # Batches of 10,000 rows per transaction: a run interrupted midway keeps what it stored.
        try:
            for start in range(0, len(rows), 10_000):
                batch = rows[start:start + 10_000]
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                    [(algorithm, *r) for r in batch])
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:  # sqlite names no file: name the cache
            raise _cache_error(f"hash cache {self.path}: cannot store digests ({exc})",
                               exc) from None

    def close(self) -> None:
        self.db.close()


def _cache_error(message: str, exc: sqlite3.Error) -> CacheError:
    """A full disk keeps its errno, so the CLI reports an output that could not be written."""
    error = CacheError(message)
    error.errno = errno.ENOSPC if "full" in str(exc) else None
    return error


# --- hashing ---------------------------------------------------------------------------------


def _rows_to_results(rows: list[tuple[Any, ...]], relative: list[str] | None = None
                     ) -> list[HashResult]:
    """HashResult objects from ``hash_paths`` rows (as cluster workers send them back)."""
    out = []
    for i, (path, size, digest, etype, msg, changed, dev, ino, mt) in enumerate(rows):
        if etype is not None:
            file_failed(log, path, etype, msg)
        out.append(HashResult(path, size, digest, msg, etype, changed, False,
                              relative[i] if relative is not None else None, dev, ino, mt))
    return out


def _logged(results: list[HashResult]) -> list[HashResult]:
    """Log each file that could not be hashed (once, here); the results as they are."""
    if log.isEnabledFor(logging.WARNING):
        for r in results:
            if r.error is not None:
                file_failed(log, r.path_str, r.error_type or "OSError", r.error)
    return results


def _error_rows(errors: Iterable[tuple[str, str, str]]) -> list[HashResult]:
    """What a walk could not list (an unreadable folder...), as failed results: nothing a
    tree holds is left out silently."""
    return [HashResult(p, 0, None, m, t) for p, t, m in errors]


def _split_filters(filters: dict[str, Any]) -> dict[str, Any]:
    unknown = set(filters) - _SCAN_KEYS
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    return dict(filters)


def scan_options(filters: dict[str, Any], **extra: Any) -> ScanOptions:
    """The scanner filters a hashing call was given, as the native scanner's options."""
    f = _split_filters(filters)
    return ScanOptions.make(
        f.pop("include", None), f.pop("exclude", None), f.pop("extensions", None),
        f.pop("min_size", 0), f.pop("max_size", None), f.pop("recursive", True), **f, **extra)


def hash_files(
    dir_or_paths: PathLike | Iterable[PathLike],
    algorithm: str = "blake3",
    *,
    workers: int | None = None,
    progress: ProgressArg = None,
    cache: PathLike | None = None,
    rebuild_cache: bool = False,
    client: Any = None,
    **scanner_filters: Any,
) -> list[HashResult]:
    """Hash a directory tree (with every scanner filter) or a list of files, in parallel.

    >>> [r.digest for r in hash_files(["a.bin"], "sha256")]   # doctest: +SKIP

    Args:
        dir_or_paths: a directory, or an iterable of file paths.
        algorithm: ``blake3`` (default), ``sha256``, ``sha1``, ``md5``, ``xxh3_64``,
            ``xxh3_128`` or ``crc32c``.
        workers: threads for this call (default: one per core; the global pool is untouched).
        progress: ``True`` for a tqdm bar (bytes), or ``callback(bytes_done, bytes_total)``.
        cache: an SQLite file remembering digests by device, inode, size and mtime, so a
            re-run only stats unchanged files. ``rebuild_cache=True`` starts it over.
        scanner_filters: ``include``, ``exclude``, ``extensions``, ``min_size`` ... as for
            :class:`FileScanner` (directories only).

    Unreadable, vanished or special files give a result with ``error`` set; the rest goes on.
    """
    if algorithm.lower().replace("-", "_") not in ALGORITHMS and algorithm.lower() not in (
            "sha-256", "b3", "xxh3", "xxh128", "sha-1"):
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if client is not None:
        from .job import shard_runner  # the cluster machinery loads when it is used

        with shard_runner(client) as runner:
            return hash_files_on(runner, dir_or_paths, algorithm, workers=workers,
                                 progress=progress, cache=cache, rebuild_cache=rebuild_cache,
                                 **scanner_filters)
    options = scan_options(scanner_filters)
    is_dir = isinstance(dir_or_paths, (str, os.PathLike)) and Path(dir_or_paths).is_dir()
    if scanner_filters and not is_dir:
        raise TypeError("scanner filters apply to a directory, not a list of paths")
    with Reporter(progress, desc=f"Hashing ({algorithm})", by_bytes=True) as rep:
        if cache is None:
            if is_dir:
                root = os.fspath(dir_or_paths)  # type: ignore[arg-type]
                out = _core.hash_scan([root], options, algorithm, workers=workers,
                                      progress=rep.native())
                files: list[HashResult] = out["files"]
                return _logged(files + _error_rows(out["errors"]))
            paths = _path_list(dir_or_paths)
            found: list[HashResult] = _core.hash_paths(
                paths, algorithm, workers=workers, progress=rep.native(), results=True)
            return _logged(found)
        return _hash_with_cache(dir_or_paths, is_dir, algorithm, options, workers, rep, cache,
                                rebuild_cache)


def _path_list(paths: Any) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        p = Path(paths)
        if not p.exists():
            raise FileNotFoundError(f"not found: {p}")
        return [os.fspath(p)]
    return [os.fspath(p) for p in paths]


def _cache_hits(known: dict[tuple[int, int], tuple[int, int, str]], paths: list[str],
                stats: list[tuple[int, int, int, int] | None], relative: Sequence[str | None]
                ) -> tuple[list[HashResult | None], list[int]]:
    """The cached results of files whose inode, size and mtime the cache knows (``stats`` are
    ``(dev, ino, size, mtime_ns)``), and the indices of the files still to hash."""
    results: list[HashResult | None] = [None] * len(paths)
    todo: list[int] = []
    for i, (p, st) in enumerate(zip(paths, stats)):
        if st is not None:
            hit = known.get((st[0], st[1]))
            if hit is not None and hit[0] == st[2] and hit[1] == st[3]:
                results[i] = HashResult(p, st[2], hit[2], None, None, False, True,
                                        relative[i], st[0], st[1], st[3])
                continue
        todo.append(i)
    return results, todo


#: Digests are committed to the cache after every this many files (or bytes) hashed, so a run
#: that is killed keeps what it did.
_COMMIT_FILES = 4096
_COMMIT_BYTES = 1 << 30


def _hash_with_cache(dir_or_paths: Any, is_dir: bool, algorithm: str, options: ScanOptions,
                     workers: int | None, rep: Reporter, cache_path: PathLike,
                     rebuild: bool) -> list[HashResult]:
    cache = _Cache(cache_path, rebuild=rebuild)
    try:
        known = cache.load(algorithm)
        # 1. what is there, with the identity the cache keys on: one native scan (directories)
        #    or one stat per listed path.
        errors: list[tuple[str, str, str]] = []
        if is_dir:
            scanned = _core.scan_files([os.fspath(dir_or_paths)], options, output="rows")
            paths, rels, sizes, mtimes, devs, inos = scanned["files"]
            errors = scanned["errors"]
            stats: list[tuple[int, int, int, int] | None] = list(zip(devs, inos, sizes, mtimes))
            relative: list[str | None] = list(rels)
        else:
            paths = _path_list(dir_or_paths)
            relative = [None] * len(paths)
            stats = [file_identity(p) for p in paths]
        # 2. hits are served from the cache; misses are hashed natively, in pieces committed
        #    as they finish.
        results, todo = _cache_hits(known, paths, stats, relative)
        start = 0
        total = 0
        for i in todo:
            st = stats[i]
            total += st[2] if st is not None else 0
        done = 0
        while start < len(todo):
            end, nbytes = start, 0
            while end < len(todo) and end - start < _COMMIT_FILES and nbytes < _COMMIT_BYTES:
                st = stats[todo[end]]
                nbytes += st[2] if st is not None else 0
                end += 1
            piece = todo[start:end]
            hashed = _core.hash_paths([paths[i] for i in piece], algorithm, workers=workers,
                                      progress=rep.native(before=done, total=total),
                                      results=True)
            done += nbytes
            fresh = []
            for i, r in zip(piece, hashed):
                r.relative_path = relative[i]
                results[i] = r
                if r.digest is not None:
                    fresh.append((r.dev, r.ino, r.size, r.mtime_ns, r.digest))
            cache.store(algorithm, fresh)
            start = end
        return _logged([r for r in results if r is not None] + _error_rows(errors))
    finally:
        cache.close()


# --- on a cluster ------------------------------------------------------------------------------


def hash_files_on(runner: Runner, dir_or_paths: PathLike | Iterable[PathLike],
                  algorithm: str = "blake3", *, workers: int | None = None,
                  progress: ProgressArg = None, cache: PathLike | None = None,
                  rebuild_cache: bool = False, **scanner_filters: Any) -> list[HashResult]:
    """:func:`hash_files` on a runner's workers (a :func:`~.job.shard_runner`; a cluster's
    when given ``client=``): the tree is listed (here when this machine sees it too, else on a
    worker), hashed in size-balanced shards and merged in the order a local run gives. A cache
    is read and written here only: workers hash what it misses."""
    from .job import SHARDS_PER_WORKER, execute, file_sizes, probes, where_visible

    filters = _split_filters(scanner_filters)

    rels: list[str] | None = None
    if isinstance(dir_or_paths, (str, os.PathLike)) and not _is_file_somewhere(
            runner, os.fspath(dir_or_paths)):
        root = os.fspath(dir_or_paths)
        runner.check_visible([root], strict=True)
        paths, rels, sizes = where_visible(runner, [root], list_tree, [root], filters)
    else:
        if filters:
            raise TypeError("scanner filters apply to a directory, not a list of paths")
        paths = _path_list(dir_or_paths) if isinstance(
            dir_or_paths, (str, os.PathLike)) else [os.fspath(p) for p in dir_or_paths]
        runner.check_visible(probes(paths), strict=False)
        sizes = where_visible(runner, probes(paths), file_sizes, paths)
    shards = runner.workers * SHARDS_PER_WORKER
    if cache is None:
        # A listed tree passes the sizes it saw, as the local tree job does.
        plan = hash_plan(paths, sizes, algorithm, workers, shards,
                         pass_sizes=rels is not None)
        return _rows_to_results(execute(plan, runner, progress=progress), rels)
    db = _Cache(cache, rebuild=rebuild_cache)
    try:
        known = db.load(algorithm)
        stats = where_visible(runner, probes(paths), file_identities, paths)
        results, todo = _cache_hits(known, paths, stats,
                                    rels if rels is not None else [None] * len(paths))
        plan = hash_plan([paths[i] for i in todo], [sizes[i] for i in todo], algorithm,
                         workers, shards)
        hashed = _rows_to_results(execute(plan, runner, progress=progress))
        fresh = []
        for i, r in zip(todo, hashed):
            r.relative_path = rels[i] if rels is not None else None
            results[i] = r
            if r.digest is not None and not r.changed:
                fresh.append((r.dev, r.ino, r.size, r.mtime_ns, r.digest))
        db.store(algorithm, fresh)
        return [r for r in results if r is not None]
    finally:
        db.close()


def hash_plan(paths: list[str], sizes: list[int], algorithm: str, workers: int | None,
              shards: int, *, pass_sizes: bool = False
              ) -> Plan[Any, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Hashing ``paths`` as a job: about ``shards`` shards of equal weight (bytes, and a cost
    per file), merged into ``hash_paths`` rows in the order of ``paths``."""
    from .job import Plan, balanced_shards, scatter

    groups = balanced_shards(sizes, shards) if paths else []
    return Plan(
        [([paths[i] for i in g], algorithm, workers,
          [sizes[i] for i in g] if pass_sizes else None) for g in groups],
        hash_shard,
        lambda parts: scatter(groups, parts, len(paths)),
        weights=[sum(sizes[i] for i in g) + 1 for g in groups],
        desc=f"Hashing ({algorithm})", by_bytes=True,
    )


def hash_shard(shard: tuple[list[str], str, int | None, list[int] | None]
               ) -> list[tuple[Any, ...]]:
    """One shard of :func:`hash_plan`: the native hash job on its files, raw rows."""
    from .runners import native_threads

    paths, algorithm, workers, sizes = shard
    return list(_core.hash_paths(paths, algorithm, sizes=sizes,
                                 workers=native_threads(workers)))


def list_tree(roots: list[str], filters: dict[str, Any]) -> tuple[list[str], list[str], list[int]]:
    """Paths, relative paths and sizes of the files under ``roots`` (one native scan)."""
    out = _core.scan_files(roots, scan_options(filters), output="rows")
    paths, rels, sizes = out["files"][:3]
    return list(paths), list(rels), list(sizes)


def file_identities(paths: list[str]) -> list[tuple[int, int, int, int] | None]:
    return [file_identity(p) for p in paths]


def _is_file_somewhere(runner: Runner, path: str) -> bool:
    """A single path argument is a directory to list or one file: ask here, else a worker."""
    from .job import run_one

    if os.path.exists(path):
        return not os.path.isdir(path)
    return bool(run_one(runner, os.path.isfile, path))


def file_identity(path: str) -> tuple[int, int, int, int] | None:
    """``(dev, ino, size, mtime_ns)`` of a file (what the cache keys on), None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def hash_frame(dir_or_paths: PathLike | Iterable[PathLike], algorithm: str = "blake3",
               **options: Any) -> pd.DataFrame:
    """:func:`hash_files` as a DataFrame: path, relative_path, size, digest, changed, cached,
    error_type, error."""
    import pandas as pd

    res = hash_files(dir_or_paths, algorithm, **options)
    return pd.DataFrame({
        "path": [r.path_str for r in res],
        "relative_path": [r.relative_path for r in res],
        "size": pd.array([r.size for r in res], dtype="int64"),
        "digest": [r.digest for r in res],
        "changed": [r.changed for r in res],
        "cached": [r.cached for r in res],
        "error_type": [r.error_type for r in res],
        "error": [r.error for r in res],
    })


# --- duplicates ------------------------------------------------------------------------------


def find_duplicates(
    root: PathLike | Iterable[PathLike],
    *,
    algorithm: str = "blake3",
    include_empty: bool = False,
    partial_bytes: int = 4096,
    workers: int | None = None,
    progress: ProgressArg = None,
    client: Any = None,
    **scanner_filters: Any,
) -> pd.DataFrame:
    """Group identical files the way the best tools do: by size, then a hash of the head and
    tail, then a full hash only where still needed. Hard links to one inode are reported as
    links (``hardlink_of``), not as wasted space.

    Returns one row per file in a duplicate group: ``group``, ``size``, ``digest``, ``path``,
    ``hardlink_of``; ``df.attrs["reclaimable_bytes"]`` is what removing all but one copy of
    each group would free. Empty files are left out unless ``include_empty``. Symbolic links
    are never copies (deleting "the extra copy" would delete a link's target): they are left
    out and counted in ``df.attrs["links_skipped"]``. Unreadable entries are in
    ``df.attrs["errors"]``.
    """
    options = scan_options(scanner_filters)
    if client is not None:
        from .job import shard_runner  # the cluster machinery loads when it is used

        with shard_runner(client) as runner:
            return find_duplicates_on(runner, root, algorithm=algorithm,
                                      include_empty=include_empty,
                                      partial_bytes=partial_bytes, workers=workers,
                                      progress=progress, **scanner_filters)
    with Reporter(progress, desc="Finding duplicates", by_bytes=True) as rep:
        out = _core.find_duplicates(_roots(root), options, algorithm,
                                    include_empty=include_empty, partial_bytes=partial_bytes,
                                    workers=workers, progress=rep.native())
    return duplicates_frame(out)


def duplicates_frame(out: dict[str, Any]) -> pd.DataFrame:
    """The DataFrame of a native duplicate search's columns (see :func:`find_duplicates`)."""
    import pandas as pd

    df = pd.DataFrame({
        "group": pd.array(out["group"], dtype="int64"),
        "size": pd.array(out["size"], dtype="int64"),
        "digest": pd.Series(out["digest"], dtype=object),
        "path": pd.Series(out["path"], dtype=object),
        "hardlink_of": pd.Series(out["hardlink_of"], dtype=object),
    })
    df.attrs["reclaimable_bytes"] = out["reclaimable"]
    df.attrs["errors"] = out["errors"]
    df.attrs["links_skipped"] = out["links_skipped"]
    for path, error_type, message in out["errors"]:
        file_failed(log, path, error_type, message)
    return df


def find_duplicates_on(runner: Runner, root: PathLike | Iterable[PathLike], *,
                       algorithm: str = "blake3", include_empty: bool = False,
                       partial_bytes: int = 4096, workers: int | None = None,
                       progress: ProgressArg = None, **scanner_filters: Any) -> pd.DataFrame:
    """:func:`find_duplicates` on a runner's workers: the whole native search runs on one
    worker that sees the files, on all its cores; the frame is the one a local run gives."""
    from .job import Plan, execute

    options = scan_options(scanner_filters)
    roots = _roots(root)
    runner.check_visible(roots, strict=True)
    plan = Plan([(roots, options, algorithm, include_empty, partial_bytes, workers)],
                duplicates_shard, lambda parts: duplicates_frame(parts[0]),
                desc="Finding duplicates", unit="search")
    return execute(plan, runner, progress=progress)


def duplicates_shard(shard: tuple[list[str], ScanOptions, str, bool, int, int | None]
                     ) -> dict[str, Any]:
    """The native duplicate search as one shard (on a cluster worker)."""
    from .runners import native_threads

    roots, options, algorithm, include_empty, partial_bytes, workers = shard
    out: dict[str, Any] = _core.find_duplicates(
        roots, options, algorithm, include_empty=include_empty, partial_bytes=partial_bytes,
        workers=native_threads(workers))
    return out


def write_duplicates(root: PathLike | Iterable[PathLike], fd: int, fmt: str = "table", *,
                     algorithm: str = "blake3", include_empty: bool = False,
                     partial_bytes: int = 4096, workers: int | None = None,
                     progress: ProgressArg = None, **scanner_filters: Any) -> dict[str, Any]:
    """:func:`find_duplicates`, its rows written to the descriptor ``fd`` natively (``fmt``:
    ``"table"``, ``"json"`` lines or ``"csv"``) without building a DataFrame: what
    ``pfp dupes`` prints. Returns ``rows``, ``reclaimable``, ``errors``, ``links_skipped``."""
    options = scan_options(scanner_filters)
    with Reporter(progress, desc="Finding duplicates", by_bytes=True) as rep:
        out: dict[str, Any] = _core.find_duplicates(
            _roots(root), options, algorithm, include_empty=include_empty,
            partial_bytes=partial_bytes, workers=workers, progress=rep.native(), fd=fd,
            format=fmt)
    return out


def _roots(root: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(root, (str, os.PathLike)):
        return [os.fspath(root)]
    return [os.fspath(r) for r in root]


# --- manifests (checked by .manifest) ---------------------------------------------------------


def write_manifest(paths_or_dir: PathLike | Iterable[PathLike], manifest_path: PathLike, *,
                   algorithm: str = "blake3", base: PathLike | None = None,
                   overwrite: bool = True, workers: int | None = None,
                   progress: ProgressArg = None, **scanner_filters: Any) -> Path:
    """Write ``<hex>  <path>`` lines (the format of ``b3sum``/``sha256sum``), paths relative to
    ``base`` (default: the manifest's directory), sorted, written atomically. Check it later
    with :func:`verify_manifest`, or ``cd BASE && sha256sum -c MANIFEST``.

    Raises :class:`ManifestError` naming what could not be hashed (or listed): the manifest
    is written without those files, never silently.
    """
    results = hash_files(paths_or_dir, algorithm, workers=workers, progress=progress,
                         **scanner_filters)
    manifest, failed = manifest_from_results(results, manifest_path, base=base,
                                             overwrite=overwrite)
    if failed:
        raise ManifestError(
            f"wrote {manifest} without {len(failed)} file(s) that could not be hashed: "
            + "; ".join(f"{r.path_str}: {r.error}" for r in failed[:5]))
    return manifest

