"""From results to what users act on: DataFrames, atomic exports, merged tabular files.

* :class:`ResultAggregator` is the seed's class (``to_dataframe``, ``summary``, ``export_csv``,
  ``export_json``, ``combine_dataframes``) plus Parquet and JSON Lines exports.
* :func:`aggregate` merges many CSV/TSV/JSON Lines/Parquet files into one pandas DataFrame:
  files are read in parallel by pyarrow, concatenated in Arrow and converted to pandas once,
  with explicit policies for differing columns, type conflicts and bad lines.
* :func:`aggregate_csv` is the seed's ``FileProcessor.aggregate_csv``.

Every file written here is written atomically (a temporary file in the same directory, then
``os.replace``), and an existing file is only replaced when ``overwrite=True``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import MissingExtraError, SchemaError, TargetExistsError
from .log import files_failed
from .progress import ProgressArg, Reporter
from .types import BatchResult, FileError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ResultAggregator", "aggregate", "aggregate_csv", "atomic_writer", "AggregateReport"]

PathLike = str | os.PathLike[str]

log = logging.getLogger(__name__)


# --- atomic output ---------------------------------------------------------------------------


@contextmanager
def atomic_writer(
    path: PathLike, mode: str = "w", *, overwrite: bool = False, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step.

    On any error the temporary file is removed and ``path`` is left as it was. Raises
    :class:`TargetExistsError` when ``path`` exists and ``overwrite`` is false.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise TargetExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        _name(exc, target)
        raise
    try:
        binary = "b" in mode
        with os.fdopen(
            fd, mode, encoding=None if binary else encoding, newline=None if binary else ""
        ) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:  # a full disk names no file: name the one being written
        Path(tmp).unlink(missing_ok=True)
        _name(exc, target)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _name(exc: OSError, target: Path) -> None:
    exc.filename, exc.filename2 = os.fspath(target), None


def write_frame(
    df: pd.DataFrame, path: PathLike, *, overwrite: bool, fmt: str | None = None
) -> Path:
    target = Path(path)
    if df.attrs:  # writers serialise attrs (Parquet metadata); the report is not for the file
        df = df.copy(deep=False)
        df.attrs = {}
    fmt = fmt or {
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
        ".tsv": "tsv",
    }.get(target.suffix.lower(), "csv")
    if fmt == "parquet":
        _require_pyarrow("Parquet output")
        with atomic_writer(target, "wb", overwrite=overwrite) as f:
            df.to_parquet(f, index=False)
    elif fmt == "jsonl":
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_json(f, orient="records", lines=True, date_format="iso", default_handler=str)
    elif fmt == "json":
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_json(f, orient="records", date_format="iso", indent=2, default_handler=str)
    else:
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_csv(f, index=False, sep="\t" if fmt == "tsv" else ",")
    return target


def _require_pyarrow(what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError(
            f"{what} needs pyarrow: pip install 'parallel-file-processor[parquet]'"
        ) from None
    return pyarrow


# --- results -------------------------------------------------------------------------------


class ResultAggregator:
    """Aggregate and export batch processing results (the seed's class).

    Exports replace their file as the seed's did, but atomically (a temporary file renamed
    into place once complete); ``overwrite=False`` refuses an existing file instead.

    >>> from parallel_file_processor import ParallelProcessor
    >>> batch = ParallelProcessor(lambda x: {"double": 2 * x}).process([1, 2, 3])
    >>> ResultAggregator(batch).to_dataframe()["result_double"].tolist()
    [2, 4, 6]
    """

    def __init__(self, batch_result: BatchResult[Any]) -> None:
        self.batch_result = batch_result

    def to_dataframe(self) -> pd.DataFrame:
        """One row per item: the seed's columns (file_path, file_name, file_size, success,
        duration_seconds, error) plus status, error_type, attempts, worker_id, and the keys of
        dict results flattened as ``result_<key>`` (keys starting with ``_`` left out)."""
        import pandas as pd

        rows = []
        for r in self.batch_result.results:
            path = r.file_info.path
            is_file = str(path) not in ("", ".")
            row: dict[str, Any] = {
                "file_path": str(path) if is_file else None,
                "file_name": path.name if is_file else None,
                "file_size": r.file_info.size_bytes,
                "success": r.success,
                "duration_seconds": r.duration_seconds,
                "error": r.error,
                "status": r.status,
                "error_type": r.error_type,
                "attempts": r.attempts,
                "worker_id": r.worker_id,
            }
            if not is_file:
                row["item"] = repr(r.item) if r.item is not None else None
            if isinstance(r.result, dict):  # failed items may carry one too (extraction)
                for k, v in r.result.items():
                    if not str(k).startswith("_"):
                        row[f"result_{k}"] = v
            elif r.success and r.result is not None and not _is_frame(r.result):
                row["result"] = r.result
            rows.append(row)
        columns = [
            "file_path",
            "file_name",
            "file_size",
            "success",
            "duration_seconds",
            "error",
            "status",
            "error_type",
            "attempts",
            "worker_id",
        ]
        df = pd.DataFrame(rows, columns=None if rows else columns)
        for key in self.batch_result.result_keys:  # same columns whether items succeed or not
            if f"result_{key}" not in df.columns:
                df[f"result_{key}"] = pd.Series(dtype="object")
        return df

    def summary(self) -> dict[str, Any]:
        """Totals, success rate, durations, throughput (files/s, MB/s), peak memory and the
        first ten errors (the seed's keys, plus more)."""
        b = self.batch_result
        durations = [r.duration_seconds for r in b.results]
        total_s = b.total_duration_seconds
        nbytes = b.total_bytes or sum(r.file_info.size_bytes for r in b.results)
        by_type: dict[str, int] = {}
        for r in b.results:
            if not r.success:
                key = r.error_type or r.status
                by_type[key] = by_type.get(key, 0) + 1
        return {
            "total_files": b.total_files,
            "successful": b.successful,
            "failed": b.failed,
            "cancelled": b.cancelled,
            "success_rate_pct": b.success_rate,
            "total_duration_seconds": total_s,
            "avg_duration_seconds": (total_s / b.total_files) if b.total_files else 0,
            "mean_item_seconds": (sum(durations) / len(durations)) if durations else 0.0,
            "max_item_seconds": max(durations, default=0.0),
            "throughput_files_per_s": (len(b.results) / total_s) if total_s > 0 else None,
            "throughput_mb_per_s": (nbytes / 1e6 / total_s) if total_s > 0 else None,
            "total_bytes": nbytes,
            "peak_memory_mb": b.peak_memory_mb,
            "worker_peak_memory_mb": dict(b.worker_peak_memory_mb),
            "interrupted": b.interrupted,
            "errors_by_type": by_type,
            "errors": b.errors[:10],
        }

    def export_csv(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`to_dataframe` as CSV (atomically)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="csv")

    def export_json(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`summary` as JSON (atomically), as the seed does."""
        with atomic_writer(path, overwrite=overwrite) as f:
            json.dump(self.summary(), f, indent=2, default=str)
            f.write("\n")
        return Path(path)

    def export_jsonl(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write one JSON object per item (JSON Lines)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="jsonl")

    def export_parquet(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`to_dataframe` as Parquet (needs pyarrow)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="parquet")

    def export_errors_csv(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write the failed items (path, error type, message, attempts...) so they can be
        re-run alone."""
        return write_frame(self.batch_result.errors_df(), path, overwrite=overwrite, fmt="csv")

    def combine_dataframes(self) -> pd.DataFrame:
        """Concatenate the results that are DataFrames (the seed's method)."""
        import pandas as pd

        dfs = [r for r in self.batch_result.successful_results() if _is_frame(r)]
        if not dfs:
            return pd.DataFrame()
        return pd.concat(dfs, ignore_index=True)


def _is_frame(obj: Any) -> bool:
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "columns")


# --- merging tabular files -------------------------------------------------------------------


@dataclass
class AggregateReport:
    """What happened while merging; also in ``df.attrs`` of the result."""

    files: int = 0
    rows: int = 0
    failed: list[FileError] = field(default_factory=list)
    empty_files: list[str] = field(default_factory=list)
    #: file -> columns whose type this file forced to change (promoted or made strings)
    type_changes: dict[str, list[str]] = field(default_factory=dict)
    #: file -> rows dropped as bad lines (on_bad_lines="skip"/"collect")
    lost_rows: dict[str, int] = field(default_factory=dict)
    #: (file, text of the bad line) for on_bad_lines="collect"
    bad_lines: list[tuple[str, str]] = field(default_factory=list)
    #: file -> columns it lacked (filled with nulls) or had extra (dropped, schema="first")
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    dropped_columns: dict[str, list[str]] = field(default_factory=dict)


_ARROW_CSV_OPTIONS = {
    "sep",
    "delimiter",
    "encoding",
    "skiprows",
    "usecols",
    "na_values",
    "quotechar",
    "header",
}


def _readers(
    kind: str, read_kwargs: dict[str, Any], on_bad_lines: str, report: AggregateReport
) -> Callable[[Path, str], pa.Table]:
    pa = _require_pyarrow("aggregate()")
    import pyarrow.csv as pacsv

    if kind in ("csv", "tsv") and set(read_kwargs) - _ARROW_CSV_OPTIONS:
        return _pandas_reader(kind, read_kwargs, on_bad_lines, report)

    def read_csv(path: Path, label: str) -> Any:
        delimiter = read_kwargs.get(
            "sep", read_kwargs.get("delimiter", "\t" if kind == "tsv" else ",")
        )
        bad: list[str] = []

        def handler(row: Any) -> str:
            if on_bad_lines == "error":
                return "error"
            bad.append(row.text)
            return "skip"

        header = read_kwargs.get("header", "infer")
        ro = pacsv.ReadOptions(
            encoding=read_kwargs.get("encoding", "utf8"),
            skip_rows=int(read_kwargs.get("skiprows", 0) or 0),
            autogenerate_column_names=header is None,
            use_threads=True,  # Arrow's own pool splits each file into blocks
            block_size=1 << 22,
        )
        po = pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char=read_kwargs.get("quotechar", '"'),
            invalid_row_handler=handler,
        )
        co = pacsv.ConvertOptions(
            include_columns=list(read_kwargs["usecols"]) if "usecols" in read_kwargs else None,
            null_values=(list(read_kwargs["na_values"]) if "na_values" in read_kwargs else None),
            strings_can_be_null=True,
        )
        if path.stat().st_size == 0:
            report.empty_files.append(label)
            return pa.table({})
        table = pacsv.read_csv(path, read_options=ro, parse_options=po, convert_options=co)
        # Arrow types text that is not valid in the encoding as binary: refuse the file
        # rather than pass on undecodable strings.
        binary = [
            f.name
            for f in table.schema
            if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
        ]
        if binary:
            raise UnicodeDecodeError(
                ro.encoding,
                b"",
                0,
                1,
                f"column(s) {binary} are not valid {ro.encoding}; pass encoding=...",
            )
        if bad:
            report.lost_rows[label] = len(bad)
            if on_bad_lines == "collect":
                report.bad_lines.extend((label, line) for line in bad)
        return table

    def read_jsonl(path: Path, label: str) -> Any:
        import pyarrow.json as pajson

        if path.stat().st_size == 0:
            report.empty_files.append(label)
            return pa.table({})
        return pajson.read_json(path, read_options=pajson.ReadOptions(use_threads=False))

    def read_parquet(path: Path, label: str) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(path, use_threads=False)

    return {"csv": read_csv, "tsv": read_csv, "jsonl": read_jsonl, "parquet": read_parquet}[kind]


