"""``pfp scan``: list files matching filters, fast (fd-like options)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ._output import add_format_options, note, progress_enabled, report_errors, write_frame


def add_filter_options(p: argparse.ArgumentParser) -> None:
    """The scanner's filters, shared by every subcommand that takes a directory."""
    g = p.add_argument_group("filters")
    g.add_argument("-i", "--include", action="append", default=[], metavar="GLOB",
                   help="keep files matching GLOB (repeatable; without '/' matches the name)")
    g.add_argument("-E", "--exclude", action="append", default=[], metavar="GLOB",
                   help="drop files and directories matching GLOB (repeatable)")
    g.add_argument("-e", "--ext", action="append", default=[], metavar="EXT",
                   help="keep this extension, e.g. csv or .csv (repeatable, case-insensitive)")
    g.add_argument("--min-size", type=parse_size, default=0, metavar="SIZE",
                   help="e.g. 100, 10k, 5M")
    g.add_argument("--max-size", type=parse_size, default=None, metavar="SIZE")
    g.add_argument("--no-recursive", dest="recursive", action="store_false",
                   help="only the directory's own entries")
    g.add_argument("-d", "--max-depth", type=int, default=None, metavar="N")
    g.add_argument("-H", "--skip-hidden", action="store_true", help="drop names starting with '.'")
    g.add_argument("-L", "--follow", action="store_true", help="follow symlinked directories")
    g.add_argument("--one-file-system", action="store_true", help="do not cross mount points")
    g.add_argument("--changed-after", type=_when, default=None, metavar="WHEN",
                   help="ISO date/time or epoch seconds")
    g.add_argument("--changed-before", type=_when, default=None, metavar="WHEN")


def filter_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed filters as keyword arguments for FileScanner / scan / hash_files."""
    return {
        "include": args.include or None,
        "exclude": args.exclude or None,
        "extensions": set(args.ext) or None,
        "min_size": args.min_size,
        "max_size": args.max_size,
        "recursive": args.recursive,
        "max_depth": args.max_depth,
        "skip_hidden": args.skip_hidden,
        "follow_symlinks": args.follow,
        "same_file_system": args.one_file_system,
        "modified_after": args.changed_after,
        "modified_before": args.changed_before,
    }


def add_scheduler_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786 (paths must be visible "
                        "to every worker)")


def scheduler_client(args: argparse.Namespace) -> Any:
    """The Dask client for ``--scheduler`` (None without it)."""
    address = getattr(args, "scheduler", None)
    if not address:
        return None
    from ..distributed import cli_client, dashboard_link

    client = cli_client(address)
    link = dashboard_link(client)
    if link:
        note(args, f"dashboard: {link}")
    return client


def parse_size(text: str) -> int:
    """A size as the options take it: ``100``, ``10k``, ``5M``, ``1.5GiB``."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100, 10k, 5M)") from None


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date/time: {text!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scan", help="list files matching filters",
                       description="List files under one or more directories, filtered in Rust.")
    p.add_argument("roots", nargs="+", type=Path, metavar="DIR")
    add_filter_options(p)
    p.add_argument("--sort", action="store_true", help="sort by path (default: unsorted, faster)")
    p.add_argument("--count", action="store_true", help="print only the number of files")
    p.add_argument("--paths", action="store_true", help="print only paths, one per line")
    add_scheduler_option(p)
    add_format_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    client = scheduler_client(args)
    errors: list[Any]
    if client is not None:
        from ..scan import scan

        result = scan(*args.roots, sort=args.sort, progress=progress_enabled(args),
                      client=client, **filter_kwargs(args))
        df, errors = result.to_dataframe(), result.errors
        n = len(df)
        if args.count:
            print(n)
        elif args.paths:
            sys.stdout.writelines(f"{p}\n" for p in df["path"])
        else:
            write_frame(df, args.format)
    else:
        from ..scan import FileScanner

        f = filter_kwargs(args)
        scanner = FileScanner(f.pop("include"), f.pop("exclude"), f.pop("extensions"),
                              f.pop("min_size"), f.pop("max_size"), f.pop("recursive"),
                              sort=args.sort, **f)
        if args.count:
            n = scanner.count(args.roots)
            print(n)
        else:
            # Rows are formatted and written natively, in batches, as the walk finds them.
            sys.stdout.flush()
            n = scanner.write(args.roots, sys.stdout.fileno(),
                              "paths" if args.paths else args.format,
                              progress=progress_enabled(args))
        errors = scanner.last_errors
    report_errors(errors)
    note(args, f"{n} files, {len(errors)} errors in {time.perf_counter() - t0:.2f}s")
    return 1 if errors else 0
