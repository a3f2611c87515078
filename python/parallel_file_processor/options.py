"""Options objects that cross into the Rust core once, read field by field by the binding."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["ScanOptions", "epoch"]


def epoch(value: Any) -> float | None:
    """Seconds since the epoch from a number or a ``datetime`` (None stays None)."""
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


@dataclass(frozen=True)
class ScanOptions:
    """What a scan looks for; see :class:`~parallel_file_processor.FileScanner`.

    The native scanner reads these fields directly (``ScanOptions`` in ``rust/scan.rs``), so
    every scanning call (listing, hashing a tree, finding duplicates) takes the same object.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    recursive: bool = True
    max_depth: int | None = None
    skip_hidden: bool = False
    follow_symlinks: bool = False
    same_file_system: bool = False
    modified_after: float | None = None
    modified_before: float | None = None
    include_special: bool = False
    sort: bool = False
    threads: int | None = None
    with_metadata: bool = True

    @classmethod
    def make(
        cls,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        extensions: Iterable[str] | None = None,
        min_size: int | None = 0,
        max_size: int | None = None,
        recursive: bool = True,
        *,
        max_depth: int | None = None,
        skip_hidden: bool = False,
        follow_symlinks: bool = False,
        same_file_system: bool = False,
        modified_after: Any = None,
        modified_before: Any = None,
        include_special: bool = False,
        sort: bool = False,
        threads: int | None = None,
        with_metadata: bool = True,
    ) -> ScanOptions:
        """Options from the user's spelling (``None`` for empty lists, datetimes, ``0``)."""
        if isinstance(include, str) or isinstance(exclude, str) or isinstance(extensions, str):
            raise TypeError("include, exclude and extensions take lists of strings")
        if (min_size or 0) < 0 or (max_size is not None and max_size < 0):
            raise ValueError("min_size and max_size must be >= 0")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1")
        if max_depth is not None and max_depth < 0:
            raise ValueError("max_depth must be >= 0")
        return cls(
            include=tuple(include or ()),
            exclude=tuple(exclude or ()),
            extensions=tuple(sorted(set(extensions or ()))),
            min_size=min_size or None,
            max_size=max_size,
            recursive=recursive,
            max_depth=max_depth,
            skip_hidden=skip_hidden,
            follow_symlinks=follow_symlinks,
            same_file_system=same_file_system,
            modified_after=epoch(modified_after),
            modified_before=epoch(modified_before),
            include_special=include_special,
            sort=sort,
            threads=threads,
            with_metadata=with_metadata,
        )