def _pandas_reader(
    kind: str, read_kwargs: dict[str, Any], on_bad_lines: str, report: AggregateReport
) -> Callable[[Path, str], pa.Table]:
    """For options only pandas understands: pandas parses, Arrow carries on."""
    import pandas as pd
    import pyarrow as pa

    def read(path: Path, label: str) -> pa.Table:
        kw = dict(read_kwargs)
        kw.setdefault("sep", "\t" if kind == "tsv" else ",")
        bad: list[str] = []
        if on_bad_lines != "error":

            def keep_bad_line(fields: list[str]) -> None:
                bad.append(",".join(fields))  # returning None drops the line

            kw["on_bad_lines"] = keep_bad_line
            kw["engine"] = "python"
        try:
            df = pd.read_csv(path, **kw)
        except pd.errors.EmptyDataError:
            report.empty_files.append(label)
            return pa.table({})
        if bad:
            report.lost_rows[label] = len(bad)
            if on_bad_lines == "collect":
                report.bad_lines.extend((label, line) for line in bad)
        return pa.Table.from_pandas(df, preserve_index=False)

    return read


def _detect_kind(path: Path, reader: str) -> str:
    if reader != "auto":
        return reader
    suffix = path.suffix.lower()
    return {
        ".tsv": "tsv",
        ".tab": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
    }.get(suffix, "csv")


