"""``pfp status CHECKPOINT``: what a checkpoint holds, without running anything."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ._output import note


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show what a checkpoint holds",
                       description="Counts of a run's checkpoint (done, failed, pending when the "
                                   "folder is given), when it was last written and the "
                                   "function it belongs to.")
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    p.add_argument("directory", type=Path, nargs="?", default=None, metavar="DIR",
                   help="the folder the run processes: also count the files still to do")
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import item_key, read_info

    info = read_info(args.checkpoint)
    pending = None
    if args.directory is not None:
        from ..scan import FileScanner

        keys = info.keys
        pending = sum(1 for f in FileScanner().stream(args.directory)
                      if item_key(f) not in keys)
    fn = info.function
    out = {
        "checkpoint": str(info.path),
        "function": f"{fn.get('module', '?')}.{fn.get('qualname', '?')}",
        "code": fn.get("code", ""),
        "version": fn.get("version", ""),
        "done": info.done,
        "failed": info.failed,
        "pending": pending,
        "created": info.created,
        "last_written": info.updated,
        "torn_tail": info.torn,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.updated))
    print(f"{out['function']} (code {out['code']}"
          + (f", version {out['version']!r}" if out["version"] else "") + ")")
    print(f"done: {info.done}  failed: {info.failed}"
          + (f"  pending: {pending}" if pending is not None else ""))
    print(f"last written: {when}")
    if info.torn:
        note(args, "note: the last record was cut short (a killed run); it will be redone")
    return 0
