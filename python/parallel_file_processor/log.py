"""The library's logging: the ``parallel_file_processor`` logger and what the CLI adds to it.

Every module logs to a child of ``parallel_file_processor`` (``logging.getLogger(__name__)``).
The library never configures logging and never prints: the package logger has a
``NullHandler``, so records go only where the application sends them::

    logging.basicConfig(level=logging.INFO)    # or a handler on "parallel_file_processor"

Levels:

* ``WARNING``: each item or file that failed (its path, or the item, the error type and the
  message), once, where the failure is recorded: the job driver for the engine's items in every
  mode, the scan for unreadable entries, hashing, extraction and merging for their files;
* ``INFO``: retries, items given up after a timeout or a crash, work resubmitted, interrupts;
* ``DEBUG``: timings and how work was split (runner, workers, chunk sizes, shards).

Records made by the user's function in a process worker (any logger) are sent to the parent
over the worker's result pipe and handled there by the logger of the same name, so the
parent's handlers see them; on a Dask cluster distributed's ``Client.forward_logging`` does the
same (see :mod:`.runners.dask`).
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

__all__ = [
    "LOGGER_NAME",
    "LEVELS",
    "item_failed",
    "file_failed",
    "files_failed",
    "describe_item",
    "levels",
    "forward_records",
    "replay",
    "file_handler",
    "console_handler",
    "attached",
    "CONSOLE_SKIP",
    "reported_by_caller",
    "write_error",
]

LOGGER_NAME = "parallel_file_processor"
#: level names accepted by the CLI and job files
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
#: ``extra=`` for records that are already on the terminal (the CLI's summary and error
#: lines): log files get them, the console handler skips them
CONSOLE_SKIP = {"pfp_console": False}

_package = logging.getLogger(LOGGER_NAME)
_package.addHandler(logging.NullHandler())

_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(processName)s %(process)d]: %(message)s"
_CONSOLE_FORMAT = "pfp: %(levelname)s: %(message)s"
_REPR_MAX = 120
_REPORTED_BY_CALLER: ContextVar[bool] = ContextVar("pfp_reported_by_caller", default=False)


# --- failures ---------------------------------------------------------------------------------


def describe_item(index: int, item: Any, path: str = "") -> str:
    """How a log line names an item: its path, or its position and a short repr."""
    if path:
        return path
    text = repr(item)
    if len(text) > _REPR_MAX:
        text = text[:_REPR_MAX - 3] + "..."
    return f"item {index} ({text})"


def item_failed(log: logging.Logger, result: Any) -> None:
    """WARNING for one failed, timed-out or crashed item (a ``ProcessingResult``)."""
    if not log.isEnabledFor(logging.WARNING):
        return
    path = result.file_info.path_str
    if path == ".":  # the placeholder of an item that is not a file
        path = ""
    log.warning(
        "%s: %s: %s", describe_item(result.index, result.item, path), result.error_type,
        result.error,
        extra={"file_path": path or None, "item_index": result.index,
               "error_type": result.error_type, "status": result.status},
    )


@contextmanager
def reported_by_caller() -> Iterator[None]:
    """Inside, files that fail are not logged here: the caller logs them once (a cluster
    shard's failures are logged on the client, not also on the worker)."""
    token = _REPORTED_BY_CALLER.set(True)
    try:
        yield
    finally:
        _REPORTED_BY_CALLER.reset(token)


def file_failed(log: logging.Logger, path: str | os.PathLike[str], error_type: str | None,
                message: str | None) -> None:
    """WARNING for one file, directory or archive a native job could not handle."""
    if log.isEnabledFor(logging.WARNING) and not _REPORTED_BY_CALLER.get():
        where = os.fspath(path)
        log.warning("%s: %s: %s", where, error_type, message,
                    extra={"file_path": where, "error_type": error_type, "status": "failed"})


def files_failed(log: logging.Logger, errors: Iterable[Any]) -> None:
    """:func:`file_failed` for each ``FileError`` (``path``, ``error_type``, ``message``)."""
    if log.isEnabledFor(logging.WARNING) and not _REPORTED_BY_CALLER.get():
        for e in errors:
            file_failed(log, e.path, e.error_type, e.message)


# --- records from worker processes --------------------------------------------------------------


def levels() -> dict[str, int]:
    """The levels set in this process (``""`` is the root), for a worker to copy, so it makes
    the records the parent would keep and no others."""
    out = {"": logging.getLogger().level}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            out[name] = logger.level
    return out


class _Forwarder(logging.Handler):
    """Sends each record (message formatted, arguments and traceback turned into text, as
    ``QueueHandler`` prepares it) to ``send``; a record that cannot be pickled goes as its
    text alone. (``logging.handlers`` is imported only in workers that forward.)"""

    def __init__(self, send: Callable[[logging.LogRecord], None]) -> None:
        super().__init__()
        self._send_record = send

    def emit(self, record: logging.LogRecord) -> None:
        import logging.handlers

        try:
            self.enqueue(logging.handlers.QueueHandler.prepare(self, record))  # type: ignore[arg-type]
        except Exception:
            self.handleError(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self._send_record(record)
        except (pickle.PicklingError, TypeError, AttributeError, ValueError):
            # an ``extra`` value that cannot be pickled: send the text and plain fields
            plain = logging.makeLogRecord({k: v for k, v in record.__dict__.items()
                                           if isinstance(v, (str, int, float, type(None)))})
            self._send_record(plain)


def forward_records(send: Callable[[logging.LogRecord], None], parent_levels: dict[str, int]
                    ) -> None:
    """In a worker process: send every record to the parent with ``send`` instead of handling
    it here. Handlers inherited through ``fork`` are dropped so nothing is written twice."""
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            for h in list(logger.handlers):
                if not isinstance(h, logging.NullHandler):
                    logger.removeHandler(h)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_Forwarder(send))
    for name, level in parent_levels.items():
        logging.getLogger(name or None).setLevel(level)


def replay(record: logging.LogRecord) -> None:
    """In the parent: handle a worker's record as if it had been made here."""
    logger = logging.getLogger(record.name if record.name != "root" else None)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


# --- handlers for the CLI and job files --------------------------------------------------------


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """Records on stderr, written above a progress bar when one is drawn."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "pfp_console", True) is False:
            return
        tqdm = sys.modules.get("tqdm")
        if tqdm is None:
            super().emit(record)
            return
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


def console_handler(level: int) -> logging.Handler:
    handler = _Console(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_CONSOLE_FORMAT))
    return handler


class _LogFile(logging.FileHandler):
    """A log file that, when it cannot be written (a full disk), stops writing and keeps the
    error (:func:`write_error`) instead of printing a traceback for every record."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.error: OSError | None = None

    def _failed(self, exc: OSError) -> None:
        if self.error is None:
            exc.filename = exc.filename or self.baseFilename
            self.error = exc

    def emit(self, record: logging.LogRecord) -> None:
        if self.error is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            self._failed(exc)
        else:
            super().handleError(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:
            self._failed(exc)


def file_handler(path: str | os.PathLike[str], level: int) -> logging.Handler:
    """Appends records to ``path`` (its folder is created). Raises ``OSError`` naming the file
    when it cannot be opened; a later write error is kept for :func:`write_error`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handler = _LogFile(target)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(_FILE_FORMAT))
    return handler


def write_error(handler: logging.Handler) -> OSError | None:
    """Why a :func:`file_handler` could not write everything (None: it did)."""
    return getattr(handler, "error", None)


@contextmanager
def attached(*handlers: logging.Handler, application: bool = False) -> Iterator[None]:
    """Attach handlers to the root logger for a while, so they also get the records of the
    user's function (in this process and forwarded from workers). The package logger's level
    is lowered to what the handlers ask for; with ``application`` (the ``pfp`` command, which
    owns the process) the root logger's too. Levels and handlers are restored after."""
    root = logging.getLogger()
    saved = [(root, root.level), (_package, _package.level)]
    wanted = min((h.level for h in handlers), default=logging.NOTSET)
    if wanted != logging.NOTSET:
        for logger in (root, _package) if application else (_package,):
            if logger.getEffectiveLevel() > wanted:
                logger.setLevel(wanted)
    for h in handlers:
        root.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            root.removeHandler(h)
            h.close()
        for logger, level in saved:
            logger.setLevel(level)
