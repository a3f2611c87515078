"""Merging many tabular files into one pandas DataFrame, on this machine or a cluster.

:func:`aggregate` reads CSV/TSV/JSON Lines/Parquet files (:mod:`.tables`) and spreadsheets
(:mod:`.sheets`) as Arrow tables, unifies their schemas by explicit policies (:mod:`.schema`),
concatenates them in Arrow and converts to pandas once. With ``client=`` the workers read the
files in size-balanced shards (:func:`read_plan`) and the same frame is merged here;
``lazy=True`` gives a ``dask.dataframe`` instead. :func:`aggregate_csv` is the seed's
``FileProcessor.aggregate_csv``.

The seed's :class:`ResultAggregator` lives in :mod:`.results` and atomic writing in
:mod:`.output`; both are importable from here as they always were. The readers load on first
use.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .log import files_failed
from .output import PathLike, atomic_writer, require_pyarrow, without_outputs, write_frame
from .progress import ProgressArg, Reporter
from .schema import AggregateReport, conform, unify, with_source
from .types import FileError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .job import Plan
    from .results import ResultAggregator
    from .runners import Runner

__all__ = [
    "ResultAggregator",
    "AggregateReport",
    "aggregate",
    "aggregate_csv",
    "atomic_writer",
    "check_policies",
    "aggregate_on",
    "collect_files",
    "merge_tables",
    "read_files",
    "read_plan",
    "read_shard",
    "ReadOptions",
]

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    # The seed's ResultAggregator, importable from here as it always was, loads on first use:
    # ``import parallel_file_processor`` imports this module and stays cheap.
    if name == "ResultAggregator":
        from .results import ResultAggregator

        return ResultAggregator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ReadOptions(NamedTuple):
    """How files are read, here or in a cluster's shard (see :func:`aggregate`)."""

    reader: str = "auto"
    read_kwargs: dict[str, Any] = {}  # readers copy it, never change it
    on_bad_lines: str = "error"
    source_column: str | None = "_source_file"
    workers: int | None = None