def _unify(
    tables: list[tuple[str, pa.Table]], schema: str, dtype_conflict: str, report: AggregateReport
) -> list[tuple[str, pa.Table]]:
    import pyarrow as pa

    non_empty = [(label, t) for label, t in tables if t.num_columns]
    if not non_empty:
        return []
    # Column order: first appearance across files (stable), or the first file's for "first".
    order: list[str] = []
    for _, t in non_empty:
        for name in t.column_names:
            if name not in order:
                order.append(name)
    first_cols = non_empty[0][1].column_names
    if schema == "strict":
        mismatched = [label for label, t in non_empty if t.column_names != first_cols]
        if mismatched:
            raise SchemaError(
                f"schema='strict': {len(mismatched)} file(s) differ from the columns of "
                f"{non_empty[0][0]} {first_cols}: {', '.join(mismatched[:10])}"
            )
    if schema == "first":
        order = list(first_cols)
    # The target type of each column: promoted across files, or string on conflict.
    types: dict[str, pa.DataType] = {}
    conflicts: set[str] = set()
    for _, t in non_empty:
        for name in t.column_names:
            if name not in order:
                continue
            typ = t.schema.field(name).type
            if name not in types or pa.types.is_null(types[name]):
                types[name] = typ
                continue
            if types[name] == typ or pa.types.is_null(typ):
                continue
            merged = _promote(types[name], typ)
            if merged is None:
                conflicts.add(name)
            else:
                types[name] = merged
    if conflicts and dtype_conflict == "error":
        raise SchemaError(
            f"dtype_conflict='error': columns with conflicting types: {sorted(conflicts)}"
        )
    if dtype_conflict == "string":
        conflicts |= {
            n
            for n in types
            if any(n in t.column_names and t.schema.field(n).type != types[n] for _, t in non_empty)
        }
    for name in conflicts:
        types[name] = pa.string()
    target = pa.schema([(n, types.get(n, pa.null())) for n in order])
    out = []
    for label, t in tables:
        if not t.num_columns:
            continue
        missing = [n for n in order if n not in t.column_names]
        extra = [n for n in t.column_names if n not in order]
        if missing:
            report.missing_columns[label] = missing
        if extra:
            report.dropped_columns[label] = extra
        changed = [
            n
            for n in order
            if n in t.column_names
            and t.schema.field(n).type != target.field(n).type
            and not pa.types.is_null(t.schema.field(n).type)
        ]
        if changed:
            report.type_changes[label] = changed
        arrays = []
        for f in target:
            if f.name in t.column_names:
                col = t.column(f.name)
                arrays.append(col if col.type == f.type else col.cast(f.type, safe=False))
            else:
                arrays.append(pa.nulls(t.num_rows, type=f.type))
        out.append((label, pa.Table.from_arrays(arrays, schema=target)))
    return out


