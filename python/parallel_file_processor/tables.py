"""Reading text tables (CSV, TSV, JSON Lines) and Parquet files as Arrow tables, as pandas would.

CSV is parsed by pyarrow when the ``read_csv`` options given can be honoured exactly
(delimiters, sniffing with ``sep=None``, ``decimal``, ``thousands``, missing-value markers,
headers...), else by ``pandas.read_csv``; either way column names, types and missing values
come out as pandas makes them. Spreadsheets are read by :mod:`.sheets`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import require_pyarrow
from .schema import AggregateReport

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "SPREADSHEET_EXTENSIONS",
    "KIND_EXTENSIONS",
    "detect_kind",
    "text_reader",
    "pandas_names",
    "frame_to_arrow",
]

#: Spreadsheets, read natively (calamine in the Rust core).
SPREADSHEET_EXTENSIONS = frozenset({".xlsx", ".xlsm", ".xls", ".ods"})

#: The extensions of each ``reader=`` kind (``"auto"``: all of them).
KIND_EXTENSIONS = {
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
#: Options only spreadsheets take: text readers ignore them, so one call can merge both kinds.
_SHEET_ONLY = {"sheet", "sheet_name"}
#: How much of a file ``sep=None`` looks at to choose the delimiter.
_SNIFF_BYTES = 16 << 10
_SNIFF_DELIMITERS = ",;\t|"


def text_reader(
    kind: str, read_kwargs: dict[str, Any], on_bad_lines: str, report: AggregateReport
) -> Callable[[Path, str], pa.Table]:
    """The reader of one kind of file (``csv``, ``tsv``, ``jsonl``, ``parquet``): ``read(path,
    label)`` gives an Arrow table and records in ``report`` what the file lost (bad lines) or
    lacked (an empty file). Options only spreadsheets take are ignored."""
    pa = require_pyarrow("aggregate()")
    import pyarrow.csv as pacsv

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


def pandas_names(names: list[str | None]) -> list[str]:
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
        names = pandas_names(list(table.column_names))
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
            return require_pyarrow("aggregate()").table({})
        if bad:
            report.lost_rows[label] = len(bad)
            if on_bad_lines == "collect":
                report.bad_lines.extend((label, line) for line in bad)
        return frame_to_arrow(df, label, report)

    return read


def frame_to_arrow(df: pd.DataFrame, label: str, report: AggregateReport) -> pa.Table:
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



def detect_kind(path: Path, reader: str) -> str:
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