def _thread_pool(workers: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor  # on first use: the package imports fast

    return ThreadPoolExecutor(max_workers=workers)


def aggregate(
    files_or_dir: PathLike | Iterable[PathLike],
    *,
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
    client: Any = None,
    lazy: bool = False,
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Merge many CSV/TSV/JSON Lines/Parquet files and spreadsheets into one pandas DataFrame.

    >>> df = aggregate("data/monthly", schema="union", on_bad_lines="skip")   # doctest: +SKIP
    >>> df.attrs["report"].lost_rows, df["_source_file"].unique()             # doctest: +SKIP
    >>> aggregate("reports", sheet="all", sep=";", decimal=",")               # doctest: +SKIP

    Args:
        files_or_dir: a directory (scanned for the reader's extensions) or file paths.
        reader: ``"auto"`` (by extension), ``"csv"``, ``"tsv"``, ``"jsonl"``, ``"parquet"`` or
            ``"excel"`` (.xlsx, .xlsm, .xls, .ods).
        schema: ``"union"`` (all columns; missing ones null; order of first appearance),
            ``"strict"`` (every file must have the first file's columns, else SchemaError),
            ``"first"`` (the first file's columns; extra columns dropped and reported).
        dtype_conflict: ``"promote"`` (int+float -> float; what cannot be promoted becomes
            string), ``"string"`` (any disagreement -> string), ``"error"`` (SchemaError).
        on_bad_lines: ``"error"`` (the file fails and is reported; the others go on),
            ``"skip"`` (drop ragged rows, count them per file), ``"collect"`` (drop and keep
            their text in the report).
        output_path: also write the result (CSV, TSV, JSON Lines or Parquet by extension).
        errors_path: write the files that failed (path, error type, message) as CSV.
        source_column: name of the column holding each row's file (None: no column).
        read_kwargs: reader options, as ``pandas.read_csv`` / ``pandas.read_excel`` take them:
            ``sep`` (``None``: sniffed per file), ``decimal``, ``thousands``, ``encoding``,
            ``header``, ``skiprows``, ``na_values``... are read natively; other options make
            pandas read those files. ``sheet`` (a name, an index or ``"all"``, which adds a
            ``_sheet`` column) picks the sheets of spreadsheets; text options do not apply to
            spreadsheets and ``sheet`` does not apply to text files.

    The report (files that failed, forced a type change, lost rows...) is in
    ``df.attrs["report"]`` (an :class:`AggregateReport`). Unreadable files never stop the
    merge. ``output_path`` and ``errors_path`` are never read as inputs, even when they lie
    in the folder merged (``report.skipped_outputs``). Memory: tables are concatenated in
    Arrow and converted to pandas once.
    """
    check_policies(schema=schema, dtype_conflict=dtype_conflict, on_bad_lines=on_bad_lines,
                   reader=reader)
    options = ReadOptions(reader, read_kwargs, on_bad_lines, source_column, workers)
    if client is not None:
        from .job import shard_runner  # the cluster machinery loads when it is used

        with shard_runner(client) as runner:
            frame: pd.DataFrame = aggregate_on(
                runner, files_or_dir, options, schema=schema, dtype_conflict=dtype_conflict,
                output_path=output_path, errors_path=errors_path, overwrite=overwrite,
                lazy=lazy, progress=progress)
        return frame
    paths, labels = collect_files(files_or_dir, reader)
    keep, skipped = _inputs(paths, labels, [output_path, errors_path])
    report = AggregateReport(files=len(keep), skipped_outputs=skipped)
    files = [Path(paths[i]) for i in keep]
    labels = [labels[i] for i in keep]
    read = read_files(files, labels, options, report, progress=progress)
    tables = [(label, t) for label, t in zip(labels, read) if t is not None]
    return merge_tables(tables, report, schema=schema, dtype_conflict=dtype_conflict,
                        source_column=source_column, output_path=output_path,
                        overwrite=overwrite, errors_path=errors_path)


def check_policies(*, schema: str, dtype_conflict: str, on_bad_lines: str, reader: str) -> None:
    """Reject an unknown policy before any file is read; pyarrow must be installed."""
    for name, value, allowed in (
        ("schema", schema, ("union", "strict", "first")),
        ("dtype_conflict", dtype_conflict, ("promote", "string", "error")),
        ("on_bad_lines", on_bad_lines, ("error", "skip", "collect")),
        ("reader", reader, ("auto", "csv", "tsv", "jsonl", "parquet", "excel")),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    require_pyarrow("aggregate()")


def collect_files(files_or_dir: PathLike | Iterable[PathLike], reader: str
                  ) -> tuple[list[str], list[str]]:
    """The files to merge and how the report and the source column name them: a directory is
    scanned for the reader's extensions (sorted; labels relative to it), a path is itself."""
    if isinstance(files_or_dir, (str, os.PathLike)):
        root = Path(files_or_dir)
        if root.is_dir():
            from .scan import FileScanner
            from .tables import KIND_EXTENSIONS

            exts = KIND_EXTENSIONS.get(reader)
            if exts is None:  # auto: every tabular kind
                exts = set().union(*KIND_EXTENSIONS.values())
            files = [f.path for f in FileScanner(extensions=exts, sort=True).list_files(root)]
            labels = []
            for p in files:
                try:
                    labels.append(str(p.relative_to(root)))
                except ValueError:
                    labels.append(str(p))
            return [os.fspath(p) for p in files], labels
        if not root.exists():
            raise FileNotFoundError(f"not found: {root}")
        return [os.fspath(root)], [str(root)]
    files = [Path(p) for p in files_or_dir]
    return [os.fspath(p) for p in files], [str(p) for p in files]


def _inputs(paths: list[str], labels: list[str], outputs: list[PathLike | None]
            ) -> tuple[list[int], list[str]]:
    """Which files to read, and the labels of those left out as this run's own outputs."""
    _, own = without_outputs([Path(p) for p in paths], outputs)
    if not own:
        return list(range(len(paths))), []
    keep = [i for i, p in enumerate(paths) if Path(p) not in own]
    return keep, [labels[i] for i, p in enumerate(paths) if Path(p) in own]


def reader_for(kind: str, read_kwargs: dict[str, Any], on_bad_lines: str,
               report: AggregateReport) -> Callable[[Path, str], pa.Table]:
    """``read(path, label)`` for one kind of file, recording what it finds in ``report``."""
    if kind == "excel":
        from .sheets import sheet_reader

        return sheet_reader(read_kwargs, report)
    from .tables import text_reader

    return text_reader(kind, read_kwargs, on_bad_lines, report)


def read_files(files: list[Path], labels: list[str], options: ReadOptions,
               report: AggregateReport, *, progress: ProgressArg = None
               ) -> list[pa.Table | None]:
    """Each file as an Arrow table, or None when it could not be read (recorded in
    ``report.failed``, in file order; the others go on): how every merge reads, here or in a
    cluster's shard.

    Arrow parses each text file on its own thread pool; a few files in flight keep it fed.
    Workbooks are read meanwhile by one native call on this thread (rayon, GIL released), so
    Ctrl-C stops the native reader at once.
    """
    from .sheets import read_workbooks, sheet_options
    from .tables import detect_kind

    reader, read_kwargs, on_bad_lines, source_column, workers = options
    kinds = [detect_kind(p, reader) for p in files]
    readers: dict[str, Callable[[Path, str], Any]] = {}
    for kind in kinds:  # reader factories are created up front: not thread-safe to build
        if kind not in readers:
            readers[kind] = reader_for(kind, read_kwargs, on_bad_lines, report)
    native = sheet_options(read_kwargs) if "excel" in readers else None
    batch = [i for i, k in enumerate(kinds) if k == "excel"] if native is not None else []
    in_batch = set(batch)
    singles = [i for i in range(len(files)) if i not in in_batch]
    results: list[Any] = [None] * len(files)

    def read_one(i: int) -> Any:
        try:
            return readers[kinds[i]](files[i], labels[i])
        except Exception as exc:  # the file is reported; the merge goes on
            return exc

    n_workers = workers or min(8, os.cpu_count() or 2)
    lock = threading.Lock()
    done = {"singles": 0, "batch": 0}
    with (
        Reporter(progress, desc="Reading", unit="file") as rep,
        _thread_pool(n_workers) as pool,
    ):
        def tick(part: str, n: int | None = None) -> None:
            with lock:
                done[part] = done[part] + 1 if n is None else n
                rep.update(done["singles"] + done["batch"], len(files))

        futures = [pool.submit(read_one, i) for i in singles]
        try:
            if rep.active:
                for f in futures:
                    f.add_done_callback(lambda _f: tick("singles"))
            if batch:
                books = read_workbooks(
                    [files[i] for i in batch], [labels[i] for i in batch], native or {}, report,
                    workers, (lambda items, _t, _b, _bt: tick("batch", items))
                    if rep.active else None)
                for i, result in zip(batch, books):
                    results[i] = result
            for i, f in zip(singles, futures):
                results[i] = f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    out: list[pa.Table | None] = []
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            report.failed.append(FileError(files[i], type(result).__name__, str(result).strip()))
            result = None
        elif (result is not None and source_column
              and source_column in result.column_names):
            report.failed.append(FileError(files[i], "SchemaError", (
                f"already has a column named {source_column!r}, the column naming each "
                "row's file (a merged output?); pass source_column=None or another name")))
            result = None
        out.append(result)
    # Threads finish in any order: the report lists files in input order.
    order = {label: n for n, label in enumerate(labels)}
    report.empty_files.sort(key=lambda label: order.get(label, len(order)))
    report.bad_lines.sort(key=lambda bad: order.get(bad[0], len(order)))
    return out


def merge_tables(tables: list[tuple[str, Any]], report: AggregateReport, *, schema: str,
                 dtype_conflict: str, source_column: str | None,
                 output_path: PathLike | None, overwrite: bool,
                 errors_path: PathLike | None) -> pd.DataFrame:
    """Unify the read tables (``(label, pyarrow.Table)``, emptied as it goes), concatenate them
    in Arrow, convert to pandas once, and write the outputs: the end of every aggregation,
    wherever the files were read."""
    import pandas as pd
    import pyarrow as pa

    unified = unify(tables, schema, dtype_conflict, report)
    files_failed(log, report.failed)
    tables.clear()
    if unified:
        table = pa.concat_tables(
            [with_source(t, label, source_column) if source_column else t for label, t in unified]
        )
        del unified
        if table.num_rows:
            # a column with no value in any file: float NaN, as pandas reads it
            table = pa.Table.from_arrays(
                [c.cast(pa.float64()) if pa.types.is_null(c.type) else c for c in table.columns],
                names=table.column_names)
        report.rows = table.num_rows
        # booleans and times with gaps become Python objects: pandas marks the gaps NaN
        gappy = [f.name for f, c in zip(table.schema, table.columns) if c.null_count
                 and (pa.types.is_boolean(f.type) or pa.types.is_time(f.type))]
        df = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
        for name in gappy:
            col = df[name].astype(object)
            col[col.isna()] = float("nan")
            df[name] = col
    else:
        df = pd.DataFrame()
    df.attrs["report"] = report
    if output_path is not None:
        write_frame(df, output_path, overwrite=overwrite)
    if errors_path is not None:
        write_frame(
            pd.DataFrame(
                [(str(e.path), e.error_type, e.message) for e in report.failed],
                columns=["path", "error_type", "message"],
            ),
            errors_path,
            overwrite=True,
            fmt="csv",
        )
    return df



# --- on a cluster ------------------------------------------------------------------------------


def aggregate_on(runner: Runner, files_or_dir: PathLike | Iterable[PathLike],
                 options: ReadOptions | None = None, *,
                 schema: str = "union", dtype_conflict: str = "promote",
                 output_path: PathLike | None = None, errors_path: PathLike | None = None,
                 overwrite: bool = False, lazy: bool = False, progress: ProgressArg = None
                 ) -> Any:
    """:func:`aggregate` on a runner's workers (``options``: how to read, as
    :class:`ReadOptions`): they read the files in size-balanced shards; the schemas are
    unified and the frame built here, as a local run builds it."""
    from .job import SHARDS_PER_WORKER, execute, file_sizes, probes, where_visible

    options = options or ReadOptions()
    if isinstance(files_or_dir, (str, os.PathLike)):
        target: Any = os.fspath(files_or_dir)
        runner.check_visible([target], strict=True)
        probe = [target]
    else:
        target = [os.fspath(p) for p in files_or_dir]
        probe = probes(target)
        runner.check_visible(probe, strict=False)
    paths, labels = where_visible(runner, probe, collect_files, target, options.reader)
    keep, skipped = _inputs(paths, labels, [output_path, errors_path])
    paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    sizes = where_visible(runner, probes(paths), file_sizes, paths)
    shards = runner.workers * SHARDS_PER_WORKER
    if lazy:
        if output_path is not None or errors_path is not None:
            raise ValueError("lazy=True returns a dask DataFrame: write it with its own to_*()")
        return _lazy_frame(runner, paths, labels, sizes, options, schema, dtype_conflict, shards)
    report = AggregateReport(files=len(paths), skipped_outputs=skipped)
    read = execute(read_plan(paths, labels, sizes, options, report, shards), runner,
                   progress=progress)
    tables = [(label, t) for label, t in zip(labels, read) if t is not None]
    return merge_tables(tables, report, schema=schema, dtype_conflict=dtype_conflict,
                        source_column=options.source_column, output_path=output_path,
                        overwrite=overwrite, errors_path=errors_path)


def read_plan(paths: list[str], labels: list[str], sizes: list[int], options: ReadOptions,
              report: AggregateReport, shards: int, *, schemas_only: bool = False
              ) -> Plan[Any, Any, list[Any]]:
    """Reading files as a job: about ``shards`` shards of equal size, each read as
    :func:`read_files` reads; the tables come back in file order and what each shard
    recorded is added to ``report`` (in file order too). ``schemas_only``: empty tables with
    each file's schema (nothing else moves)."""
    from .job import Plan, balanced_shards, scatter

    groups = balanced_shards(sizes, shards) if paths else []

    def merge(parts: list[tuple[list[Any], AggregateReport]]) -> list[Any]:
        for _, fragment in parts:
            report.extend(fragment)
        position = {p: n for n, p in enumerate(paths)}
        report.failed.sort(key=lambda e: position.get(os.fspath(e.path), 0))
        order = {label: n for n, label in enumerate(labels)}
        report.empty_files.sort(key=lambda label: order.get(label, len(order)))
        report.bad_lines.sort(key=lambda bad: order.get(bad[0], len(order)))
        return scatter(groups, [tables for tables, _ in parts], len(paths))

    return Plan([([paths[i] for i in g], [labels[i] for i in g], options, schemas_only)
                 for g in groups], read_shard, merge, weights=[len(g) for g in groups],
                desc="Reading", unit="file")


def read_shard(shard: tuple[list[str], list[str], ReadOptions, bool]
               ) -> tuple[list[Any], AggregateReport]:
    """One shard of :func:`read_plan`, on a worker: its tables (or their empty schemas) and
    what reading them recorded."""
    from .runners import native_threads

    paths, labels, options, schemas = shard
    report = AggregateReport()
    tables = read_files([Path(p) for p in paths], labels,
                        options._replace(workers=native_threads(options.workers)), report)
    if schemas:
        tables = [t.schema.empty_table() if t is not None else None for t in tables]
    return tables, report


def read_partition(path: str, label: str, options: ReadOptions, target: Any) -> pd.DataFrame:
    """One file as a pandas partition with the agreed schema (empty when it cannot be read)."""
    [table] = read_files([Path(path)], [label], options, AggregateReport())
    if table is None or not table.num_columns:
        table = target.empty_table()
    else:
        table = conform(table, target)
    source_column = options.source_column
    if source_column:
        table = with_source(table, label, source_column)
    return table.to_pandas()


def _lazy_frame(runner: Runner, paths: list[str], labels: list[str], sizes: list[int],
                options: ReadOptions, schema: str, dtype_conflict: str, shards: int) -> Any:
    """A ``dask.dataframe``, a partition per file: the workers read each file's schema first
    so all partitions agree, then the data when it is computed."""
    from .job import execute
    from .runners.dask import lazy_frame

    report = AggregateReport()
    empties = execute(read_plan(paths, labels, sizes, options, report, shards,
                                schemas_only=True), runner)
    unified = unify([(labels[i], t) for i, t in enumerate(empties) if t is not None], schema,
                    dtype_conflict, AggregateReport())
    if not unified:
        return lazy_frame(read_partition, [])
    target = unified[0][1].schema
    meta = target.empty_table()
    source_column = options.source_column
    if source_column:
        meta = with_source(meta, "", source_column)
    # one category per partition: the union is only known once computed
    return lazy_frame(read_partition, paths, labels, options=options, target=target,
                      meta=meta.to_pandas(),
                      unknown_categories=[source_column] if source_column else [])


def aggregate_csv(
    directory: PathLike,
    output_path: PathLike | None = None,
    *,
    overwrite: bool = True,
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read and combine every CSV file under ``directory`` (the seed's
    ``FileProcessor.aggregate_csv``), with a ``_source_file`` column naming each row's file.

    Spreadsheets are read too when asked for: with ``sheet=`` (or ``sheet_name=``), or
    ``reader="auto"``, the .xlsx/.xlsm/.xls/.ods files under ``directory`` are merged with the
    CSV files (a workbook given as the path itself is always read as one). Files that cannot
    be read are left out and reported in ``df.attrs["report"]``; the seed's ``output_path`` is
    written atomically. Other :func:`aggregate` options pass through.
    """
    options = {
        k: read_kwargs.pop(k)
        for k in ("schema", "dtype_conflict", "on_bad_lines", "workers", "errors_path", "progress",
                  "source_column")
        if k in read_kwargs
    }
    wants_sheets = "sheet" in read_kwargs or "sheet_name" in read_kwargs
    reader = read_kwargs.pop("reader", "auto" if wants_sheets else "csv")
    from .tables import SPREADSHEET_EXTENSIONS

    if reader == "csv" and Path(directory).suffix.lower() in SPREADSHEET_EXTENSIONS \
            and Path(directory).is_file():
        reader = "excel"
    return aggregate(
        directory,
        reader=reader,
        output_path=output_path,
        overwrite=overwrite,
        **options,
        **read_kwargs,
    )
