"""``pfp hash``, ``pfp dupes`` and ``pfp verify``: digests, duplicate files, manifests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._output import add_format_options, note, progress_enabled, report_errors, write_frame
from .scan import add_filter_options, add_scheduler_option, filter_kwargs, scheduler_client

ALGOS = ["blake3", "sha256", "sha1", "md5", "xxh3_64", "xxh3_128", "crc32c"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    h = sub.add_parser("hash", help="hash files in parallel",
                       description="Hash every matching file under DIR (or the given files).")
    h.add_argument("targets", nargs="+", type=Path, metavar="DIR_OR_FILE")
    h.add_argument("-a", "--algo", default="blake3", choices=ALGOS)
    h.add_argument("--manifest", type=Path, default=None, metavar="FILE",
                   help="also write a b3sum/sha256sum-style manifest")
    h.add_argument("--cache", type=Path, default=None, metavar="FILE.sqlite",
                   help="remember digests; re-runs only stat unchanged files")
    h.add_argument("--rebuild-cache", action="store_true")
    h.add_argument("-j", "--jobs", type=int, default=None, metavar="N")
    add_scheduler_option(h)
    add_filter_options(h)
    add_format_options(h)
    h.set_defaults(func=run_hash)

    d = sub.add_parser("dupes", help="find duplicate files",
                       description="Group identical files (size, head+tail, full hash).")
    d.add_argument("roots", nargs="+", type=Path, metavar="DIR")
    d.add_argument("-a", "--algo", default="blake3", choices=ALGOS)
    d.add_argument("--include-empty", action="store_true")
    d.add_argument("-j", "--jobs", type=int, default=None, metavar="N")
    add_scheduler_option(d)
    add_filter_options(d)
    add_format_options(d)
    d.set_defaults(func=run_dupes)

    v = sub.add_parser("verify", help="check files against a manifest",
                       description="Check a manifest (ours, b3sum's, sha256sum's...).")
    v.add_argument("manifest", type=Path)
    v.add_argument("-a", "--algo", default=None, choices=ALGOS,
                   help="default: guessed from the manifest's name or digest length")
    v.add_argument("--base", type=Path, default=None,
                   help="directory the paths are relative to (default: the manifest's)")
    add_format_options(v)
    v.set_defaults(func=run_verify)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    kw = filter_kwargs(args)
    return {k: v for k, v in kw.items() if v is not None and v != 0 or k == "recursive"}


def run_hash(args: argparse.Namespace) -> int:
    from .. import _core
    from ..hash import hash_files, manifest_from_results

    targets = args.targets
    for t in targets:
        if not t.exists():
            raise FileNotFoundError(f"not found: {t}")
    one_dir = len(targets) == 1 and targets[0].is_dir()
    source = targets[0] if one_dir else targets
    filters = _filters(args) if one_dir else {}
    results = hash_files(source, args.algo, workers=args.jobs, progress=progress_enabled(args),
                         cache=args.cache, rebuild_cache=args.rebuild_cache,
                         client=scheduler_client(args), **filters)
    # Rows are formatted and written natively, in batches.
    sys.stdout.flush()
    _core.write_hash_rows(results, sys.stdout.fileno(), args.format)
    failed = [r for r in results if r.digest is None]
    report_errors([f"{r.path_str}: {r.error}" for r in failed])
    if args.manifest is not None:
        manifest, _ = manifest_from_results(results, args.manifest)
        note(args, f"wrote {manifest}" + (f" without {len(failed)} file(s) that could not be "
                                          "hashed" if failed else ""))
    changed = sum(r.changed for r in results)
    note(args, f"{len(results) - len(failed)} hashed, {len(failed)} failed ({changed} changed "
               "while read)")
    return 1 if failed else 0


def run_dupes(args: argparse.Namespace) -> int:
    from ..hash import find_duplicates, write_duplicates

    roots = args.roots if len(args.roots) > 1 else args.roots[0]
    client = scheduler_client(args)
    if client is not None:
        df = find_duplicates(roots, algorithm=args.algo, include_empty=args.include_empty,
                             workers=args.jobs, progress=progress_enabled(args), client=client,
                             **_filters(args))
        write_frame(df, args.format)
        rows, groups = len(df), (df["group"].nunique() if len(df) else 0)
        reclaimable, errors = df.attrs["reclaimable_bytes"], df.attrs.get("errors", [])
    else:
        # Rows are written natively; no DataFrame is built.
        sys.stdout.flush()
        out = write_duplicates(roots, sys.stdout.fileno(), args.format, algorithm=args.algo,
                               include_empty=args.include_empty, workers=args.jobs,
                               progress=progress_enabled(args), **_filters(args))
        rows, groups = out["rows"], out["groups"]
        reclaimable, errors = out["reclaimable"], out["errors"]
    note(args, f"{groups} groups, {rows} files, {reclaimable} bytes reclaimable")
    report_errors([f"{p}: {t}: {m}" for p, t, m in errors])
    return 1 if errors else 0


def run_verify(args: argparse.Namespace) -> int:
    from ..hash import verify_manifest

    res = verify_manifest(args.manifest, algorithm=args.algo, base=args.base)
    df = res.to_dataframe()
    if args.quiet:
        df = df[df["status"] != "OK"]
    if args.format == "table":
        for name, status in zip(df["name"], df["status"]):
            print(f"{name}: {status}")
    else:
        write_frame(df, args.format)
    for lineno, text in res.malformed:
        print(f"{args.manifest}:{lineno}: malformed line: {text[:80]!r}", file=sys.stderr)
    s = res.summary()
    note(args, f"{s['ok']} OK, {s['failed']} FAILED, {s['missing']} MISSING, {s['errors']} "
               f"unreadable, {s['malformed_lines']} malformed lines ({res.algorithm})")
    return 0 if res.all_ok else 1
