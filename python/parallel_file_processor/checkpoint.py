"""Checkpoints: every finished item's outcome, kept on disk as the run goes, so a run that dies
(a crash, ``kill -9``, a reboot) resumes where it was and a re-run does only new work.

The store is an append-only log: a header naming the function the results belong to, then one
record per batch of finished items (length, CRC-32, pickled rows), each written with one
``write`` as the driver receives the batch, so a process killed at any moment loses at most
the items that were still running; a record cut short by the kill is ignored when the log is
read back. Appending costs about a microsecond per item (measured against SQLite in WAL mode
with batched commits, which cost several); reading 100,000 items back takes a fraction of a
second.

Items are keyed by what identifies their work: a file by its path, size and modification time
(a changed or new file runs again, an unchanged one does not), any other item by a stable key
of its value, or by the caller's ``key=`` function.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import pickle
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .types import FileInfo, ProcessingResult, Status

__all__ = ["Checkpoint", "CheckpointInfo", "Resume", "function_identity", "item_key",
           "read_info"]

_MAGIC = b"PFPCKPT1"
_HEADER = struct.Struct("<II")  # length, crc32 of each record's payload
#: a record larger than this is not believed (a corrupt length)
_MAX_RECORD = 1 << 30


def function_identity(fn: Callable[..., Any], version: str | None = None) -> dict[str, str]:
    """What results belong to: the function's module, qualified name and a hash of its code
    (its bytecode, constants and names, nested functions included), and the user's
    ``version``. A callable object is identified by its class and ``__call__``."""
    if isinstance(fn, functools.partial):
        # the function and what it was given (job files pass processing.options this way)
        of_func = function_identity(fn.func, version)
        bound = hashlib.sha256(repr((fn.args, sorted(fn.keywords.items()))).encode())
        of_func["code"] = hashlib.sha256((of_func["code"] + bound.hexdigest()).encode()
                                         ).hexdigest()[:16]
        return of_func
    target = fn
    code = getattr(target, "__code__", None)
    if code is None and callable(target) and not isinstance(target, type):
        call = vars(type(target)).get("__call__")
        code = getattr(call, "__code__", None)
        target = type(target)
    wrapped = getattr(fn, "__wrapped__", None)
    if code is None and wrapped is not None:
        code = getattr(wrapped, "__code__", None)
    digest = _code_digest(code) if code is not None else ""
    return {
        "module": str(getattr(target, "__module__", None) or ""),
        "qualname": str(getattr(target, "__qualname__", None) or type(target).__qualname__),
        "code": digest[:16],
        "version": version or "",
    }


def _code_digest(code: Any) -> str:
    """A hash of what a code object does (bytecode, constants, names), not of where it is:
    moving a function in its file, or editing a comment, keeps its results."""
    h = hashlib.sha256(code.co_code)
    for const in code.co_consts:
        h.update(_code_digest(const).encode() if hasattr(const, "co_code")
                 else marshal.dumps(const) if _marshallable(const) else repr(const).encode())
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars)).encode())
    return h.hexdigest()


def _marshallable(value: Any) -> bool:
    try:
        marshal.dumps(value)
    except ValueError:
        return False
    return True


def item_key(item: Any, key: Callable[[Any], Any] | None = None) -> str:
    """The key an item's outcome is stored under (see the module docs)."""
    if key is not None:
        return f"k:{key(item)!r}"
    kind = type(item)
    if kind is int:
        return f"v:int:{item}"
    if kind is str:
        return f"v:str:{item!r}"
    if kind is FileInfo or isinstance(item, FileInfo):
        return f"f:{item.path_str}\0{item.size_bytes}\0{item.modified_time!r}"
    if isinstance(item, (str, int, float, bytes, bool)) or item is None:
        return f"v:{type(item).__name__}:{item!r}"
    if isinstance(item, os.PathLike):
        path = os.fspath(item)
        try:
            st = os.stat(path)
        except OSError:
            return f"p:{path!r}"
        return f"f:{path}\0{st.st_size}\0{st.st_mtime!r}"
    try:
        blob = pickle.dumps(item, protocol=5)
    except Exception as exc:
        raise CheckpointError(
            f"cannot key item {item!r} of type {type(item).__name__} for the checkpoint "
            f"({exc}); pass key= a function giving a stable key") from None
    return "h:" + hashlib.sha256(blob).hexdigest()


