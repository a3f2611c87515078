"""``pfp unzip`` and ``pfp zipls``: safe parallel extraction, and listing without extracting."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._output import (
    add_format_options,
    note,
    progress_enabled,
    report_errors,
    write_frame,
    write_rows,
)
from .scan import parse_size


def add_parser(sub: argparse._SubParsersAction) -> None:
    u = sub.add_parser(
        "unzip", help="extract ZIP archives in parallel, safely",
        description="Extract every archive (or every *.zip under DIR) into OUT/<archive stem>/. "
                    "Unsafe or broken archives fail alone and leave nothing behind.")
    u.add_argument("sources", nargs="+", type=Path, metavar="DIR_OR_ZIP")
    u.add_argument("-o", "--out", type=Path, required=True, metavar="DIR")
    u.add_argument("-j", "--jobs", type=int, default=None, metavar="N")
    exists = u.add_mutually_exclusive_group()
    exists.add_argument("--overwrite", dest="if_exists", action="store_const", const="overwrite",
                        help="replace existing output")
    exists.add_argument("--skip-existing", dest="if_exists", action="store_const", const="skip",
                        help="leave archives whose output exists alone")
    u.set_defaults(if_exists="error")
    u.add_argument("--flat", action="store_true",
                   help="extract every archive straight into OUT (no per-archive folder)")
    u.add_argument("--layout", default=None, metavar="TEMPLATE",
                   help="target folder per archive, e.g. '{parent}/{stem}' (default '{stem}')")
    u.add_argument("-m", "--member", action="append", default=[], metavar="GLOB",
                   help="only extract entries matching GLOB (repeatable)")
    u.add_argument("-x", "--exclude-member", action="append", default=[], metavar="GLOB",
                   help="skip entries matching GLOB (repeatable)")
    u.add_argument("--max-total-size", type=parse_size, default=None, metavar="SIZE",
                   help="uncompressed bytes one archive may produce (default 64G)")
    u.add_argument("--max-ratio", type=float, default=None, metavar="R",
                   help="compression ratio allowed per entry above 1 MiB (default 200)")
    u.add_argument("--max-entries", type=int, default=None, metavar="N",
                   help="entries one archive may hold (default 1000000)")
    u.add_argument("--keep-partial", action="store_true",
                   help="keep a failed archive's output at <target>.partial")
    add_format_options(u)
    u.set_defaults(func=run_unzip)

    ls = sub.add_parser("zipls", help="list the entries of ZIP archives",
                        description="List entries from the central directory, without extracting.")
    ls.add_argument("archives", nargs="+", type=Path, metavar="ZIP")
    add_format_options(ls)
    ls.set_defaults(func=run_zipls)


def run_unzip(args: argparse.Namespace) -> int:
    from ..extract import extract_zips

    for s in args.sources:
        if not s.exists():
            raise FileNotFoundError(f"not found: {s}")
    source = args.sources[0] if len(args.sources) == 1 else args.sources
    layout = "flat" if args.flat else (args.layout or "per-archive")
    results = extract_zips(
        source, args.out, layout=layout, if_exists=args.if_exists,
        keep_partial=args.keep_partial, members=args.member,
        exclude_members=args.exclude_member, max_total_size=args.max_total_size,
        max_ratio=args.max_ratio, max_entries=args.max_entries, workers=args.jobs,
        progress=progress_enabled(args))
    write_rows(["archive", "status", "files", "bytes", "destination", "error"],
               ((r.archive, r.status, r.files_extracted, r.bytes, r.destination,
                 f"{r.error_type}: {r.error}" if r.error else None) for r in results),
               args.format)
    failed = [r for r in results if not r.ok]
    report_errors([f"{r.archive}: {r.error_type}: {r.error}" for r in failed])
    done = sum(r.status == "extracted" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    files = sum(r.files_extracted for r in results)
    note(args, f"{done} extracted ({files} entries), {skipped} skipped, {len(failed)} failed")
    return 1 if failed else 0


def run_zipls(args: argparse.Namespace) -> int:
    from ..extract import zip_frame

    df = zip_frame(args.archives if len(args.archives) > 1 else args.archives[0])
    cols = ["name", "size", "compressed_size", "method", "crc32", "mtime", "mode"]
    if len(args.archives) > 1:
        cols = ["archive", *cols]
    out = df[cols].copy()
    out["crc32"] = out["crc32"].map(lambda c: f"{c:08x}")
    out["mode"] = out["mode"].map(lambda m: "" if m is None or m != m else oct(int(m)))
    write_frame(out, args.format)
    errors = df.attrs.get("errors", [])
    report_errors([f"{p}: {t}: {m}" for p, t, m in errors])
    return 1 if errors else 0
