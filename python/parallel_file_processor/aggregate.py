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
import threading
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

    The file gets the permissions a plain ``open()`` would give it (``0o666`` less the umask),
    or keeps those of the file it replaces. A symlink is written through, as ``open()`` does:
    the file it points to is replaced. On any error the temporary file is removed and ``path``
    is left as it was. Raises :class:`TargetExistsError` when ``path`` exists and
    ``overwrite`` is false.
    """
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not overwrite:
        raise TargetExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        _name(exc, target)
        raise
    try:
        # mkstemp creates 0600; give the mode open() would (or the replaced file's).
        os.fchmod(fd, (existing.st_mode & 0o7777) if existing is not None else 0o666 & ~_umask())
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
    _fsync_dir(target.parent)


def _umask() -> int:
    """This process's umask, read without changing it (no race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # no /proc: set and restore (meanwhile, files made get the stricter 077)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems cannot sync a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    #: spreadsheet (``file`` or ``file[sheet]``) -> columns mixing numbers, text or dates,
    #: read as text (pandas keeps such a column as Python objects)
    mixed_columns: dict[str, list[str]] = field(default_factory=dict)
    #: inputs left out because they are this run's own output or errors file
    skipped_outputs: list[str] = field(default_factory=list)


#: Spreadsheets, read natively (calamine in the Rust core).
SPREADSHEET_EXTENSIONS = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})

_KIND_EXTENSIONS = {
    "csv": {".csv"},
    "tsv": {".tsv", ".tab"},
    "jsonl": {".jsonl", ".ndjson"},
    "parquet": {".parquet", ".pq"},
    "excel": set(SPREADSHEET_EXTENSIONS),
}

#: pandas' default missing-value markers (``pandas._libs.parsers.STR_NA_VALUES``).
_NA_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]
_TRUE_VALUES = ["True", "TRUE", "true"]
_FALSE_VALUES = ["False", "FALSE", "false"]

#: read_csv options the Arrow path honours (``engine`` is accepted and has no effect: the
#: result is pandas' either way).
_ARROW_CSV_OPTIONS = {
    "sep",
    "delimiter",
    "encoding",
    "skiprows",
    "usecols",
    "na_values",
    "keep_default_na",
    "quotechar",
    "header",
    "decimal",
    "thousands",
    "engine",
}
#: Options only spreadsheets take (text readers ignore them) and options only text files
#: take (spreadsheet readers ignore them), so one call can merge both kinds.
_SHEET_ONLY = {"sheet", "sheet_name"}
_TEXT_ONLY = {
    "sep", "delimiter", "encoding", "encoding_errors", "quotechar", "quoting", "doublequote",
    "escapechar", "lineterminator", "dialect", "skipinitialspace", "engine", "low_memory",
    "memory_map", "float_precision", "delim_whitespace",
}
#: read_excel options the native spreadsheet reader honours.
_SHEET_NATIVE = {"sheet", "sheet_name", "header", "skiprows", "nrows", "na_values",
                 "keep_default_na", "decimal", "thousands"}
#: How much of a file ``sep=None`` looks at to choose the delimiter.
_SNIFF_BYTES = 16 << 10
_SNIFF_DELIMITERS = ",;\t|"