@dataclass
class CheckpointInfo:
    """What a checkpoint holds (``pfp status``)."""

    path: Path
    function: dict[str, str]
    created: float
    updated: float
    done: int = 0
    failed: int = 0
    #: records left unread at the end (cut short by a kill)
    torn: bool = False
    statuses: dict[str, int] = field(default_factory=dict)
    #: the keys of the items it holds an outcome for
    keys: set[str] = field(default_factory=set, repr=False)


#: one stored outcome: key -> (status, result, error, error_type, traceback, attempts,
#: duration, worker_id)
Row = tuple[str, Any, str | None, str | None, str | None, int, float, str | None]


def _records(data: bytes) -> Iterator[tuple[Any, bool]]:
    """The log's records in order, as (object, is_last_good); stops at a torn record."""
    pos = len(_MAGIC)
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            return
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + _HEADER.size
        end = start + length
        if length > _MAX_RECORD or end > len(data):
            return
        payload = data[start:end]
        if zlib.crc32(payload) != crc:
            return
        yield pickle.loads(payload), end == len(data)
        pos = end


def _load(path: Path) -> tuple[dict[str, Any] | None, dict[str, Any], bool]:
    """(header, rows by key, torn) of an existing log."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, {}, False
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if not data.startswith(_MAGIC):
        raise CheckpointError(
            f"{path} is not a checkpoint of this package; remove it or name another file")
    header: dict[str, Any] | None = None
    rows: dict[str, Any] = {}
    complete = False
    for obj, last in _records(data):
        if header is None:
            header = obj
        else:
            rows.update(obj)
        complete = last
    torn = not complete and len(data) > len(_MAGIC)
    return header, rows, torn


def read_info(path: str | os.PathLike[str]) -> CheckpointInfo:
    """Counts and identity of a checkpoint file, without running anything."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no checkpoint at {p}")
    header, rows, torn = _load(p)
    if header is None:
        raise CheckpointError(f"{p} holds no checkpoint header (cut short when it was made)")
    statuses: dict[str, int] = {}
    for row in rows.values():
        status = Status.OK if len(row) == 1 else row[0]
        statuses[status] = statuses.get(status, 0) + 1
    done = statuses.get(Status.OK, 0)
    return CheckpointInfo(p, dict(header.get("function", {})), float(header.get("created", 0)),
                          p.stat().st_mtime, done, len(rows) - done, torn, statuses,
                          set(rows))


