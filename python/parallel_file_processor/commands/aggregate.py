"""``pfp aggregate``: merge many CSV/TSV/JSON Lines/Parquet files and spreadsheets into one
file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._output import note, progress_enabled


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "aggregate",
        help="merge many tabular files (CSV, TSV, JSON Lines, Parquet, spreadsheets) into one",
        description="Merge tabular files and spreadsheets (read in parallel, merged in Arrow). "
        "The output and errors files are never read as inputs.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="DIR_OR_FILE")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output file (.csv, .tsv, .jsonl or .parquet)",
    )
    p.add_argument("--reader", default="auto",
                   choices=["auto", "csv", "tsv", "jsonl", "parquet", "excel"])
    p.add_argument("--sheet", default=None, metavar="NAME|INDEX|all",
                   help="spreadsheets: the sheet to read (default: the first); 'all' reads "
                   "every sheet and adds a _sheet column")
    p.add_argument("--sep", default=None, metavar="CHAR",
                   help="text files: the delimiter ('auto': sniffed per file; default: ',', "
                   "tab for .tsv)")
    p.add_argument("--decimal", default=None, metavar="CHAR", help="decimal mark, e.g. ','")
    p.add_argument("--thousands", default=None, metavar="CHAR",
                   help="thousands separator, e.g. '.'")
    p.add_argument("--encoding", default=None, help="text files: e.g. cp1252, latin-1")
    p.add_argument("--schema", default="union", choices=["union", "strict", "first"])
    p.add_argument("--dtype-conflict", default="promote", choices=["promote", "string", "error"])
    p.add_argument("--on-bad-lines", default="error", choices=["error", "skip", "collect"])
    p.add_argument(
        "--errors-csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the files that failed (path, error type, message) here",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("-j", "--workers", type=int, default=None)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..aggregate import aggregate

    inputs: Any = args.inputs[0] if len(args.inputs) == 1 else args.inputs
    options: dict[str, Any] = {}
    if args.sheet is not None:
        options["sheet"] = int(args.sheet) if args.sheet.isdigit() else args.sheet
    if args.sep is not None:
        options["sep"] = None if args.sep == "auto" else _unescape(args.sep)
    for key in ("decimal", "thousands", "encoding"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    df = aggregate(
        inputs,
        reader=args.reader,
        schema=args.schema,  # type: ignore[arg-type]
        dtype_conflict=args.dtype_conflict,
        on_bad_lines=args.on_bad_lines,
        workers=args.workers,
        output_path=args.output,
        errors_path=args.errors_csv,
        overwrite=args.overwrite,
        progress=progress_enabled(args),
        **options,
    )
    r = df.attrs["report"]
    note(args, f"{r.rows} rows from {r.files - len(r.failed)} of {r.files} files -> {args.output}")
    for e in r.failed:
        print(f"error: {e}", file=sys.stderr)
    for f, n in r.lost_rows.items():
        print(f"warning: {f}: {n} bad line(s) dropped", file=sys.stderr)
    for f, cols in r.type_changes.items():
        note(args, f"note: {f}: type changed for {', '.join(cols)}")
    for f, cols in r.mixed_columns.items():
        note(args, f"note: {f}: read as text (mixed values): {', '.join(cols)}")
    for f in r.skipped_outputs:
        note(args, f"note: {f}: not read (it is this run's output)")
    return 1 if r.failed else 0


def _unescape(sep: str) -> str:
    """``\\t`` as typed in a shell is a tab."""
    return {"\\t": "\t", "tab": "\t"}.get(sep, sep)