def _readers(
    kind: str, read_kwargs: dict[str, Any], on_bad_lines: str, report: AggregateReport
) -> Callable[[Path, str], pa.Table]:
    pa = _require_pyarrow("aggregate()")
    import pyarrow.csv as pacsv

    if kind == "excel":
        return _sheet_reader(read_kwargs, report)
    kw = {k: v for k, v in read_kwargs.items() if k not in _SHEET_ONLY}
    if kind in ("csv", "tsv") and not _csv_native(kw):
        return _pandas_reader(kind, kw, on_bad_lines, report)

    def read_csv(path: Path, label: str) -> Any:
        if path.stat().st_size == 0:
            report.empty_files.append(label)
            return pa.table({})
        encoding = kw.get("encoding") or "utf8"
        delimiter = kw.get("sep", kw.get("delimiter", "\t" if kind == "tsv" else ","))
        if delimiter is None:
            delimiter = _sniff_delimiter(path, encoding)
        bad: list[str] = []

        def handler(row: Any) -> str:
            if on_bad_lines == "error":
                return "error"
            bad.append(row.text)
            return "skip"

        header = kw.get("header", "infer")
        skip = int(kw.get("skiprows", 0) or 0)
        if isinstance(header, int) and not isinstance(header, bool):
            skip += header  # the header is the n-th line after skiprows
        ro = pacsv.ReadOptions(
            encoding=encoding,
            skip_rows=skip,
            autogenerate_column_names=header is None,
            use_threads=True,  # Arrow's own pool splits each file into blocks
            block_size=1 << 22,
        )
        po = pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char=kw.get("quotechar", '"'),
            invalid_row_handler=handler,
        )
        user_na = kw.get("na_values")
        if isinstance(user_na, str):
            user_na = [user_na]
        null_values = (list(_NA_VALUES) if kw.get("keep_default_na", True) else []) + [
            text for v in (user_na or []) for text in _na_spellings(v)
        ]
        decimal = kw.get("decimal", ".")
        thousands = kw.get("thousands")
        convert: dict[str, Any] = {
            "include_columns": list(kw["usecols"]) if "usecols" in kw else None,
            "null_values": null_values,
            "strings_can_be_null": True,
            "true_values": _TRUE_VALUES,
            "false_values": _FALSE_VALUES,
            "decimal_point": decimal,
        }
        if thousands:
            # Arrow has no thousands separator: every column is read as text, then typed as
            # pandas types it (integers, floats, booleans, else text).
            peek = pacsv.open_csv(
                path, read_options=ro,
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter, quote_char=kw.get("quotechar", '"'),
                    invalid_row_handler=lambda row: "skip"),
                convert_options=pacsv.ConvertOptions(**convert),
            )
            names = peek.schema.names
            peek.close()
            convert["column_types"] = {n: pa.string() for n in names}
        co = pacsv.ConvertOptions(**convert)
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
        if thousands:
            table = _typed_from_text(table, decimal, thousands)
        table = _with_pandas_names(table, autogenerated=header is None)
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


def _na_spellings(value: Any) -> list[str]:
    """A missing-value marker as pandas matches it: ``999`` also means ``999.0``."""
    text = str(value)
    out = [text]
    try:
        f = float(text)
    except ValueError:
        return out
    if f == f and f not in (float("inf"), float("-inf")) and f == int(f):
        out += [f"{int(f)}.0", str(int(f))]
    return out


def _csv_native(kw: dict[str, Any]) -> bool:
    """Whether the Arrow path can honour these read_csv options exactly."""
    if set(kw) - _ARROW_CSV_OPTIONS:
        return False
    header = kw.get("header", "infer")
    if header not in ("infer", None) and not (isinstance(header, int) and header >= 0):
        return False  # a list of header rows (MultiIndex columns)
    skip = kw.get("skiprows", 0)
    if skip is not None and not (isinstance(skip, int) and skip >= 0):
        return False  # a list of rows or a callable
    sep = kw.get("sep", kw.get("delimiter", ","))
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        return False  # a regex or a multi-character separator
    for key in ("decimal", "thousands"):
        value = kw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) != 1):
            return False
    if kw.get("thousands") is not None and kw.get("thousands") == kw.get("decimal", "."):
        return False  # pandas' own error
    na = kw.get("na_values")
    if isinstance(na, dict):
        return False  # per-column markers
    if "usecols" in kw and (callable(kw["usecols"]) or isinstance(kw["usecols"], str) or any(
            not isinstance(c, str) for c in kw["usecols"])):
        return False
    enc = kw.get("encoding")
    if enc is not None:
        import codecs

        try:
            codecs.lookup(enc)
        except LookupError:
            return False  # pandas names the bad encoding
    return True


def _sniff_delimiter(path: Path, encoding: str) -> str:
    """The delimiter of a text table (``sep=None``): the csv module's Sniffer (as pandas'
    python engine uses it) on the file's first few KiB, choosing among ``, ; tab |``. A file
    with none of them is one column; one where the Sniffer cannot decide fails, naming it."""
    import csv

    with open(path, "rb") as f:
        raw = f.read(_SNIFF_BYTES)
    text = raw.decode("utf-8" if encoding.lower() in ("utf8", "utf-8") else encoding,
                      errors="replace").lstrip("\ufeff")
    if len(raw) == _SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # whole lines only
    try:
        return csv.Sniffer().sniff(text, delimiters=_SNIFF_DELIMITERS).delimiter
    except csv.Error:
        pass
    if not any(d in text for d in _SNIFF_DELIMITERS):
        return ","  # a single column
    raise ValueError(
        "sep=None: could not determine the delimiter from the first "
        f"{_SNIFF_BYTES >> 10} KiB (tried {_SNIFF_DELIMITERS!r}); pass sep=")


