"""``pfp run job.yaml``: run a whole job described by a YAML file (the seed's shape)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._output import note


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a job file (scan -> process -> outputs)",
        description="Run the job described by a YAML file.",
    )
    p.add_argument("job", type=Path, metavar="JOB.yaml")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the job file and list what would be processed",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask cluster (overrides processing.scheduler)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: progress.enabled of the job file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_job
    from ..jobs import job_scanner, run_job

    cfg = load_job(args.job)
    if args.scheduler:
        cfg.scheduler = args.scheduler
    if args.progress is not None:
        cfg.progress = args.progress
    elif args.quiet:
        cfg.progress = False
    if args.log_file is not None:
        cfg.log_file = None  # --log-file already gets every record of the run
    if args.dry_run:
        files = job_scanner(cfg).list_files(cfg.directory)
        print(f"job OK: {len(files)} files under {cfg.directory} -> processor {cfg.processor}")
        for f in files:
            print(f"  {f.relative_path}")
        return 0
    outcome = run_job(cfg)
    if outcome.dashboard:
        note(args, f"dashboard: {outcome.dashboard}")
    s = outcome.summary
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    else:
        print(
            f"{s['successful']} of {s['total_files']} files processed "
            f"({s['success_rate_pct']:.1f}%), {s['failed']} failed, "
            f"in {s['total_duration_seconds']:.2f}s"
        )
        for e in s["errors"]:
            print(f"  error: {e}")
        for w in outcome.written:
            print(f"  wrote {w}")
    return 1 if s["failed"] else 0
