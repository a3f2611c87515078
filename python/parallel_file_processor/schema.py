"""Merging the schemas of many tables: the columns and types every file is brought to.

:func:`unify` decides each column's type across files (promoted, or text on conflict, by the
caller's policy) and conforms every table to it, recording in an :class:`AggregateReport`
what each file forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import SchemaError
from .types import FileError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["AggregateReport", "conform", "unify", "with_source"]


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

    def extend(self, part: AggregateReport) -> None:
        """Add what reading another part of the same files recorded (a cluster's shard)."""
        self.failed.extend(part.failed)
        self.empty_files.extend(part.empty_files)
        self.lost_rows.update(part.lost_rows)
        self.bad_lines.extend(part.bad_lines)
        self.mixed_columns.update(part.mixed_columns)



def unify(
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
        out.append((label, conform(t, target)))
    return out


def conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """``table`` with the columns of the schema ``target``, in its order and types: columns it
    lacks are nulls, others are cast (``pyarrow`` tables and schemas)."""
    import pyarrow as pa

    arrays = []
    for f in target:
        if f.name in table.column_names:
            col = table.column(f.name)
            arrays.append(col if col.type == f.type else col.cast(f.type, safe=False))
        else:
            arrays.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(arrays, schema=target)


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



def with_source(table: pa.Table, label: str, column: str) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    # One dictionary entry per file: the label is stored once, not once per row.
    indices = pa.array(np.zeros(table.num_rows, dtype=np.int32))
    col = pa.DictionaryArray.from_arrays(indices, pa.array([label]))
    return table.append_column(column, col)