class Checkpoint:
    """One run's checkpoint: what was done before (``lookup``) and what finishes now
    (``record``). Opened by the engine for ``checkpoint=PATH``.

    ``reuse``: ``"same"`` (default) keeps stored outcomes only when the function (module,
    qualified name, code hash, ``version``) is the one they were made by, and otherwise says
    so in :attr:`note` and starts over; ``"always"`` keeps them whatever the function is.
    """

    def __init__(self, path: str | os.PathLike[str], identity: dict[str, str], *,
                 reuse: str = "same", retry_failed: bool = True) -> None:
        if reuse not in ("same", "always"):
            raise ValueError("reuse must be 'same' or 'always'")
        self.path = Path(path)
        self.identity = identity
        self.retry_failed = retry_failed
        #: why stored outcomes were not used (a changed function), or None
        self.note: str | None = None
        header, rows, _torn = _load(self.path)
        if header is not None and reuse == "same" and header.get("function") != identity:
            old = header.get("function", {})
            self.note = (f"checkpoint {self.path} was made by {_describe(old)}, not by "
                         f"{_describe(identity)}: starting over (reuse='always' keeps it)")
            header, rows = None, {}
        self._rows = rows
        self.reused = len(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if header is None:
                self._file: Any = open(self.path, "wb")  # noqa: SIM115 - closed by close()
                self._file.write(_MAGIC)
                self._write({"function": identity, "created": time.time()})
            else:
                # Append after the last complete record (drop a torn tail).
                self._file = open(self.path, "r+b")  # noqa: SIM115
                self._file.seek(self._good_end())
                self._file.truncate()
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoint {self.path}: {exc.strerror or exc}") from None

    def _good_end(self) -> int:
        data = self.path.read_bytes()
        pos = len(_MAGIC)
        for _obj, _last in _records(data):
            length, _crc = _HEADER.unpack_from(data, pos)
            pos += _HEADER.size + length
        return pos

    def _write(self, obj: Any) -> None:
        payload = pickle.dumps(obj, protocol=5)
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()

    @property
    def held(self) -> int:
        """Outcomes the checkpoint holds."""
        return len(self._rows)

    def lookup(self, key: str) -> Row | None:
        """The stored outcome to reuse for ``key``, or None when the item must run."""
        row = self._rows.get(key)
        if row is None:
            return None
        if len(row) == 1:  # a success is stored as its value alone
            return (Status.OK, row[0], None, None, None, 1, 0.0, None)
        if self.retry_failed:
            return None
        return row

    def record(self, done: list[tuple[str, ProcessingResult[Any]]]) -> list[str]:
        """Store finished items (one write). Returns the keys whose result could not be
        stored (not picklable): the caller turns those into failures naming the type."""
        rows: dict[str, Any] = {}
        ok = Status.OK
        for key, r in done:
            if r.status == ok:
                rows[key] = (r.result,)  # small: most outcomes are successes
            elif r.status != Status.CANCELLED:  # a cancelled item never ran: it runs again
                rows[key] = (r.status, r.result, r.error, r.error_type, r.traceback,
                             r.attempts, r.duration_seconds, r.worker_id)
        if not rows:
            return []
        refused: list[str] = []
        try:
            payload = pickle.dumps(rows, protocol=5)
        except Exception:
            # Some result cannot be pickled: find which, keep the others.
            for key, row in list(rows.items()):
                try:
                    pickle.dumps(row, protocol=5)
                except Exception:
                    refused.append(key)
                    del rows[key]
            payload = pickle.dumps(rows, protocol=5)
        try:
            self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self._file.flush()
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoint {self.path}: {exc.strerror or exc}") from None
        return refused

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(identity: dict[str, Any]) -> str:
    text = f"{identity.get('module', '?')}.{identity.get('qualname', '?')}"
    text += f" (code {identity.get('code', '?')}"
    if identity.get("version"):
        text += f", version {identity['version']!r}"
    return text + ")"


class Resume:
    """What the driver does with a checkpoint: items already done come back as their stored
    outcomes (``split``), items that ran are recorded as they finish (``record``)."""

    def __init__(self, checkpoint: Checkpoint, key: Callable[[Any], Any] | None = None) -> None:
        self.checkpoint = checkpoint
        self._key = key
        #: nothing was kept from earlier runs: no item needs looking up
        self._fresh = not checkpoint.held
        #: outcomes taken from the checkpoint so far
        self.reused = 0

    def split(self, chunk: list[tuple[int, Any]]
              ) -> tuple[list[tuple[int, Any]], list[ProcessingResult[Any]]]:
        """The items of a chunk that must run, and the outcomes of those already done."""
        if self._fresh:
            return chunk, []
        from .task import file_info_for

        run: list[tuple[int, Any]] = []
        done: list[ProcessingResult[Any]] = []
        lookup = self.checkpoint.lookup
        keyfn = self._key
        for index, item in chunk:
            row = lookup(item_key(item, keyfn))
            if row is None:
                run.append((index, item))
                continue
            status, value, error, error_type, trace, attempts, seconds, worker = row
            done.append(ProcessingResult(
                file_info_for(item), status == Status.OK, value, error, seconds, error_type,
                trace, attempts, worker, status, index, item, True))
        self.reused += len(done)
        return run, done

    def record(self, out: list[ProcessingResult[Any]]) -> None:
        """Keep the outcomes of items that ran (keyed by their items, as ``split`` keys
        them); a result that cannot be kept turns into a failure of its item naming the type
        (in ``out``, in place)."""
        keyfn = self._key
        pairs = [(item_key(r.item, keyfn), r) for r in out if not r.from_checkpoint]
        if not pairs:
            return
        refused = set(self.checkpoint.record(pairs))
        if not refused:
            return
        bad = {id(r) for k, r in pairs if k in refused}
        for i, r in enumerate(out):
            if id(r) in bad:
                kind = type(r.result).__name__
                out[i] = ProcessingResult(
                    r.file_info, False, None,
                    f"the result (a {kind}) cannot be kept in the checkpoint: it cannot be "
                    "pickled; return plain data (numbers, strings, lists, dicts...)",
                    r.duration_seconds, "CheckpointError", None, r.attempts, r.worker_id,
                    Status.FAILED, r.index, r.item)
