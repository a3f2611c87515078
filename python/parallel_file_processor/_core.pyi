"""Stubs for the native module (Rust, PyO3). Users call the typed wrappers in the package."""

from collections.abc import Callable
from typing import Any

__version__: str

#: ``progress(items_done, items_total, bytes_done, bytes_total)``, called on the calling thread.
NativeProgress = Callable[[int, int, int, int], Any]

def scan_tree(
    roots: list[str],
    *,
    include: list[str] = ...,
    exclude: list[str] = ...,
    extensions: list[str] = ...,
    min_size: int | None = None,
    max_size: int | None = None,
    recursive: bool = True,
    max_depth: int | None = None,
    skip_hidden: bool = False,
    follow_symlinks: bool = False,
    same_file_system: bool = False,
    modified_after: float | None = None,
    modified_before: float | None = None,
    include_special: bool = False,
    sort: bool = False,
    threads: int | None = None,
    progress: NativeProgress | None = None,
    columnar: bool = False,
    with_metadata: bool = True,
) -> dict[str, Any]:
    """Walk ``roots`` with the GIL released. Returns ``files`` (five lists, or column buffers
    when ``columnar``), ``special`` (path, kind), ``errors`` (path, error_type, message),
    ``entries_seen`` and ``cancelled``."""

def read_files(
    paths: list[str], *, max_file_bytes: int = ..., workers: int | None = None
) -> list[bytes | None]:
    """Read files in parallel with the GIL released (read-ahead for the engine); ``None`` for a
    file not read (too large, not regular, or an error the caller will meet itself)."""
