"""Writing outputs: every file replaced atomically, frames in the format their name asks for.

A file is written to a temporary file beside it and renamed into place once complete
(``os.replace``), so a reader never sees half a file and a failed write leaves the old one; an
existing file is only replaced when ``overwrite=True``. :func:`without_outputs` keeps a run's
own outputs out of its inputs.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import MissingExtraError, TargetExistsError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["atomic_writer", "write_frame", "require_pyarrow", "without_outputs", "PathLike"]

PathLike = str | os.PathLike[str]


@contextmanager
def atomic_writer(
    path: PathLike, mode: str = "w", *, overwrite: bool = False, encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step.

    The file gets the permissions a plain ``open()`` would give it (``0o666`` less the umask),
    or keeps those of the file it replaces. A symlink is written through, as ``open()`` does:
    the file it points to is replaced. On any error the temporary file is removed and ``path``
    is left as it was. Raises :class:`TargetExistsError` when ``path`` exists and
    ``overwrite`` is false.
    """
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not overwrite:
        raise TargetExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        _name(exc, target)
        raise
    try:
        # mkstemp creates 0600; give the mode open() would (or the replaced file's).
        os.fchmod(fd, (existing.st_mode & 0o7777) if existing is not None else 0o666 & ~_umask())
        binary = "b" in mode
        with os.fdopen(
            fd, mode, encoding=None if binary else encoding, newline=None if binary else ""
        ) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:  # a full disk names no file: name the one being written
        Path(tmp).unlink(missing_ok=True)
        _name(exc, target)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _umask() -> int:
    """This process's umask, read without changing it (no race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # no /proc: set and restore (meanwhile, files made get the stricter 077)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (best effort: some file systems cannot sync a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _name(exc: OSError, target: Path) -> None:
    exc.filename, exc.filename2 = os.fspath(target), None


def write_frame(
    df: pd.DataFrame, path: PathLike, *, overwrite: bool, fmt: str | None = None
) -> Path:
    target = Path(path)
    if df.attrs:  # writers serialise attrs (Parquet metadata); the report is not for the file
        df = df.copy(deep=False)
        df.attrs = {}
    fmt = fmt or {
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
        ".tsv": "tsv",
    }.get(target.suffix.lower(), "csv")
    if fmt == "parquet":
        require_pyarrow("Parquet output")
        with atomic_writer(target, "wb", overwrite=overwrite) as f:
            df.to_parquet(f, index=False)
    elif fmt == "jsonl":
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_json(f, orient="records", lines=True, date_format="iso", default_handler=str)
    elif fmt == "json":
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_json(f, orient="records", date_format="iso", indent=2, default_handler=str)
    else:
        with atomic_writer(target, overwrite=overwrite) as f:
            df.to_csv(f, index=False, sep="\t" if fmt == "tsv" else ",")
    return target


def require_pyarrow(what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise MissingExtraError(
            f"{what} needs pyarrow: pip install 'parallel-file-processor[parquet]'"
        ) from None
    return pyarrow


def without_outputs(files: list[Path], outputs: Iterable[PathLike | None]
                    ) -> tuple[list[Path], list[Path]]:
    """``files`` without the ones that are one of ``outputs`` (the same file: compared by
    device and inode, so a relative path, a symlink or a hard link to an output is caught
    too), and the ones left out."""
    ids = set()
    for out in outputs:
        if out is None:
            continue
        try:
            st = os.stat(out)
        except OSError:
            continue  # not there yet: no input can be it
        ids.add((st.st_dev, st.st_ino))
    if not ids:
        return files, []
    kept: list[Path] = []
    left_out: list[Path] = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            kept.append(f)  # reading it reports why it cannot be read
            continue
        (left_out if (st.st_dev, st.st_ino) in ids else kept).append(f)
    return kept, left_out

