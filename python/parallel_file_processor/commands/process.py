"""``pfp process``: run a Python function (``module:function``) on every matching file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._output import add_format_options, note, progress_enabled, report_errors, write_frame
from .scan import add_filter_options, filter_kwargs


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "process",
        help="run MODULE:FUNCTION on every matching file",
        description="Run a Python function on every file under DIR; one row per file.",
    )
    p.add_argument("roots", nargs="+", type=Path, metavar="DIR")
    p.add_argument(
        "-f",
        "--func",
        dest="function",
        required=True,
        metavar="MODULE:FUNCTION",
        help="called with a FileInfo per file (module importable, or file.py:func)",
    )
    p.add_argument(
        "-m",
        "--mode",
        default="thread_pool",
        choices=["sequential", "thread_pool", "process_pool", "async"],
    )
    p.add_argument("-j", "--workers", type=int, default=None, metavar="N")
    p.add_argument("--batch-size", type=int, default=None, metavar="N")
    p.add_argument("--retries", type=int, default=0, metavar="N")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--prefetch", action="store_true", help="read files ahead in Rust")
    p.add_argument("--checkpoint", type=Path, default=None, metavar="FILE",
                   help="keep each finished file's outcome in FILE; a re-run with it does only "
                        "new or changed files (and failed ones)")
    p.add_argument("--rate-limit", default=None, metavar="RATE",
                   help="calls per second for the whole run, e.g. 20 or 100/min")
    p.add_argument(
        "--errors-csv",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the failed files (path, error type, message) to FILE",
    )
    add_filter_options(p)
    add_format_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import FileProcessor
    from ..jobs import load_function
    from ..results import ResultAggregator
    from ..scan import FileScanner

    fn = load_function(args.function)
    kw = filter_kwargs(args)
    scanner = FileScanner(
        kw.pop("include"),
        kw.pop("exclude"),
        kw.pop("extensions"),
        kw.pop("min_size"),
        kw.pop("max_size"),
        kw.pop("recursive"),
        max_depth=kw.pop("max_depth"),
        skip_hidden=kw.pop("skip_hidden"),
        follow_symlinks=kw.pop("follow_symlinks"),
        same_file_system=kw.pop("same_file_system"),
        modified_after=kw.pop("modified_after"),
        modified_before=kw.pop("modified_before"),
    )
    fp = FileProcessor(
        scanner,
        args.mode,
        args.workers,
        prefetch=args.prefetch,
        retries=args.retries,
        timeout=args.timeout,
        batch_size=args.batch_size,
        progress=progress_enabled(args),
        checkpoint=args.checkpoint,
        rate_limit=_rate(args.rate_limit),
    )
    total = None
    for root in args.roots:
        result = fp.process_directory(root, fn)
        total = result if total is None else _merge(total, result)
    assert total is not None
    agg = ResultAggregator(total)
    write_frame(agg.to_dataframe(), args.format)
    if args.errors_csv is not None:
        agg.export_errors_csv(args.errors_csv, overwrite=True)
    report_errors(
        [f"{r.file_info.path}: {r.error_type}: {r.error}" for r in total.failed_results()]
    )
    note(args, f"{total.successful} ok, {total.failed} failed of {total.total_files} in "
               f"{total.total_duration_seconds:.2f}s")
    return 1 if total.failed else 0


def _rate(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _merge(a: Any, b: Any) -> Any:
    for r in b.results:
        a.add(r)
    a.total_files += b.total_files
    a.total_duration_seconds += b.total_duration_seconds
    return a