def _promote(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The common type of two column types, or None if only a string could hold both."""
    import pyarrow as pa

    t = pa.types
    if t.is_null(a):
        return b
    if t.is_null(b):
        return a
    if (t.is_integer(a) or t.is_floating(a)) and (t.is_integer(b) or t.is_floating(b)):
        if t.is_integer(a) and t.is_integer(b):
            return pa.int64()
        return pa.float64()
    if t.is_timestamp(a) and t.is_timestamp(b):
        return pa.timestamp("ns")
    if (t.is_string(a) or t.is_large_string(a)) and (t.is_string(b) or t.is_large_string(b)):
        return pa.large_string()
    return None


def _collect_files(
    files_or_dir: PathLike | Iterable[PathLike], reader: str
) -> tuple[list[Path], Path | None]:
    if isinstance(files_or_dir, (str, os.PathLike)):
        root = Path(files_or_dir)
        if root.is_dir():
            from .scan import FileScanner

            exts = {
                "csv": {".csv"},
                "tsv": {".tsv", ".tab"},
                "jsonl": {".jsonl", ".ndjson"},
                "parquet": {".parquet", ".pq"},
            }.get(reader)
            if exts is None:  # auto: every tabular kind
                exts = {".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".pq"}
            files = [f.path for f in FileScanner(extensions=exts, sort=True).list_files(root)]
            return files, root
        if not root.exists():
            raise FileNotFoundError(f"not found: {root}")
        return [root], None
    return [Path(p) for p in files_or_dir], None


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
    """Merge many CSV/TSV/JSON Lines/Parquet files into one pandas DataFrame.

    >>> df = aggregate("data/monthly", schema="union", on_bad_lines="skip")   # doctest: +SKIP
    >>> df.attrs["report"].lost_rows, df["_source_file"].unique()             # doctest: +SKIP

    Args:
        files_or_dir: a directory (scanned for the reader's extensions) or file paths.
        reader: ``"auto"`` (by extension), ``"csv"``, ``"tsv"``, ``"jsonl"`` or ``"parquet"``.
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
        read_kwargs: reader options; pandas-only options switch CSV parsing to pandas.

    The report (files that failed, forced a type change, lost rows...) is in
    ``df.attrs["report"]`` (an :class:`AggregateReport`). Unreadable files never stop the
    merge. Memory: tables are concatenated in Arrow and converted to pandas once.
    """
    if client is not None:
        from . import distributed as _distributed

        return _distributed.aggregate(  # type: ignore[no-any-return]
            client,
            files_or_dir,
            lazy=lazy,
            reader=reader,
            schema=schema,
            dtype_conflict=dtype_conflict,
            on_bad_lines=on_bad_lines,
            workers=workers,
            output_path=output_path,
            errors_path=errors_path,
            overwrite=overwrite,
            source_column=source_column,
            progress=progress,
            **read_kwargs,
        )
    check_policies(schema=schema, dtype_conflict=dtype_conflict, on_bad_lines=on_bad_lines,
                   reader=reader)

    files, root = _collect_files(files_or_dir, reader)
    report = AggregateReport(files=len(files))
    readers: dict[str, Callable[[Path, str], Any]] = {}

    def label_of(p: Path) -> str:
        if root is not None:
            try:
                return str(p.relative_to(root))
            except ValueError:
                pass
        return str(p)

    def read_one(p: Path) -> tuple[str, Any]:
        kind = _detect_kind(p, reader)
        label = label_of(p)
        try:
            return label, readers[kind](p, label)
        except Exception as exc:  # the file is reported; the merge goes on
            report.failed.append(FileError(p, type(exc).__name__, str(exc).strip()))
            return label, None

    for p in files:  # reader factories are created up front: they are not thread-safe to build
        kind = _detect_kind(p, reader)
        if kind not in readers:
            readers[kind] = _readers(kind, read_kwargs, on_bad_lines, report)
    # Arrow parses each file on its own thread pool; a few files in flight keep it fed.
    n_workers = workers or min(8, os.cpu_count() or 2)
    tables: list[tuple[str, Any]] = []
    with (
        Reporter(progress, desc="Reading", unit="file") as rep,
        ThreadPoolExecutor(max_workers=n_workers) as pool,
    ):
        for i, (label, table) in enumerate(pool.map(read_one, files), 1):
            if table is not None:
                tables.append((label, table))
            rep.update(i, len(files))
    return merge_tables(tables, report, schema=schema, dtype_conflict=dtype_conflict,
                        source_column=source_column, output_path=output_path,
                        overwrite=overwrite, errors_path=errors_path)


def check_policies(*, schema: str, dtype_conflict: str, on_bad_lines: str, reader: str) -> None:
    """Reject an unknown policy before any file is read; pyarrow must be installed."""
    for name, value, allowed in (
        ("schema", schema, ("union", "strict", "first")),
        ("dtype_conflict", dtype_conflict, ("promote", "string", "error")),
        ("on_bad_lines", on_bad_lines, ("error", "skip", "collect")),
        ("reader", reader, ("auto", "csv", "tsv", "jsonl", "parquet")),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    _require_pyarrow("aggregate()")


def merge_tables(tables: list[tuple[str, Any]], report: AggregateReport, *, schema: str,
                 dtype_conflict: str, source_column: str | None,
                 output_path: PathLike | None, overwrite: bool,
                 errors_path: PathLike | None) -> pd.DataFrame:
    """Unify the read tables (``(label, pyarrow.Table)``, emptied as it goes), concatenate them
    in Arrow, convert to pandas once, and write the outputs: the end of every aggregation,
    wherever the files were read."""
    import pandas as pd
    import pyarrow as pa

    unified = _unify(tables, schema, dtype_conflict, report)
    files_failed(log, report.failed)
    tables.clear()
    if unified:
        table = pa.concat_tables(
            [_with_source(t, label, source_column) if source_column else t for label, t in unified]
        )
        del unified
        report.rows = table.num_rows
        df = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
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


def _with_source(table: pa.Table, label: str, column: str) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    # One dictionary entry per file: the label is stored once, not once per row.
    indices = pa.array(np.zeros(table.num_rows, dtype=np.int32))
    col = pa.DictionaryArray.from_arrays(indices, pa.array([label]))
    return table.append_column(column, col)


def aggregate_csv(
    directory: PathLike,
    output_path: PathLike | None = None,
    *,
    overwrite: bool = True,
    **read_kwargs: Any,
) -> pd.DataFrame:
    """Read and combine every CSV file under ``directory`` (the seed's
    ``FileProcessor.aggregate_csv``), with a ``_source_file`` column naming each row's file.

    Files that cannot be read are left out and reported in ``df.attrs["report"]``; the seed's
    ``output_path`` is written atomically. Other :func:`aggregate` options pass through.
    """
    options = {
        k: read_kwargs.pop(k)
        for k in ("schema", "dtype_conflict", "on_bad_lines", "workers", "errors_path", "progress")
        if k in read_kwargs
    }
    return aggregate(
        directory,
        reader="csv",
        output_path=output_path,
        overwrite=overwrite,
        **options,
        **read_kwargs,
    )
