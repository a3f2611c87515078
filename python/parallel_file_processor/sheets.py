"""Reading spreadsheets (.xlsx, .xlsm, .xls, .ods) as Arrow tables, as ``pandas.read_excel`` would.

Workbooks are read natively (calamine in the Rust core, many at once with the GIL released)
into column buffers that become Arrow arrays without a Python object per cell; options only
pandas understands make ``pandas.read_excel`` read those files instead. ``sheet="all"`` merges
a workbook's sheets by column name with a ``_sheet`` column.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .schema import AggregateReport, unify, with_source
from .tables import frame_to_arrow, pandas_names

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["sheet_options", "sheet_reader", "read_workbooks"]

#: Options only text files take: spreadsheet readers ignore them, so one call can merge both
#: kinds.
_TEXT_ONLY = {
    "sep", "delimiter", "encoding", "encoding_errors", "quotechar", "quoting", "doublequote",
    "escapechar", "lineterminator", "dialect", "skipinitialspace", "engine", "low_memory",
    "memory_map", "float_precision", "delim_whitespace",
}
#: read_excel options the native spreadsheet reader honours.
_SHEET_NATIVE = {"sheet", "sheet_name", "header", "skiprows", "nrows", "na_values",
                 "keep_default_na", "decimal", "thousands"}


def sheet_options(read_kwargs: dict[str, Any]) -> dict[str, Any] | None:
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


def sheet_reader(read_kwargs: dict[str, Any], report: AggregateReport
                  ) -> Callable[[Path, str], pa.Table]:
    native = sheet_options(read_kwargs)
    if native is None:
        return _pandas_sheet_reader(read_kwargs, report)

    def read(path: Path, label: str) -> pa.Table:
        from . import _core

        [result] = _core.read_sheets([os.fspath(path)], **native)
        return _workbook_table(result, label, report, all_sheets=bool(native.get("all_sheets")))

    return read


def read_workbooks(paths: list[Path], labels: list[str], native: dict[str, Any],
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
    unified = unify([(key, t) for key, _, t in sheets], "union", "promote", report)
    if not unified:
        report.empty_files.append(label)
        return pa.table({})
    parts = []
    for key, t in unified:
        if "_sheet" in t.column_names:
            raise ValueError(f"sheet {names[key]!r} has a column named '_sheet', the column "
                             "sheet='all' adds; read the sheets one at a time")
        parts.append(with_source(t, names[key], "_sheet"))
    return pa.concat_tables(parts)


def _sheet_to_arrow(sheet: dict[str, Any]) -> pa.Table:
    """One sheet's native column buffers as an Arrow table (no Python object per cell)."""
    import pyarrow as pa

    columns = sheet["columns"]
    if not columns:
        return pa.table({})
    n = sheet["rows"]
    header = sheet["header"]
    names = pandas_names(header) if header else [str(i) for i in range(len(columns))]
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
            return frame_to_arrow(out, label, report)
        tables = [(f"{label}[{name}]", str(name), frame_to_arrow(df, f"{label}[{name}]", report))
                  for name, df in out.items()]
        names = {key: name for key, name, _ in tables}
        unified = unify([(key, t) for key, _, t in tables], "union", "promote", report)
        if not unified:
            report.empty_files.append(label)
            return pa.table({})
        return pa.concat_tables([with_source(t, names[key], "_sheet") for key, t in unified])

    return read
