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
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .aggregate import atomic_writer
from .errors import CacheError, ManifestError
from .log import file_failed
from .options import ScanOptions
from .progress import ProgressArg, Reporter

if TYPE_CHECKING:
    import pandas as pd

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
    if client is not None:
        from . import distributed as _distributed

        return _distributed.hash_files(
            client, dir_or_paths, algorithm=algorithm, workers=workers, progress=progress,
            cache=cache, rebuild_cache=rebuild_cache, **scanner_filters)
    if algorithm.lower().replace("-", "_") not in ALGORITHMS and algorithm.lower() not in (
            "sha-256", "b3", "xxh3", "xxh128", "sha-1"):
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
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
        results: list[HashResult | None] = [None] * len(paths)
        # 2. hits are served from the cache; misses are hashed natively, in pieces committed
        #    as they finish.
        todo = []
        for i, (p, st) in enumerate(zip(paths, stats)):
            if st is not None:
                hit = known.get((st[0], st[1]))
                if hit is not None and hit[0] == st[2] and hit[1] == st[3]:
                    results[i] = HashResult(p, st[2], hit[2], None, None, False, True,
                                            relative[i], st[0], st[1], st[3])
                    continue
            todo.append(i)
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
    partial_bytes: int = 16 * 1024,
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

    if client is not None:
        from . import distributed as _distributed

        return _distributed.find_duplicates(
            client, root, algorithm=algorithm, include_empty=include_empty,
            partial_bytes=partial_bytes, workers=workers, progress=progress, **scanner_filters)
    options = scan_options(scanner_filters)
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


def write_duplicates(root: PathLike | Iterable[PathLike], fd: int, fmt: str = "table", *,
                     algorithm: str = "blake3", include_empty: bool = False,
                     partial_bytes: int = 16 * 1024, workers: int | None = None,
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


# --- manifests -------------------------------------------------------------------------------

_NAME_HINTS = [
    (re.compile(r"(^|[._-])(b3|blake3)", re.I), "blake3"),
    (re.compile(r"sha256", re.I), "sha256"),
    (re.compile(r"sha1", re.I), "sha1"),
    (re.compile(r"md5", re.I), "md5"),
    (re.compile(r"xxh3?_?128|xxh128", re.I), "xxh3_128"),
    (re.compile(r"xxh", re.I), "xxh3_64"),
    (re.compile(r"crc32c", re.I), "crc32c"),
]
_BY_LENGTH = {64: "blake3", 40: "sha1", 32: "md5", 16: "xxh3_64", 8: "crc32c"}
_HEX_LEN = {"blake3": 64, "b3": 64, "sha256": 64, "sha1": 40, "md5": 32, "xxh3_128": 32,
            "xxh128": 32, "xxh3_64": 16, "xxh3": 16, "xxh64": 16, "crc32c": 8}
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]+) [ *](.+)$")
_BSD = re.compile(r"^(\\?)([A-Za-z0-9_-]+) \((.+)\) = ([0-9a-fA-F]+)$")


def _escape(name: str) -> tuple[str, bool]:
    """GNU coreutils' escaping: a leading backslash marks a name with \\\\ or \\n in it."""
    if "\\" in name or "\n" in name:
        return name.replace("\\", "\\\\").replace("\n", "\\n"), True
    return name, False


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)


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


def manifest_from_results(results: Iterable[HashResult], manifest_path: PathLike, *,
                          base: PathLike | None = None, overwrite: bool = True
                          ) -> tuple[Path, list[HashResult]]:
    """Write the manifest of results already hashed (see :func:`write_manifest`); returns its
    path and the results left out because they have no digest."""
    manifest = Path(manifest_path).absolute()
    base_dir = os.fspath(Path(base).absolute() if base is not None else manifest.parent)
    target = os.fspath(manifest)
    failed = []
    lines = []
    for r in results:
        if r.digest is None:
            failed.append(r)
            continue
        path = os.path.abspath(r.path_str)
        if path == target:
            continue
        name, escaped = _escape(os.path.relpath(path, base_dir))
        lines.append(("\\" if escaped else "") + f"{r.digest}  {name}\n")
    lines.sort(key=lambda line: line.split("  ", 1)[1])
    with atomic_writer(manifest, overwrite=overwrite, encoding="utf-8") as f:
        f.writelines(lines)
    return manifest, failed


