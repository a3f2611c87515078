"""The same jobs on a Dask cluster (``pip install 'parallel-file-processor[dask]'``).

Every public function of the package that takes ``client=`` (or ``executor=`` for the engine)
lands here. The rules:

* **Nothing to rewrite.** A job given a ``distributed.Client`` returns exactly what the local run
  returns: same rows, same order, same errors.
* **Paths must be visible to the workers**, at the same path (a shared file system such as NFS,
  Lustre or a mounted bucket). This is checked up front: a path the workers cannot see gives a
  :class:`PathsNotVisibleError` naming the path and the workers, before any work is sent.
* **The engine** sends chunks of items with ``client.submit(..., pure=False)`` in a sliding
  window collected with ``distributed.as_completed``: results stream back as chunks finish,
  identical items are all run (``pure=False``), and ten million items never sit in the scheduler
  at once. Initializers run once per worker per run; retries, per-item errors and timeouts
  behave as in thread mode.
* **Native jobs** (hashing, duplicates, extraction, scans of several roots) are split into
  size-balanced shards, a few per worker thread; each worker runs the Rust job on its shard and
  the client merges. Duplicate finding hashes only same-size candidates, so copies in different
  shards are still found.
* **A worker that dies** loses nothing: Dask reruns its tasks on another worker; a task that
  keeps killing workers (``KilledWorker``) is split and resubmitted (engine) or retried
  (native shards). Each result is taken from exactly one finished task, so nothing is counted
  twice; an item's function may run again on the new worker (at-least-once execution).

>>> from distributed import LocalCluster, Client               # doctest: +SKIP
>>> client = Client(LocalCluster(n_workers=2))                 # doctest: +SKIP
>>> hash_files(client, "/shared/data")[:1]                      # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import logging
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PathsNotVisibleError, SchedulerUnreachableError, WorkerCrashed
from .log import file_failed, files_failed, reported_by_caller
from .progress import ProgressArg, Reporter
from .runners.base import client_of
from .runners.dask import check_visible, cli_client, dashboard_link, get_client, require_dask

if TYPE_CHECKING:
    import pandas as pd

    from .hash import HashResult
    from .scan import ScanResult

__all__ = [
    "PathsNotVisibleError",
    "SchedulerUnreachableError",
    "aggregate",
    "cli_client",
    "dashboard_link",
    "extract_zips",
    "find_duplicates",
    "get_client",
    "hash_files",
    "require_dask",
    "scan",
]

PathLike = str | os.PathLike[str]

#: shards per worker thread: enough to even out uneven shards, few enough to keep overhead low
_SHARDS_PER_THREAD = 3
#: times a chunk or shard is resubmitted after its task was cancelled or killed workers
_MAX_RESUBMITS = 3
#: per-file cost, in bytes, used when balancing shards: opening a file costs about as much as
#: reading this many bytes, so many small files weigh more than their size
_FILE_COST_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def _client_of(executor: Any) -> Any:
    return client_of(executor)


def _threads(client: Any) -> dict[str, int]:
    threads = client.nthreads()
    if not threads:
        client.wait_for_workers(1, timeout=30)
        threads = client.nthreads()
    return dict(threads)


def _total_threads(client: Any) -> int:
    return max(1, sum(_threads(client).values()))


# --- is the data there? -----------------------------------------------------------------------


def _check_visible(client: Any, paths: Sequence[str], *, strict: bool) -> None:
    check_visible(client, paths, strict=strict)


def _probes(paths: Sequence[str], limit: int = 64) -> list[str]:
    """A few parent directories standing for a long list of paths."""
    parents = list(dict.fromkeys(os.path.dirname(p) or "." for p in paths))
    if len(parents) > limit:
        step = len(parents) / limit
        parents = [parents[int(i * step)] for i in range(limit)]
    return parents


# --- moving data ------------------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:  # lambdas, closures, notebook classes
        import cloudpickle

        return bytes(cloudpickle.dumps(obj, protocol=5))


def _call_packed(fn: Callable[..., Any], payload: bytes) -> bytes:
    """Run ``fn`` on a worker with pickled arguments and return its result pickled.

    Dask inspects and serializes a task's Python objects one by one (a list of 16,000 result
    tuples takes ~0.4 s); one bytes object moves as a single buffer, 20x faster.
    """
    args, kwargs = pickle.loads(payload)
    return _dumps(fn(*args, **kwargs))


def _submit(client: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``client.submit`` of ``fn(*args, **kwargs)`` (never merged with an identical call)."""
    return client.submit(_call_packed, fn, _dumps((args, kwargs)), pure=False)