def _typed_from_text(table: pa.Table, decimal: str, thousands: str) -> pa.Table:
    """Type text columns as pandas' C parser does with ``thousands=``: integers, else floats,
    else booleans, else text (every present value must convert)."""
    import re

    import pyarrow as pa
    import pyarrow.compute as pc

    t, d = re.escape(thousands), re.escape(decimal)
    int_re = rf"^\s*[+-]?[0-9][0-9{t}]*\s*$"
    float_re = (rf"^\s*[+-]?([0-9]{t}?)*({d}[0-9]*)?([eE][+-]?[0-9]+)?\s*$"
                r"|^[+-]?(?i:inf|infinity)$")
    out = []
    for col in table.columns:
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            out.append(col)
            continue
        present = col.drop_null()
        if len(present) == 0:
            out.append(pa.nulls(len(col)))
            continue

        def every(pattern: str, values: Any = present) -> bool:
            return bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())

        converted = None
        stripped = pc.utf8_trim_whitespace(pc.replace_substring(col, thousands, ""))
        if every(int_re):
            try:
                converted = pc.cast(stripped, pa.int64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                converted = None  # beyond int64: floats below
        if converted is None and every(float_re) and every("[0-9]|(?i:inf)"):
            text = stripped if decimal == "." else pc.replace_substring(stripped, decimal, ".")
            try:
                converted = pc.cast(text, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                converted = None
        if converted is None and every(r"^(True|TRUE|true|False|FALSE|false)$"):
            converted = pc.is_in(col, value_set=pa.array(_TRUE_VALUES))
            converted = pc.if_else(pc.is_null(col), pa.scalar(None, pa.bool_()), converted)
        out.append(col if converted is None else converted)
    return pa.Table.from_arrays(out, names=table.column_names)


def _pandas_names(names: list[str | None]) -> list[str]:
    """Column names as pandas' parsers make them: a blank name is ``Unnamed: <i>``, and
    duplicates get ``.1``, ``.2``... (``pandas.io.common.mangle_dupe_names``: a number already
    taken by another column is skipped; named columns keep their names before unnamed ones)."""
    unnamed = [i for i, n in enumerate(names) if n is None or n == ""]
    out = [f"Unnamed: {i}" if (n is None or n == "") else n for i, n in enumerate(names)]
    taken = set(out)
    if len(taken) == len(out):
        return out
    order = [i for i in range(len(out)) if i not in set(unnamed)] + unnamed
    counts: dict[str, int] = {}
    for i in order:
        col = old = out[i]
        cur = counts.get(col, 0)
        while cur > 0:
            counts[old] = cur + 1
            col = f"{old}.{cur}"
            cur = cur + 1 if col in taken else counts.get(col, 0)
        out[i] = col
        counts[col] = cur + 1
    return out


def _with_pandas_names(table: pa.Table, *, autogenerated: bool) -> pa.Table:
    if autogenerated:
        names = [str(i) for i in range(table.num_columns)]  # pandas: 0, 1, 2...
    else:
        names = _pandas_names(list(table.column_names))
    return table if names == table.column_names else table.rename_columns(names)


def _pandas_reader(
    kind: str, read_kwargs: dict[str, Any], on_bad_lines: str, report: AggregateReport
) -> Callable[[Path, str], pa.Table]:
    """For options only pandas understands: pandas parses, Arrow carries on."""
    import pandas as pd

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
            return _require_pyarrow("aggregate()").table({})
        if bad:
            report.lost_rows[label] = len(bad)
            if on_bad_lines == "collect":
                report.bad_lines.extend((label, line) for line in bad)
        return _frame_to_arrow(df, label, report)

    return read


def _frame_to_arrow(df: pd.DataFrame, label: str, report: AggregateReport) -> pa.Table:
    """A frame read by pandas as an Arrow table; object columns mixing kinds (numbers and
    text...) become text, reported in ``mixed_columns``."""
    import pyarrow as pa

    df = df.copy(deep=False)
    df.columns = [str(c) for c in df.columns]
    mixed = []
    for name in df.columns:
        col = df[name]
        if col.dtype == object:
            try:
                pa.array(col, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                df[name] = col.map(lambda v: None if _is_missing(v) else str(v)).astype(object)
                mixed.append(name)
    if mixed:
        report.mixed_columns[label] = mixed
    return pa.Table.from_pandas(df, preserve_index=False)


def _is_missing(v: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


# --- spreadsheets ----------------------------------------------------------------------------


def _sheet_options(read_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The native reader's arguments for these read_excel options, or None when only pandas
    can honour them (they are then read by ``pandas.read_excel``, one file at a time)."""
    kw = {k: v for k, v in read_kwargs.items() if k not in _TEXT_ONLY}
    if set(kw) - _SHEET_NATIVE:
        return None
    out: dict[str, Any] = {}
    if "sheet" in kw:
        sheet = kw["sheet"]
        sheet = 0 if sheet is None else sheet
    else:
        sheet = kw.get("sheet_name", 0)
        sheet = "all" if sheet is None else sheet  # pandas: sheet_name=None reads them all
    if sheet == "all":
        out["all_sheets"] = True
    elif isinstance(sheet, bool):
        return None
    elif isinstance(sheet, int) and sheet >= 0:
        out["sheet_index"] = sheet
    elif isinstance(sheet, str):
        out["sheet_name"] = sheet
    else:
        return None  # a list of sheets
    header = kw.get("header", 0)
    header = 0 if header == "infer" else header  # read_csv's default, passed to both kinds
    if header is not None and (isinstance(header, bool) or not isinstance(header, int)
                               or header < 0):
        return None
    out["header"] = header
    for key in ("skiprows", "nrows"):
        value = kw.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        out[key] = value
    na = kw.get("na_values")
    if na is not None:
        if isinstance(na, (str, int, float)):
            na = [na]
        if isinstance(na, dict) or not all(isinstance(v, (str, int, float)) for v in na):
            return None
        out["na_values"] = [str(v) for v in na]
    if "keep_default_na" in kw:
        out["keep_default_na"] = bool(kw["keep_default_na"])
    for key in ("decimal", "thousands"):
        value = kw.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) != 1:
            return None
        out[key] = value
    return out


def _sheet_reader(read_kwargs: dict[str, Any], report: AggregateReport
                  ) -> Callable[[Path, str], pa.Table]:
    native = _sheet_options(read_kwargs)
    if native is None:
        return _pandas_sheet_reader(read_kwargs, report)

    def read(path: Path, label: str) -> pa.Table:
        from . import _core

        [result] = _core.read_sheets([os.fspath(path)], **native)
        return _workbook_table(result, label, report, all_sheets=bool(native.get("all_sheets")))

    return read


def _read_workbooks(paths: list[Path], labels: list[str], native: dict[str, Any],
                    report: AggregateReport, workers: int | None,
                    progress: Callable[[int, int, int, int], None] | None) -> list[Any]:
    """Read many workbooks in one native call (in parallel, GIL released): per path an Arrow
    table, or the exception that made it fail."""
    from . import _core

    results = _core.read_sheets([os.fspath(p) for p in paths], workers=workers,
                                progress=progress, **native)
    out: list[Any] = []
    for label, result in zip(labels, results):
        try:
            out.append(_workbook_table(result, label, report,
                                       all_sheets=bool(native.get("all_sheets"))))
        except Exception as exc:  # noqa: BLE001 - the file is reported by the caller
            out.append(exc)
    return out


def _native_error(error_type: str, message: str) -> Exception:
    import builtins

    cls = getattr(builtins, error_type, None)
    if isinstance(cls, type) and issubclass(cls, Exception):
        return cls(message)
    return ValueError(f"{error_type}: {message}")


def _workbook_table(result: Any, label: str, report: AggregateReport, *,
                    all_sheets: bool) -> pa.Table:
    """A workbook's sheets (as ``read_sheets`` returns them) as one Arrow table: the selected
    sheet, or every sheet merged by column name with a ``_sheet`` column."""
    import pyarrow as pa

    if isinstance(result, tuple):
        raise _native_error(*result)
    sheets = []
    for sheet in result:
        key = f"{label}[{sheet['sheet']}]" if all_sheets else label
        table = _sheet_to_arrow(sheet)
        mixed = [n for n, c in zip(table.column_names, sheet["columns"]) if c["mixed"]]
        if mixed:
            report.mixed_columns[key] = mixed
        sheets.append((key, sheet["sheet"], table))
    if not all_sheets:
        table = sheets[0][2]
        if not table.num_columns:
            report.empty_files.append(label)
        return table
    names = {key: name for key, name, _ in sheets}
    unified = _unify([(key, t) for key, _, t in sheets], "union", "promote", report)
    if not unified:
        report.empty_files.append(label)
        return pa.table({})
    parts = []
    for key, t in unified:
        if "_sheet" in t.column_names:
            raise ValueError(f"sheet {names[key]!r} has a column named '_sheet', the column "
                             "sheet='all' adds; read the sheets one at a time")
        parts.append(_with_source(t, names[key], "_sheet"))
    return pa.concat_tables(parts)


def _sheet_to_arrow(sheet: dict[str, Any]) -> pa.Table:
    """One sheet's native column buffers as an Arrow table (no Python object per cell)."""
    import pyarrow as pa

    columns = sheet["columns"]
    if not columns:
        return pa.table({})
    n = sheet["rows"]
    header = sheet["header"]
    names = _pandas_names(header) if header else [str(i) for i in range(len(columns))]
    unit = _temporal_unit()
    types = {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us"),
        "time": pa.time64("us"),
        "duration": pa.duration("us"),
    }
    arrays = []
    for col in columns:
        kind = col["type"]
        validity = pa.py_buffer(col["validity"]) if col["validity"] is not None else None
        if kind == "null":
            arr = pa.nulls(n)
        elif kind == "string":
            arr = pa.Array.from_buffers(
                pa.large_string(), n,
                [validity, pa.py_buffer(col["offsets"]), pa.py_buffer(col["values"])])
        else:
            arr = pa.Array.from_buffers(types[kind], n, [validity, pa.py_buffer(col["values"])])
            if unit != "us" and kind in ("timestamp", "duration"):
                target = pa.timestamp(unit) if kind == "timestamp" else pa.duration(unit)
                try:
                    arr = arr.cast(target)
                except pa.ArrowInvalid:
                    pass  # beyond the nanosecond range: kept in microseconds
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=names)


def _temporal_unit() -> str:
    """The unit pandas gives spreadsheet dates: microseconds (pandas 3), nanoseconds before."""
    import pandas as pd

    return "us" if int(pd.__version__.split(".")[0]) >= 3 else "ns"


def _pandas_sheet_reader(read_kwargs: dict[str, Any], report: AggregateReport
                         ) -> Callable[[Path, str], pa.Table]:
    """For read_excel options the native reader does not take: pandas reads each workbook."""
    import pandas as pd
    import pyarrow as pa

    kw = {k: v for k, v in read_kwargs.items() if k not in _TEXT_ONLY}
    if "sheet" in kw:
        sheet = kw.pop("sheet")
        kw.pop("sheet_name", None)
        sheet = None if sheet == "all" else (0 if sheet is None else sheet)
    else:
        sheet = kw.pop("sheet_name", 0)
        sheet = None if sheet == "all" else sheet

    def read(path: Path, label: str) -> pa.Table:
        engine = {".ods": "odf", ".xls": "xlrd"}.get(path.suffix.lower(), "openpyxl")
        out = pd.read_excel(path, sheet_name=sheet, **{"engine": engine, **kw})
        if not isinstance(out, dict):
            if out.empty and not len(out.columns):
                report.empty_files.append(label)
                return pa.table({})
            return _frame_to_arrow(out, label, report)
        tables = [(f"{label}[{name}]", str(name), _frame_to_arrow(df, f"{label}[{name}]", report))
                  for name, df in out.items()]
        names = {key: name for key, name, _ in tables}
        unified = _unify([(key, t) for key, _, t in tables], "union", "promote", report)
        if not unified:
            report.empty_files.append(label)
            return pa.table({})
        return pa.concat_tables([_with_source(t, names[key], "_sheet") for key, t in unified])

    return read


def _detect_kind(path: Path, reader: str) -> str:
    if reader != "auto":
        return reader
    suffix = path.suffix.lower()
    if suffix in SPREADSHEET_EXTENSIONS:
        return "excel"
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

            exts = _KIND_EXTENSIONS.get(reader)
            if exts is None:  # auto: every tabular kind
                exts = set().union(*_KIND_EXTENSIONS.values())
            files = [f.path for f in FileScanner(extensions=exts, sort=True).list_files(root)]
            return files, root
        if not root.exists():
            raise FileNotFoundError(f"not found: {root}")
        return [root], None
    return [Path(p) for p in files_or_dir], None


def without_outputs(files: list[Path], outputs: Iterable[PathLike | None]
                    ) -> tuple[list[Path], list[Path]]:
    """``files`` without the ones that are one of ``outputs`` (the same file: compared by
    device and inode, so a relative path, a symlink or a hard link to an output is caught
    too), and the ones left out."""
    ids = set()
    for out in outputs:
        if out is None:
            continue
        try:
            st = os.stat(out)
        except OSError:
            continue  # not there yet: no input can be it
        ids.add((st.st_dev, st.st_ino))
    if not ids:
        return files, []
    kept: list[Path] = []
    left_out: list[Path] = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            kept.append(f)  # reading it reports why it cannot be read
            continue
        (left_out if (st.st_dev, st.st_ino) in ids else kept).append(f)
    return kept, left_out


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
    files, left_out = without_outputs(files, [output_path, errors_path])
    report = AggregateReport(files=len(files))

    def label_of(p: Path) -> str:
        if root is not None:
            try:
                return str(p.relative_to(root))
            except ValueError:
                pass
        return str(p)

    report.skipped_outputs = [label_of(p) for p in left_out]
    kinds = [_detect_kind(p, reader) for p in files]
    readers: dict[str, Callable[[Path, str], Any]] = {}
    for kind in kinds:  # reader factories are created up front: not thread-safe to build
        if kind not in readers:
            readers[kind] = _readers(kind, read_kwargs, on_bad_lines, report)
    # Workbooks are read by one native call (rayon, GIL released) when their options allow.
    native = _sheet_options(read_kwargs) if "excel" in readers else None
    batch = [i for i, k in enumerate(kinds) if k == "excel"] if native is not None else []
    in_batch = set(batch)
    singles = [i for i in range(len(files)) if i not in in_batch]
    results: list[Any] = [None] * len(files)

    def failed(i: int, exc: BaseException) -> None:
        report.failed.append(FileError(files[i], type(exc).__name__, str(exc).strip()))

    def read_one(i: int) -> Any:
        try:
            return readers[kinds[i]](files[i], label_of(files[i]))
        except Exception as exc:  # the file is reported; the merge goes on
            return exc

    # Arrow parses each file on its own thread pool; a few files in flight keep it fed. The
    # workbooks are read meanwhile on this thread, so Ctrl-C stops the native reader at once.
    n_workers = workers or min(8, os.cpu_count() or 2)
    lock = threading.Lock()
    done = {"singles": 0, "batch": 0}
    with (
        Reporter(progress, desc="Reading", unit="file") as rep,
        ThreadPoolExecutor(max_workers=n_workers) as pool,
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
                books = _read_workbooks(
                    [files[i] for i in batch], [label_of(files[i]) for i in batch],
                    native or {}, report, workers,
                    (lambda items, _t, _b, _bt: tick("batch", items)) if rep.active else None)
                for i, result in zip(batch, books):
                    results[i] = result
            for i, f in zip(singles, futures):
                results[i] = f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    tables: list[tuple[str, Any]] = []
    for i, result in enumerate(results):
        if isinstance(result, BaseException):
            failed(i, result)
        elif result is not None:
            if source_column and source_column in result.column_names:
                failed(i, SchemaError(
                    f"already has a column named {source_column!r}, the column naming each "
                    "row's file (a merged output?); pass source_column=None or another name"))
                continue
            tables.append((label_of(files[i]), result))
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
