"""Writing results to stdout as a table, JSON or CSV, and messages to stderr, shared by every
subcommand."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from ..log import CONSOLE_SKIP

log = logging.getLogger("parallel_file_processor.cli")


def add_format_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` / ``--csv`` (default: an aligned table), and ``--progress/--no-progress``."""
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="format", action="store_const", const="json",
                     help="write results as JSON Lines (one object per line)")
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv",
                     help="write results as CSV with a header")
    parser.set_defaults(format="table")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: when stderr is a terminal)")


def progress_enabled(args: argparse.Namespace) -> bool:
    """``--progress``/``--no-progress`` when given; else a bar when stderr is a terminal and
    ``-q`` was not given."""
    if args.progress is None:
        return sys.stderr.isatty() and not getattr(args, "quiet", False)
    return bool(args.progress)


def note(args: argparse.Namespace, text: str) -> None:
    """A summary or status line on stderr (not with ``-q``); the log file gets it too."""
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)
    log.info(text, extra=CONSOLE_SKIP)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


def write_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    fmt: str,
    out: IO[str] | None = None,
) -> None:
    """Write rows in the chosen format. JSON is JSON Lines so huge outputs stream."""
    out = out or sys.stdout
    if fmt == "json":
        for row in rows:
            out.write(json.dumps({c: _plain(v) for c, v in zip(columns, row)}, default=str))
            out.write("\n")
    elif fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([_plain(v) for v in row])
    else:
        text_rows = [["" if v is None else str(_plain(v)) for v in row] for row in rows]
        widths = [len(c) for c in columns]
        for r in text_rows:
            for i, cell in enumerate(r):
                widths[i] = max(widths[i], len(cell))
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        for r in text_rows:
            out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n")


def write_frame(df: Any, fmt: str, out: IO[str] | None = None) -> None:
    """Write a pandas DataFrame with :func:`write_rows`."""
    write_rows(list(df.columns), df.itertuples(index=False, name=None), fmt, out)


def report_errors(errors: Sequence[Any], out: IO[str] | None = None, limit: int = 20) -> None:
    """Per-file errors on stderr, the first ``limit`` of them and a count."""
    out = out or sys.stderr
    for e in errors[:limit]:
        out.write(f"error: {e}\n")
    if len(errors) > limit:
        out.write(f"... and {len(errors) - limit} more errors\n")
