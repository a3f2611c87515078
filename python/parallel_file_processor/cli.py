"""The ``pfp`` command line.

Each subcommand lives in ``parallel_file_processor.commands.<name>`` and provides
``add_parser(subparsers)``; every subcommand also takes the common options (``-v``, ``-q``,
``--log-file``). Progress goes to stderr, results to stdout (a table, ``--json`` or ``--csv``).

Errors are reported here, for every subcommand, as one line naming the file and the cause
(``pfp hash: error: SUMS: No space left on device``), and the exit code says what happened:

* 0: everything went well;
* 1: some files failed (each reported), or an output (stdout, ``-o``, ``--manifest``, a job's
  outputs) could not be written whole: the disk is full, read-only or failing;
* 2: the command could not run as given: a bad option, a missing or unreadable input, an
  invalid job file, an output that may not be created or replaced;
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PFPError, WorkerCrashed
from .log import CONSOLE_SKIP, attached, console_handler, file_handler, write_error

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Modules under parallel_file_processor.commands, in the order `pfp --help` lists them.
COMMAND_MODULES: tuple[str, ...] = ("run", "scan", "process", "hash", "unzip", "aggregate",
                                     "status")

#: ``errno`` values of an output that could not be written whole (exit 1, not a usage error)
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
#: what error lines call standard output
STDOUT = "<stdout>"

log = logging.getLogger(__name__)


# --- the common options ---------------------------------------------------------------------


def common_options() -> argparse.ArgumentParser:
    """The parent parser of every subcommand: how much goes to stderr, and a log file."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("messages and logging")
    loud = g.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0,
                      help="log each failed file, retries and what was given up to stderr as "
                           "it happens; -vv also timings and how the work was split")
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="only problems on stderr: no progress bar, no summary")
    g.add_argument("--log-file", type=Path, default=None, metavar="FILE",
                   help="append log records to FILE: failed files, retries, the summary "
                        "(-vv: debug records too)")
    return common


class _Subcommand(argparse.ArgumentParser):
    """The parser class of every subcommand: the common options come with each one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parents"] = [*kwargs.get("parents", ()), common_options()]
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfp",
        description="Scan, hash, unzip and process many files in parallel.",
        epilog="Exit codes: 0 all went well, 1 some files failed or an output could not be "
               "written whole, 2 the command could not run as given, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=_Subcommand)
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
    return parser


def _handlers(args: argparse.Namespace) -> list[logging.Handler]:
    level = {0: logging.INFO, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    handlers = []
    if args.verbose:
        handlers.append(console_handler(level))
    if args.log_file is not None:
        handlers.append(file_handler(args.log_file, level))
    return handlers


# --- standard output ------------------------------------------------------------------------


class _Stdout:
    """``sys.stdout`` while a command runs: a failed write or flush names standard output
    (the file behind it when there is one, e.g. ``/dev/full``)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        #: the descriptor was handed out (to a native writer, whose errors name no file)
        self.lent = False

    def write(self, text: str) -> int:
        try:
            return int(self.stream.write(text))
        except OSError as exc:
            raise _named(exc, stdout_name()) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            raise _named(exc, stdout_name()) from None

    def fileno(self) -> int:
        self.lent = True
        return int(self.stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def stdout_name() -> str:
    try:
        target = os.readlink("/proc/self/fd/1")
    except OSError:
        return STDOUT
    return f"{STDOUT} ({target})" if target.startswith("/") else STDOUT


def _named(exc: OSError, name: str) -> OSError:
    if exc.filename is None:
        exc.filename = name
    return exc


def _silence_stdout() -> None:
    """After stdout failed: what is still buffered goes nowhere, so the interpreter's last
    flush at exit cannot fail again (and print a second, raw error)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


# --- errors -----------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    """One line: the file and the cause."""
    if isinstance(exc, OSError) and not isinstance(exc, PFPError) and exc.filename is not None:
        where = os.fsdecode(exc.filename) if isinstance(exc.filename, (str, bytes)) \
            else str(exc.filename)
        if exc.filename2 is not None:
            where += f" -> {os.fsdecode(exc.filename2)}"
        text = f"{where}: {exc.strerror or exc}"
    elif isinstance(exc, (PFPError, OSError, ValueError)):
        text = str(exc) or type(exc).__name__
    else:  # not one of ours: the type says what went wrong
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, WorkerCrashed):
        return EXIT_FAILURES
    if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:
        return EXIT_FAILURES
    if isinstance(exc, PFPError):
        return EXIT_USAGE
    if isinstance(exc, (OSError, ValueError)):
        return EXIT_USAGE
    return EXIT_FAILURES


def _fail(command: str, exc: BaseException, out: _Stdout | None, verbose: int) -> int:
    if (isinstance(exc, OSError) and exc.filename is None and out is not None and out.lent
            and exc.errno in WRITE_FAILURES | {errno.EPIPE}):
        exc.filename = stdout_name()  # a native writer's error on the descriptor it was lent
    if isinstance(exc, BrokenPipeError) and str(exc.filename).startswith(STDOUT):
        # `pfp scan ... | head`: the reader went away; not an error of ours.
        _silence_stdout()
        return EXIT_OK
    if isinstance(exc, OSError) and str(exc.filename).startswith(STDOUT):
        _silence_stdout()
    line = f"{command}: error: {describe(exc)}"
    print(line, file=sys.stderr)
    unexpected = exit_code(exc) == EXIT_FAILURES and not isinstance(exc, (OSError, PFPError))
    log.error(line, exc_info=exc if unexpected else None, extra=CONSOLE_SKIP)
    if unexpected and verbose >= 2:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return exit_code(exc)


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    result = getattr(exc, "result", None)
    detail = "" if result is None else (
        f" ({result.successful + result.failed} items finished, {result.cancelled} cancelled)")
    line = f"{command}: interrupted{detail}"
    print(line, file=sys.stderr)
    log.info(line, extra=CONSOLE_SKIP)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f"pfp {args.command}"
    try:
        handlers = _handlers(args)
    except OSError as exc:  # the log file cannot be opened: nothing has run yet
        return _fail(command, exc, None, args.verbose)
    saved, out = sys.stdout, _Stdout(sys.stdout)
    sys.stdout = out  # type: ignore[assignment]
    try:
        with attached(*handlers, application=True):
            try:
                code = int(args.func(args))
                out.flush()
            except KeyboardInterrupt as exc:
                code = _interrupted(command, exc)
            except Exception as exc:
                code = _fail(command, exc, out, args.verbose)
    finally:
        sys.stdout = saved
    for h in handlers:  # closed by now: a log file that could not be written whole
        error = write_error(h)
        if error is not None:
            print(f"{command}: error: {describe(error)} (the log file)", file=sys.stderr)
            code = max(code, EXIT_FAILURES)
    return code


if __name__ == "__main__":
    sys.exit(main())
