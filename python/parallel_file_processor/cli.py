"""The ``pfp`` command line.

Each subcommand lives in ``parallel_file_processor.commands.<name>`` and provides
``add_parser(subparsers)``. Progress goes to stderr, results to stdout (a table, ``--json`` or
``--csv``). Exit codes: 0 all good, 1 some files failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import PFPError

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Modules under parallel_file_processor.commands, in the order `pfp --help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("run", "scan", "process", "hash", "unzip", "aggregate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfp",
        description="Scan, hash, unzip and process many files in parallel.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("pfp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileNotFoundError, NotADirectoryError, PFPError, ValueError) as exc:
        # Bad input the user can fix (missing root, bad glob, bad config): a usage error.
        print(f"pfp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # `pfp scan ... | head`: the reader went away; not an error of ours.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