def _result(future: Any) -> Any:
    return pickle.loads(future.result())


# --- shards -----------------------------------------------------------------------------------


def balanced_shards(sizes: Sequence[int], shards: int) -> list[list[int]]:
    """Split indices into ``shards`` groups of about equal weight: largest first onto the
    lightest group (greedy LPT). Each group keeps its indices in input order.

    >>> balanced_shards([10_000_000, 1, 1, 8_000_000], 2)
    [[0], [1, 2, 3]]
    """
    shards = max(1, min(shards, len(sizes)))
    heap = [(0, i) for i in range(shards)]
    groups: list[list[int]] = [[] for _ in range(shards)]
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        weight, g = heapq.heappop(heap)
        groups[g].append(index)
        heapq.heappush(heap, (weight + sizes[index] + _FILE_COST_BYTES, g))
    return [sorted(g) for g in groups if g]


def _native_threads(workers: int | None) -> int | None:
    """Rayon threads for one shard on this worker: the caller's choice, else the machine's
    cores shared among the tasks this worker runs at once."""
    if workers is not None:
        return workers
    try:
        from distributed import get_worker

        nthreads = get_worker().state.nthreads
    except Exception:
        return None
    return max(1, (os.cpu_count() or 1) // max(1, nthreads))


def _run_shards(
    client: Any,
    fn: Callable[..., Any],
    shard_args: list[tuple[Any, ...]],
    *,
    weights: list[int] | None = None,
    reporter: Reporter | None = None,
    attempts: int = _MAX_RESUBMITS + 1,
    kwargs: dict[str, Any] | None = None,
) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` once per shard on the cluster; results in shard order.

    Dask already reruns the tasks of a worker that dies; a shard that kills workers again and
    again (``KilledWorker``) is resubmitted up to ``attempts`` times, then reported as
    :class:`WorkerCrashed`. One result per shard is taken, so nothing is counted twice.
    """
    distributed = require_dask()
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    kwargs = kwargs or {}
    weights = weights or [1] * len(shard_args)
    total = sum(weights)
    started = time.perf_counter()
    log.debug("%s: %d shards on the cluster (weights %d to %d)", fn.__name__, len(shard_args),
              min(weights, default=0), max(weights, default=0))
    done = 0
    out: list[Any] = [None] * len(shard_args)
    tries = [1] * len(shard_args)
    futures = {
        _submit(client, fn, *args, **kwargs): i for i, args in enumerate(shard_args)
    }
    pending = distributed.as_completed(list(futures), loop=client.loop)
    try:
        for fut in pending:
            i = futures.pop(fut)
            try:
                out[i] = _result(fut)
            except (KilledWorker, CancelledError) as exc:
                # KilledWorker: the shard took workers down with it; cancelled: the cluster
                # was restarted under it. Either way it runs again, from the start.
                if tries[i] >= attempts:
                    raise WorkerCrashed(
                        f"a shard of {len(shard_args[i][0])} file(s) failed {tries[i]} times "
                        f"on the cluster ({type(exc).__name__}: {exc})"
                    ) from None
                tries[i] += 1
                log.info("%s: shard %d lost (%s); resubmitting (attempt %d of %d)", fn.__name__,
                         i, type(exc).__name__, tries[i], attempts)
                again = _submit(client, fn, *shard_args[i], **kwargs)
                futures[again] = i
                pending.add(again)
                continue
            done += weights[i]
            if reporter is not None:
                reporter.update(done, total)
    except BaseException:
        client.cancel(list(futures))
        raise
    log.debug("%s: %d shards done in %.3f s", fn.__name__, len(shard_args),
              time.perf_counter() - started)
    return out


# --- listing ----------------------------------------------------------------------------------


def _scan_root(root: str, options: dict[str, Any]) -> ScanResult:
    from .scan import FileScanner

    include = options.pop("include", None)
    exclude = options.pop("exclude", None)
    extensions = options.pop("extensions", None)
    min_size = options.pop("min_size", 0)
    max_size = options.pop("max_size", None)
    recursive = options.pop("recursive", True)
    scanner = FileScanner(include, exclude, extensions, min_size, max_size, recursive, **options)
    with reported_by_caller():
        return scanner.scan_result(root)


def _list_tree(roots: list[str], filters: dict[str, Any]) -> tuple[list[str], list[str], list[int]]:
    """Paths, relative paths and sizes under ``roots``."""
    from . import _core
    from .hash import scan_options

    out = _core.scan_files(roots, scan_options(filters), output="rows")
    paths, rels, sizes = out["files"][:3]
    return list(paths), list(rels), list(sizes)


def _sizes(paths: list[str]) -> list[int]:
    out = []
    for p in paths:
        try:
            out.append(os.stat(p).st_size)
        except OSError:
            out.append(0)
    return out


def _on_one_worker(client: Any, fn: Callable[..., Any], *args: Any) -> Any:
    return _result(_submit(client, fn, *args))


def _list_where_visible(client: Any, probe: Sequence[str], fn: Callable[..., Any],
                        *args: Any) -> Any:
    """Listing and stat'ing run here when this machine sees the inputs too (no round trip, no
    file list to move), else on a worker."""
    if probe and all(os.path.exists(p) for p in probe):
        return fn(*args)
    return _on_one_worker(client, fn, *args)


def _roots_of(roots: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(roots, (str, os.PathLike)):
        return [os.fspath(roots)]
    return [os.fspath(r) for r in roots]


# --- scan -------------------------------------------------------------------------------------


def scan(
    client: Any,
    roots: PathLike | Iterable[PathLike],
    *,
    progress: ProgressArg = None,
    **options: Any,
) -> ScanResult:
    """Scan each root on a worker (one task per root) and merge: what ``scan(*roots)`` returns.

    >>> scan(client, ["/shared/a", "/shared/b"], include=["*.csv"], sort=True)   # doctest: +SKIP
    """
    from .scan import FileScanner, ScanResult

    root_list = _roots_of(roots)
    if not root_list:
        raise ValueError("at least one root directory is needed")
    FileScanner(  # the options are checked here, before anything is sent
        options.get("include"), options.get("exclude"), options.get("extensions"),
        options.get("min_size", 0), options.get("max_size"), options.get("recursive", True),
        **{k: v for k, v in options.items()
           if k not in ("include", "exclude", "extensions", "min_size", "max_size", "recursive")},
    )
    _check_visible(client, root_list, strict=True)
    with Reporter(progress, desc="Scanning", unit="root") as rep:
        parts: list[ScanResult] = _run_shards(
            client, _scan_root, [(r, dict(options)) for r in root_list], reporter=rep
        )
    files = [f for part in parts for f in part.files]
    errors = [e for part in parts for e in part.errors]
    special = [s for part in parts for s in part.special]
    if options.get("sort"):
        files.sort(key=lambda f: f.path)
        special.sort(key=lambda s: s[0])
        errors.sort(key=lambda e: e.path)
    files_failed(log, errors)
    return ScanResult(files, errors, special, sum(p.entries_seen for p in parts))


# --- hashing ----------------------------------------------------------------------------------


def _hash_shard(
    paths: list[str],
    algorithm: str,
    workers: int | None,
    sizes: list[int] | None = None,
    head_tail: int | None = None,
) -> list[tuple[Any, ...]]:
    """The native hash job on one shard (run on a worker): raw rows, as ``_core.hash_paths``."""
    from . import _core

    return list(_core.hash_paths(paths, algorithm, sizes=sizes, head_tail=head_tail,
                                 workers=_native_threads(workers)))


def _hash_rows(
    client: Any,
    paths: list[str],
    sizes: list[int],
    algorithm: str,
    workers: int | None,
    reporter: Reporter | None,
    *,
    pass_sizes: bool = False,
    head_tail: int | None = None,
) -> list[tuple[Any, ...]]:
    """Hash ``paths`` in size-balanced shards; rows in the order of ``paths``."""
    if not paths:
        return []
    groups = balanced_shards(sizes, _total_threads(client) * _SHARDS_PER_THREAD)
    args = [
        (
            [paths[i] for i in g],
            algorithm,
            workers,
            [sizes[i] for i in g] if pass_sizes else None,
            head_tail,
        )
        for g in groups
    ]
    weights = [sum(sizes[i] for i in g) + 1 for g in groups]
    parts = _run_shards(client, _hash_shard, args, weights=weights, reporter=reporter)
    rows: list[tuple[Any, ...] | None] = [None] * len(paths)
    for g, part in zip(groups, parts):
        for i, row in zip(g, part):
            rows[i] = row
    return rows  # type: ignore[return-value]


def hash_files(
    client: Any,
    dir_or_paths: PathLike | Iterable[PathLike],
    *,
    algorithm: str = "blake3",
    workers: int | None = None,
    progress: ProgressArg = None,
    cache: PathLike | None = None,
    rebuild_cache: bool = False,
    **scanner_filters: Any,
) -> list[HashResult]:
    """:func:`parallel_file_processor.hash.hash_files` on the cluster: the tree is listed on
    a worker, hashed in size-balanced shards, and merged in the local run's order.

    >>> hash_files(client, "/shared/data", algorithm="sha256")   # doctest: +SKIP

    With ``cache``, the SQLite cache is read and written by this process only (workers just
    hash the files it misses), so it never sees concurrent writers.
    """
    from . import hash as _hash

    if algorithm.lower().replace("-", "_") not in _hash.ALGORITHMS and algorithm.lower() not in (
            "sha-256", "b3", "xxh3", "xxh128", "sha-1"):
        raise ValueError(
            f"unknown algorithm {algorithm!r}; choose one of {', '.join(_hash.ALGORITHMS)}")
    filters = _hash._split_filters(scanner_filters)
    rels: list[str] | None
    if isinstance(dir_or_paths, (str, os.PathLike)) and not _is_file_somewhere(
            client, os.fspath(dir_or_paths)):
        root = os.fspath(dir_or_paths)
        _check_visible(client, [root], strict=True)
        paths, rels, sizes = _list_where_visible(client, [root], _list_tree, [root], filters)
    else:
        if filters:
            raise TypeError("scanner filters apply to a directory, not a list of paths")
        paths = _hash._path_list(dir_or_paths) if isinstance(
            dir_or_paths, (str, os.PathLike)) else [os.fspath(p) for p in dir_or_paths]
        rels = None
        _check_visible(client, _probes(paths), strict=False)
        sizes = _list_where_visible(client, _probes(paths), _sizes, paths)
    with Reporter(progress, desc=f"Hashing ({algorithm})", by_bytes=True) as rep:
        if cache is None:
            # A listed tree passes the sizes it saw, as the local tree job does.
            rows = _hash_rows(client, paths, sizes, algorithm, workers, rep,
                              pass_sizes=rels is not None)
            return _hash._rows_to_results(rows, rels)
        return _hash_with_cache(client, paths, rels, sizes, algorithm, workers, rep, cache,
                                rebuild_cache)


def _is_file_somewhere(client: Any, path: str) -> bool:
    """A single path argument is a directory to list or one file: ask locally, else a worker."""
    if os.path.exists(path):
        return not os.path.isdir(path)
    return bool(_on_one_worker(client, os.path.isfile, path))


def _hash_with_cache(client: Any, paths: list[str], rels: list[str] | None, sizes: list[int],
                     algorithm: str, workers: int | None, rep: Reporter, cache_path: PathLike,
                     rebuild: bool) -> list[HashResult]:
    from . import hash as _hash

    cache = _hash._Cache(cache_path, rebuild=rebuild)
    try:
        known = cache.load(algorithm)
        stats = _list_where_visible(client, _probes(paths), _stats, paths)
        results: list[HashResult | None] = [None] * len(paths)
        todo = []
        for i, (p, st) in enumerate(zip(paths, stats)):
            if st is not None:
                hit = known.get((st[0], st[1]))
                if hit is not None and hit[0] == st[2] and hit[1] == st[3]:
                    results[i] = _hash.HashResult(p, st[2], hit[2], None, None, False, True,
                                                  rels[i] if rels is not None else None)
                    continue
            todo.append(i)
        rows = _hash_rows(client, [paths[i] for i in todo], [sizes[i] for i in todo], algorithm,
                          workers, rep)
        fresh = []
        for i, row in zip(todo, rows):
            path, size, digest, etype, msg, changed, dev, ino, mtime_ns = row
            if etype is not None:
                file_failed(log, path, etype, msg)
            results[i] = _hash.HashResult(path, size, digest, msg, etype, changed, False,
                                          rels[i] if rels is not None else None)
            if digest is not None and not changed:
                fresh.append((dev, ino, size, mtime_ns, digest))
        cache.store(algorithm, fresh)
        return [r for r in results if r is not None]
    finally:
        cache.close()


def _stats(paths: list[str]) -> list[tuple[int, int, int, int] | None]:
    from .hash import file_identity

    return [file_identity(p) for p in paths]


# --- duplicates -------------------------------------------------------------------------------


def find_duplicates(
    client: Any,
    root: PathLike | Iterable[PathLike],
    *,
    algorithm: str = "blake3",
    include_empty: bool = False,
    partial_bytes: int = 16 * 1024,
    workers: int | None = None,
    progress: ProgressArg = None,
    **scanner_filters: Any,
) -> pd.DataFrame:
    """:func:`parallel_file_processor.hash.find_duplicates` on the cluster: the native search
    (list, group by size, hash heads and tails, then whole files where still needed) runs on
    one worker that sees the files, on all its cores; the result is what a local run gives.

    >>> find_duplicates(client, "/shared/photos").attrs["reclaimable_bytes"]   # doctest: +SKIP
    """
    from . import hash as _hash

    options = _hash.scan_options(scanner_filters)
    roots = _roots_of(root)
    _check_visible(client, roots, strict=True)
    with Reporter(progress, desc="Finding duplicates", unit="search") as rep:
        out = _on_one_worker(client, _duplicates_job, roots, options, algorithm, include_empty,
                             partial_bytes, workers)
        rep.update(1, 1)
    return _hash.duplicates_frame(out)


def _duplicates_job(roots: list[str], options: Any, algorithm: str, include_empty: bool,
                    partial_bytes: int, workers: int | None) -> dict[str, Any]:
    from . import _core

    out: dict[str, Any] = _core.find_duplicates(
        roots, options, algorithm, include_empty=include_empty, partial_bytes=partial_bytes,
        workers=_native_threads(workers))
    return out


# --- extraction -------------------------------------------------------------------------------


def _extract_shard(archives: list[str], output_dir: str, options: dict[str, Any]) -> list[Any]:
    from . import extract

    options = dict(options)
    options["workers"] = _native_threads(options.get("workers"))
    with reported_by_caller():
        return extract.extract_zips(archives, output_dir, **options)


def extract_zips(
    client: Any,
    dir_or_paths: PathLike | Iterable[PathLike],
    output_dir: PathLike,
    *,
    progress: ProgressArg = None,
    **options: Any,
) -> list[Any]:
    """:func:`parallel_file_processor.extract.extract_zips` on the cluster: archives in
    size-balanced shards, one :class:`ArchiveResult` per archive in input order. Archives that
    share a target folder (``layout="flat"``, equal names) stay in one shard, so conflicts are
    decided as locally. ``output_dir`` must be shared too.

    >>> extract_zips(client, "/shared/zips", "/shared/out")   # doctest: +SKIP
    """
    from . import extract

    filter_keys = set(options) - {
        "layout", "if_exists", "keep_partial", "members", "exclude_members", "max_total_size",
        "max_ratio", "max_entries", "workers"}
    filters = {k: options.pop(k) for k in filter_keys}
    if options.get("if_exists", "error") not in ("error", "skip", "overwrite"):
        raise ValueError(
            f"if_exists must be 'error', 'skip' or 'overwrite', not {options['if_exists']!r}")
    if isinstance(dir_or_paths, (str, os.PathLike)):
        _check_visible(client, [os.fspath(dir_or_paths)], strict=True)
        archives = [os.fspath(a) for a in
                    _list_where_visible(client, [os.fspath(dir_or_paths)], extract._archives,
                                        dir_or_paths, filters)]
    else:
        archives = [os.fspath(a) for a in extract._archives(dir_or_paths, filters)]
        _check_visible(client, _probes(archives), strict=False)
    out_dir = Path(output_dir)
    _check_visible(client, [os.fspath(out_dir.parent if not out_dir.exists() else out_dir)],
                   strict=True)
    targets, _merge = extract._targets([Path(a) for a in archives], out_dir,
                                       options.get("layout", "per-archive"))
    if not archives:
        out_dir.mkdir(parents=True, exist_ok=True)
        return []
    sizes = _list_where_visible(client, _probes(archives), _sizes, archives)
    # Archives with one target are one unit: never extracted by two workers at once.
    units: dict[Path, list[int]] = defaultdict(list)
    for i, t in enumerate(targets):
        units[t].append(i)
    unit_list = list(units.values())
    groups = balanced_shards([sum(sizes[i] for i in u) for u in unit_list],
                             _total_threads(client) * _SHARDS_PER_THREAD)
    shards = [sorted(i for u in g for i in unit_list[u]) for g in groups]
    with Reporter(progress, desc="Extracting", unit="archive") as rep:
        parts = _run_shards(
            client, _extract_shard,
            [([archives[i] for i in s], os.fspath(out_dir), options) for s in shards],
            weights=[len(s) for s in shards], reporter=rep,
        )
    results: list[Any] = [None] * len(archives)
    for s, part in zip(shards, parts):
        for i, r in zip(s, part):
            results[i] = r
            if r.status == "failed":
                file_failed(log, r.archive, r.error_type, r.error)
    return results


# --- aggregation ------------------------------------------------------------------------------


def _read_tables(
    files: list[str],
    labels: list[str],
    reader: str,
    read_kwargs: dict[str, Any],
    on_bad_lines: str,
) -> tuple[list[tuple[str, Any]], Any]:
    """Read each file as the local ``aggregate`` does (run on a worker): ``(label, table or
    None)`` per file, and what the reads reported."""
    from .aggregate import AggregateReport, _detect_kind, _readers
    from .types import FileError

    report = AggregateReport()
    readers: dict[str, Callable[[Path, str], Any]] = {}
    out: list[tuple[str, Any]] = []
    for f, label in zip(files, labels):
        p = Path(f)
        kind = _detect_kind(p, reader)
        if kind not in readers:
            readers[kind] = _readers(kind, read_kwargs, on_bad_lines, report)
        try:
            out.append((label, readers[kind](p, label)))
        except Exception as exc:
            report.failed.append(FileError(p, type(exc).__name__, str(exc).strip()))
            out.append((label, None))
    return out, report


def _collect(files_or_dir: Any, reader: str) -> tuple[list[str], list[str], list[int]]:
    """Files to merge, their labels and sizes."""
    from .aggregate import _collect_files

    files, root = _collect_files(files_or_dir, reader)
    labels = []
    for p in files:
        label = str(p)
        if root is not None:
            try:
                label = str(p.relative_to(root))
            except ValueError:
                pass
        labels.append(label)
    paths = [os.fspath(p) for p in files]
    return paths, labels, _sizes(paths)


def aggregate(
    client: Any,
    files_or_dir: PathLike | Iterable[PathLike],
    *,
    lazy: bool = False,
    reader: str = "auto",
    schema: str = "union",
    dtype_conflict: str = "promote",
    on_bad_lines: str = "error",
    workers: int | None = None,
    output_path: PathLike | None = None,
    errors_path: PathLike | None = None,
    overwrite: bool = False,
    source_column: str | None = "_source_file",
    progress: ProgressArg = None,
    **read_kwargs: Any,
) -> Any:
    """:func:`parallel_file_processor.aggregate.aggregate` on the cluster.

    Workers parse the files (in size-balanced shards); the client unifies the schemas and
    builds the same DataFrame a local run does. ``lazy=True`` returns a ``dask.dataframe``
    instead, one partition per file, for data larger than this machine's memory: the workers
    first read each file's schema so all partitions agree, and read the data again when it
    is computed.

    >>> aggregate(client, "/shared/csv", lazy=True).groupby("k").v.sum().compute()  # doctest: +SKIP
    """
    from .aggregate import AggregateReport, check_policies, merge_tables

    check_policies(schema=schema, dtype_conflict=dtype_conflict, on_bad_lines=on_bad_lines,
                   reader=reader)

    if isinstance(files_or_dir, (str, os.PathLike)):
        _check_visible(client, [os.fspath(files_or_dir)], strict=True)
        target: Any = os.fspath(files_or_dir)
    else:
        target = [os.fspath(p) for p in files_or_dir]
        _check_visible(client, _probes(target), strict=False)
    probe = [target] if isinstance(target, str) else _probes(target)
    files, labels, sizes = _list_where_visible(client, probe, _collect, target, reader)
    from .aggregate import without_outputs

    _, own = without_outputs([Path(f) for f in files], [output_path, errors_path])
    skipped = [labels[i] for i, f in enumerate(files) if Path(f) in own]
    if own:  # this run's output is never one of its inputs
        keep = [i for i, f in enumerate(files) if Path(f) not in own]
        files, labels, sizes = ([x[i] for i in keep] for x in (files, labels, sizes))
    if lazy:
        if output_path is not None or errors_path is not None:
            raise ValueError("lazy=True returns a dask DataFrame: write it with its own to_*()")
        return _lazy_frame(client, files, labels, sizes, reader, schema, dtype_conflict,
                           on_bad_lines, source_column, read_kwargs)
    report = AggregateReport(files=len(files), skipped_outputs=skipped)
    tables: list[tuple[str, Any]] = []
    if files:
        groups = balanced_shards(sizes, _total_threads(client) * _SHARDS_PER_THREAD)
        with Reporter(progress, desc="Reading", unit="file") as rep:
            parts = _run_shards(
                client, _read_tables,
                [([files[i] for i in g], [labels[i] for i in g], reader, read_kwargs,
                  on_bad_lines) for g in groups],
                weights=[len(g) for g in groups], reporter=rep,
            )
        read: list[tuple[str, Any]] = [("", None)] * len(files)
        fragments: list[Any] = [None] * len(files)
        for g, (part, fragment) in zip(groups, parts):
            for i, pair in zip(g, part):
                read[i] = pair
            fragments[g[0]] = fragment
        for fragment in (f for f in fragments if f is not None):
            report.failed.extend(fragment.failed)
            report.empty_files.extend(fragment.empty_files)
            report.lost_rows.update(fragment.lost_rows)
            report.bad_lines.extend(fragment.bad_lines)
        order = {label: n for n, label in enumerate(labels)}
        report.empty_files.sort(key=lambda label: order.get(label, 0))
        position = {f: n for n, f in enumerate(files)}
        report.failed.sort(key=lambda e: position.get(os.fspath(e.path), 0))
        tables = [(label, t) for label, t in read if t is not None]
    return merge_tables(tables, report, schema=schema, dtype_conflict=dtype_conflict,
                        source_column=source_column, output_path=output_path,
                        overwrite=overwrite, errors_path=errors_path)


def _read_schemas(files: list[str], labels: list[str], reader: str, read_kwargs: dict[str, Any],
                  on_bad_lines: str) -> list[Any]:
    """Each file's schema, as an empty table (None when the file cannot be read)."""
    tables, _ = _read_tables(files, labels, reader, read_kwargs, on_bad_lines)
    return [t.schema.empty_table() if t is not None else None for _, t in tables]


def _read_partition(path: str, label: str, reader: str, read_kwargs: dict[str, Any],
                    on_bad_lines: str, target: Any, source_column: str | None) -> pd.DataFrame:
    """One file as a pandas partition with the agreed schema (empty when it cannot be read)."""
    import pyarrow as pa

    from .aggregate import _with_source

    [(_, table)], _report = _read_tables([path], [label], reader, read_kwargs, on_bad_lines)
    if table is None or not table.num_columns:
        table = target.empty_table()
    else:
        arrays = []
        for f in target:
            if f.name in table.column_names:
                col = table.column(f.name)
                arrays.append(col if col.type == f.type else col.cast(f.type, safe=False))
            else:
                arrays.append(pa.nulls(table.num_rows, type=f.type))
        table = pa.Table.from_arrays(arrays, schema=target)
    if source_column:
        table = _with_source(table, label, source_column)
    return table.to_pandas()


def _lazy_frame(client: Any, files: list[str], labels: list[str], sizes: list[int], reader: str,
                schema: str, dtype_conflict: str, on_bad_lines: str, source_column: str | None,
                read_kwargs: dict[str, Any]) -> Any:
    import dask.dataframe as dd

    from .aggregate import AggregateReport, _unify, _with_source

    if not files:
        import pandas as pd

        return dd.from_pandas(pd.DataFrame(), npartitions=1)
    groups = balanced_shards(sizes, _total_threads(client) * _SHARDS_PER_THREAD)
    parts = _run_shards(
        client, _read_schemas,
        [([files[i] for i in g], [labels[i] for i in g], reader, read_kwargs, on_bad_lines)
         for g in groups],
    )
    empties: list[Any] = [None] * len(files)
    for g, part in zip(groups, parts):
        for i, t in zip(g, part):
            empties[i] = t
    unified = _unify([(labels[i], t) for i, t in enumerate(empties) if t is not None],
                          schema, dtype_conflict, AggregateReport())
    if not unified:
        import pandas as pd

        return dd.from_pandas(pd.DataFrame(), npartitions=1)
    target = unified[0][1].schema
    meta = target.empty_table()
    if source_column:
        meta = _with_source(meta, "", source_column)
    meta_df = meta.to_pandas()
    if source_column:
        from dask.dataframe.utils import clear_known_categories

        # one category per partition: the union is only known once computed
        meta_df = clear_known_categories(meta_df, cols=[source_column])
    import dask

    # Dask would turn the string columns into another string dtype than a local run gives.
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            _read_partition, files, labels, reader=reader, read_kwargs=read_kwargs,
            on_bad_lines=on_bad_lines, target=target, source_column=source_column, meta=meta_df,
            enforce_metadata=False,
        )
