"""``pfp aggregate``: merge many CSV/TSV/JSON Lines/Parquet files into one file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._output import note, progress_enabled


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "aggregate",
        help="merge many tabular files into one",
        description="Merge tabular files (read in parallel, merged in Arrow).",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="DIR_OR_FILE")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output file (.csv, .tsv, .jsonl or .parquet)",
    )
    p.add_argument("--reader", default="auto", choices=["auto", "csv", "tsv", "jsonl", "parquet"])
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
    )
    r = df.attrs["report"]
    note(args, f"{r.rows} rows from {r.files - len(r.failed)} of {r.files} files -> {args.output}")
    for e in r.failed:
        print(f"error: {e}", file=sys.stderr)
    for f, n in r.lost_rows.items():
        print(f"warning: {f}: {n} bad line(s) dropped", file=sys.stderr)
    for f, cols in r.type_changes.items():
        note(args, f"note: {f}: type changed for {', '.join(cols)}")
    return 1 if r.failed else 0
