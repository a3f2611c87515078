"""Progress reporting: the seed's ``ProgressTracker`` (drawn by tqdm) and the adapter that turns
``progress=`` arguments into what native jobs and the engine call.

Callbacks are always invoked from the calling thread, never from a worker. Bars go to stderr and
can be switched off with tqdm's own ``TQDM_DISABLE=1``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

__all__ = ["ProgressTracker", "ProgressArg", "Reporter"]

#: ``True`` for a tqdm bar, ``False``/``None`` for nothing, or ``callback(completed, total)``.
ProgressArg = Union[bool, None, Callable[[int, int], Any]]


class ProgressTracker:
    """Track and display processing progress (the seed's class, drawn by tqdm).

    Use ``tracker.update`` as a ``progress_callback(completed, total)``::

        tracker = ProgressTracker(0, "Processing CSVs")
        tracker.start()
        result = processor.process_directory(path, fn, progress_callback=tracker.update)
        tracker.finish()
    """

    def __init__(
        self,
        total: int,
        description: str = "Processing",
        show_eta: bool = True,
        bar_width: int = 40,
        *,
        unit: str = "file",
        disable: bool | None = None,
    ) -> None:
        self.total = total
        self.description = description
        self.show_eta = show_eta
        self.bar_width = bar_width
        self.completed = 0
        self.unit = unit
        self._disable = disable
        self._bar: Any = None

    def _ensure_bar(self) -> Any:
        if self._bar is None:
            from tqdm.auto import tqdm

            no_eta = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}]"
            fmt = None if self.show_eta else no_eta
            # `disable` is only passed when given, so TQDM_DISABLE=1 can still switch bars off.
            extra = {} if self._disable is None else {"disable": self._disable}
            self._bar = tqdm(
                total=self.total or None,
                desc=self.description,
                unit=self.unit,
                bar_format=fmt,
                dynamic_ncols=True,
                **extra,
            )
        return self._bar

    def start(self) -> None:
        """Start tracking (resets the count). With a total of 0 (not known yet) the bar is
        drawn at the first update, already with that update's total."""
        self.completed = 0
        if self._bar is not None:
            self._bar.reset(total=self.total or None)
        elif self.total:
            self._ensure_bar()

    def update(self, completed: int, total: int) -> None:
        """Set progress to ``completed`` of ``total`` (a ``progress_callback``)."""
        if self._bar is None:
            self.total = total
        bar = self._ensure_bar()
        if total != self.total:
            self.total = total
            bar.total = total
            bar.refresh()
        bar.update(completed - self.completed)
        self.completed = completed

    def finish(self) -> None:
        """Mark processing as complete and close the bar."""
        if self._bar is not None:
            self.update(self.total, self.total)
            self._bar.close()
            self._bar = None

    close = finish

    def __enter__(self) -> ProgressTracker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Reporter:
    """Adapts a ``progress=`` argument to the native counters' ``(items, items_total, bytes,
    bytes_total)`` polls and the engine's ``(completed, total)`` updates.

    ``progress=True`` draws a tqdm bar (bytes with ``by_bytes=True``), a callable receives
    ``(completed, total)``, ``None``/``False`` does nothing. Use as a context manager so the bar
    is closed even on error.

    One bar per run: it is drawn once there is something to show (with ``total`` when that is
    known up front, else at the first progress), and gains its total in place when a walk
    that was still finding work ends; there is no empty ``0it [00:00, ?it/s]`` frame first.
    """

    def __init__(
        self, progress: ProgressArg, *, desc: str, unit: str = "file", by_bytes: bool = False,
        total: int | None = None,
    ) -> None:
        self._callback: Callable[[int, int], Any] | None = None
        self._bar: Any = None
        self._bar_options: dict[str, Any] | None = None
        self._by_bytes = by_bytes
        self._done = 0
        if progress is True:
            self._bar_options = (
                {"desc": desc, "unit": "B", "unit_scale": True, "unit_divisor": 1024}
                if by_bytes else {"desc": desc, "unit": unit})
            if total:
                self._draw(total, 0)
        elif callable(progress):
            self._callback = progress
        elif progress not in (None, False):
            raise TypeError("progress must be True, False, None or a callable(completed, total)")

    def _draw(self, total: int, completed: int) -> None:
        # Imported on demand: tqdm.auto costs ~30 ms, too much for a fast CLI scan.
        from tqdm.auto import tqdm

        assert self._bar_options is not None
        # tqdm draws its first frame at once: make it show where the run already is.
        self._bar = tqdm(total=total or None, initial=completed, **self._bar_options)
        self._done = completed

    @property
    def active(self) -> bool:
        return self._bar_options is not None or self._callback is not None

    def native(self, *, before: int = 0, total: int | None = None
               ) -> Callable[[int, int, int, int], None] | None:
        """The callback to hand a native job, or None when nothing listens.

        For one run made of several native jobs, ``before`` is what earlier jobs did (items,
        or bytes with ``by_bytes``) and ``total`` the whole run's total, so the bar goes on.
        """
        if not self.active:
            return None
        if not before and total is None:
            return self._native

        def part(items: int, items_total: int, nbytes: int, bytes_total: int) -> None:
            done, known = (nbytes, bytes_total) if self._by_bytes else (items, items_total)
            self.update(before + done, total if total is not None else before + known)

        return part

    def _native(self, items: int, items_total: int, nbytes: int, bytes_total: int) -> None:
        if self._by_bytes:
            self.update(nbytes, bytes_total)
        else:
            self.update(items, items_total)

    def update(self, completed: int, total: int) -> None:
        if self._bar is None and self._bar_options is not None and (completed or total):
            self._draw(total, completed)
        if self._bar is not None:
            if total and self._bar.total != total:
                self._bar.total = total
                self._bar.refresh()
            self._bar.update(completed - self._done)
        if self._callback is not None:
            self._callback(completed, total)
        self._done = completed

    def note(self, text: str) -> None:
        """A word beside the bar (``"waiting: rate limited"``; ``""`` clears it)."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