@dataclass
class VerifyResult:
    """The outcome of :func:`verify_manifest`, like ``sha256sum -c``."""

    manifest: Path
    algorithm: str
    #: (path as written, absolute path, status OK/FAILED/MISSING/ERROR, expected, actual)
    entries: list[tuple[str, Path, str, str, str | None]] = field(default_factory=list)
    #: (line number, text) of lines that are not manifest lines
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e[2] == status)

    @property
    def ok(self) -> int:
        return self.count("OK")

    @property
    def failed(self) -> int:
        return self.count("FAILED")

    @property
    def missing(self) -> int:
        return self.count("MISSING")

    @property
    def all_ok(self) -> bool:
        return self.ok == len(self.entries) and not self.malformed

    def summary(self) -> dict[str, Any]:
        return {"manifest": str(self.manifest), "algorithm": self.algorithm,
                "entries": len(self.entries), "ok": self.ok, "failed": self.failed,
                "missing": self.missing, "errors": self.count("ERROR"),
                "malformed_lines": len(self.malformed)}

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([(n, str(p), s, e, a) for n, p, s, e, a in self.entries],
                            columns=["name", "path", "status", "expected", "actual"])


def verify_manifest(manifest_path: PathLike, *, algorithm: str | None = None,
                    base: PathLike | None = None, workers: int | None = None,
                    progress: ProgressArg = None) -> VerifyResult:
    """Check every entry of a manifest written by this package, ``b3sum``, ``sha256sum`` or a
    sibling tool (GNU or BSD style lines): OK, FAILED (digest differs), MISSING. Malformed
    lines are reported with their line number. ``algorithm`` is guessed from the manifest's
    name, then from the digest length, when not given."""
    manifest = Path(manifest_path)
    try:
        text = manifest.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from None
    base_dir = Path(base) if base is not None else manifest.parent
    parsed: list[tuple[str, str, tuple[int, str]]] = []
    malformed: list[tuple[int, str]] = []
    bsd_algo = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if m:
            escaped, digest, name = m.groups()
            parsed.append((digest.lower(), _unescape(name) if escaped else name, (lineno, raw)))
            continue
        m = _BSD.match(raw)
        if m:
            escaped, tag, name, digest = m.groups()
            bsd_algo = bsd_algo or {"SHA256": "sha256", "SHA1": "sha1", "MD5": "md5",
                                    "BLAKE3": "blake3", "XXH3": "xxh3_64",
                                    "XXH128": "xxh3_128"}.get(tag.upper())
            parsed.append((digest.lower(), _unescape(name) if escaped else name, (lineno, raw)))
            continue
        malformed.append((lineno, raw))
    algo = algorithm or bsd_algo or _guess_algorithm(manifest, [d for d, _, _ in parsed])
    # A line whose digest cannot be this algorithm's is malformed, like any other bad line
    # (reported and counted); the rest is checked.
    want = _HEX_LEN.get(algo.lower().replace("-", "_"))
    if want is not None:
        malformed.extend((n, raw) for d, _, (n, raw) in parsed if len(d) != want)
        malformed.sort()
        parsed = [p for p in parsed if len(p[0]) == want]
    result = VerifyResult(manifest, algo, [], malformed)
    if not parsed:
        return result
    targets = [base_dir / name for _, name, _ in parsed]
    rows = _core.hash_paths([os.fspath(t) for t in targets], algo, workers=workers,
                            progress=None)
    for (expected, name, _), target, row in zip(parsed, targets, rows):
        digest, etype = row[2], row[3]
        if digest is None:
            status = "MISSING" if etype == "FileNotFoundError" else "ERROR"
        elif len(expected) != len(digest):
            status = "FAILED"
        else:
            status = "OK" if digest == expected else "FAILED"
        result.entries.append((name, target, status, expected, digest))
    return result


def _guess_algorithm(manifest: Path, digests: list[str]) -> str:
    for pattern, algo in _NAME_HINTS:
        if pattern.search(manifest.name):
            return algo
    # By the length most lines agree on (a stray line of another length is malformed).
    counts = Counter(len(d) for d in digests).most_common(2)
    if counts and (len(counts) == 1 or counts[0][1] > counts[1][1]):
        guess = _BY_LENGTH.get(counts[0][0])
        if guess:
            return guess
    raise ManifestError(f"cannot tell the algorithm of {manifest}; pass algorithm=...")

