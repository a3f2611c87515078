"""Running a job: scan, process every file, write the outputs.

The processor is a ``module:function`` called with each :class:`FileInfo`, or a built-in:
``file_info`` (size, extension), ``csv_stats`` (rows, columns, numeric columns per CSV),
``aggregate`` (merge every matching table into ``combined_output``), ``hash`` and ``unzip``
(their capabilities, when installed).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .aggregate import ResultAggregator, aggregate
from .config import JobConfig
from .engine import FileProcessor
from .scan import FileScanner
from .types import BatchResult, FileInfo

__all__ = ["run_job", "JobOutcome", "csv_stats", "file_info"]


def file_info(f: FileInfo) -> dict[str, Any]:
    """Built-in ``file_info``: what the scan knows, no reading."""
    return {"size_bytes": f.size_bytes, "extension": f.extension, "relative_path": f.relative_path}


def csv_stats(f: FileInfo) -> dict[str, Any]:
    """Built-in ``csv_stats``: the seed's Example 1 processor."""
    import pandas as pd

    df = pd.read_csv(f.path)
    return {
        "rows": len(df),
        "columns": len(df.columns),
        "memory_mb": df.memory_usage(deep=True).sum() / 1e6,
        "numeric_columns": len(df.select_dtypes(include="number").columns),
    }


BUILTINS: dict[str, Callable[[FileInfo], Any]] = {"file_info": file_info, "csv_stats": csv_stats}


def resolve_processor(name: str) -> Callable[[FileInfo], Any]:
    if name in BUILTINS:
        return BUILTINS[name]
    if name in ("hash", "unzip"):
        module = {"hash": "hash", "unzip": "extract"}[name]
        try:
            importlib.import_module(f"parallel_file_processor.{module}")
        except ImportError:
            raise ValueError(
                f"the built-in processor {name!r} is not available in this version"
            ) from None
    from .commands.process import load_function

    return load_function(name)


@dataclass
class JobOutcome:
    batch: BatchResult[Any]
    summary: dict[str, Any]
    written: list[str]
    dashboard: str | None = None


def run_job(cfg: JobConfig) -> JobOutcome:
    """Run a validated job; returns the batch, its summary and the files written."""
    scanner = FileScanner(
        cfg.include_patterns or None,
        cfg.exclude_patterns or None,
        cfg.extensions or None,
        cfg.min_bytes,
        cfg.max_bytes,
        cfg.recursive,
        skip_hidden=cfg.skip_hidden,
        sort=True,
    )
    written: list[str] = []
    dashboard = None
    executor = None
    if cfg.scheduler:
        from . import distributed as _distributed

        executor = _distributed.get_client(cfg.scheduler)
        dashboard = _distributed.dashboard_link(executor)
    if cfg.processor == "aggregate":
        started = time.perf_counter()
        files = scanner.list_files(cfg.directory)
        df = aggregate([f.path for f in files], workers=cfg.max_workers, client=executor)
        report = df.attrs["report"]
        batch: BatchResult[Any] = BatchResult(total_files=len(files))
        batch.successful = len(files) - len(report.failed)
        batch.failed = len(report.failed)
        batch.errors = [str(e) for e in report.failed]
        batch.total_duration_seconds = time.perf_counter() - started
        batch.total_bytes = sum(f.size_bytes for f in files)
        if cfg.combined_output is not None:
            from .aggregate import _write_frame

            _write_frame(df, cfg.combined_output, overwrite=cfg.overwrite)
            written.append(str(cfg.combined_output))
    else:
        fn = resolve_processor(cfg.processor)
        if cfg.options:
            from functools import partial

            fn = partial(fn, **cfg.options)
        fp = FileProcessor(
            scanner,
            cfg.mode,
            cfg.max_workers,
            prefetch=cfg.prefetch,
            batch_size=cfg.batch_size,
            timeout=cfg.timeout_seconds,
            retries=cfg.retries,
            progress=cfg.progress,
            executor=executor,
        )
        batch = fp.process_directory(cfg.directory, fn)
        agg = ResultAggregator(batch)
        if cfg.combined_output is not None:
            combined = agg.combine_dataframes()
            if combined.empty:
                combined = agg.to_dataframe()
            from .aggregate import _write_frame

            _write_frame(combined, cfg.combined_output, overwrite=cfg.overwrite)
            written.append(str(cfg.combined_output))
    agg = ResultAggregator(batch)
    if cfg.results_csv is not None:
        agg.export_csv(cfg.results_csv, overwrite=cfg.overwrite)
        written.append(str(cfg.results_csv))
    if cfg.summary_json is not None:
        agg.export_json(cfg.summary_json, overwrite=cfg.overwrite)
        written.append(str(cfg.summary_json))
    if cfg.errors_csv is not None:
        agg.export_errors_csv(cfg.errors_csv, overwrite=True)
        written.append(str(cfg.errors_csv))
    return JobOutcome(batch, agg.summary(), written, dashboard)
