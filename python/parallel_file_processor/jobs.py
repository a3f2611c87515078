"""Running a job: scan, process every file, write the outputs.

The processor is a ``module:function`` called with each :class:`FileInfo`, or a built-in:
``file_info`` (size, extension), ``csv_stats`` (rows, columns, numeric columns per CSV),
``aggregate`` (merge every matching table and spreadsheet into ``combined_output``;
``options`` are aggregate's, e.g. ``{sheet: all, sep: ";", decimal: ","}``), ``hash`` (digest every
file natively; ``options: {algorithm: sha256, manifest: SHA256SUMS}``) and ``unzip`` (extract
every archive safely; ``options: {output_directory: out/, if_exists: skip, layout: flat}``).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aggregate import aggregate
from .config import JobConfig
from .engine import FileProcessor
from .errors import FunctionLoadError
from .log import LEVELS, attached, file_handler
from .output import without_outputs, write_frame
from .results import ResultAggregator
from .scan import FileScanner
from .types import BatchResult, FileInfo

__all__ = ["run_job", "JobOutcome", "csv_stats", "file_info", "load_function"]


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


#: Built-ins that run as one native job over the whole file list, not per file in Python.
NATIVE_JOBS = ("aggregate", "hash", "unzip")

log = logging.getLogger(__name__)


def load_function(spec: str, *, search: Path | str | None = None) -> Callable[..., Any]:
    """``package.module:function`` (or a path ``file.py:function``) to the function object.

    Modules are looked up like ``python -m`` does (the working directory first), then in
    ``search`` (a job file's folder). Anything that goes wrong is a :class:`FunctionLoadError`
    naming the spec and the cause.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FunctionLoadError(f"expected MODULE:FUNCTION, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_absolute() and search is not None and not path.exists():
            path = Path(search) / path
        path = path.resolve()
        if not path.is_file():
            raise FunctionLoadError(f"{spec}: no such file: {path}")
        _on_path(str(path.parent))
        module_name = path.stem
    else:
        if "" not in sys.path and "." not in sys.path:
            _on_path("")  # like `python -m`: modules in the working directory
        if search is not None:
            _on_path(str(Path(search).resolve()), front=False)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise FunctionLoadError(
            f"{spec}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise FunctionLoadError(f"{spec}: module {module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise FunctionLoadError(f"{spec} is not callable")
    return fn  # type: ignore[no-any-return]


def _on_path(folder: str, *, front: bool = True) -> None:
    if folder not in sys.path:
        if front:
            sys.path.insert(0, folder)
        else:
            sys.path.append(folder)


def resolve_processor(name: str, search: Path | str | None = None) -> Callable[[FileInfo], Any]:
    if name in BUILTINS:
        return BUILTINS[name]
    return load_function(name, search=search)


@dataclass
class JobOutcome:
    batch: BatchResult[Any]
    summary: dict[str, Any]
    written: list[str]
    dashboard: str | None = None


def job_scanner(cfg: JobConfig) -> FileScanner:
    """The scanner a job's ``scan:`` section describes (sorted, so runs are repeatable)."""
    return FileScanner(
        cfg.include_patterns or None,
        cfg.exclude_patterns or None,
        cfg.extensions or None,
        cfg.min_bytes,
        cfg.max_bytes,
        cfg.recursive,
        skip_hidden=cfg.skip_hidden,
        sort=True,
    )


def run_job(cfg: JobConfig) -> JobOutcome:
    """Run a validated job; returns the batch, its summary and the files written. With
    ``logging.file`` the run's records (and those of the job's function) are appended there."""
    if cfg.log_file is None:
        return _run_job(cfg)
    with attached(file_handler(cfg.log_file, LEVELS[cfg.log_level])):
        return _run_job(cfg)


def _run_job(cfg: JobConfig) -> JobOutcome:
    log.info("job: %s over %s (%s)", cfg.processor, cfg.directory,
             f"scheduler {cfg.scheduler}" if cfg.scheduler else cfg.mode)
    scanner = job_scanner(cfg)
    written: list[str] = []
    dashboard = None
    executor = None
    if cfg.scheduler:
        from .distributed import dashboard_link, get_client

        executor = get_client(cfg.scheduler)
        dashboard = dashboard_link(executor)
    if cfg.processor in ("hash", "unzip"):
        started = time.perf_counter()
        files = scanner.list_files(cfg.directory)
        batch: BatchResult[Any] = _native_job(cfg, files, written, executor)
        batch.total_duration_seconds = time.perf_counter() - started
    elif cfg.processor == "aggregate":
        started = time.perf_counter()
        files = scanner.list_files(cfg.directory)
        # the job's own outputs are never read back as inputs (a re-run would merge them)
        _, own = without_outputs([f.path for f in files], [
            cfg.combined_output, cfg.results_csv, cfg.summary_json, cfg.errors_csv])
        files = [f for f in files if f.path not in own]
        df = aggregate([f.path for f in files], workers=cfg.max_workers, client=executor,
                       **cfg.options)
        batch = _aggregate_batch(files, df)
        batch.total_duration_seconds = time.perf_counter() - started
        if cfg.combined_output is not None:
            write_frame(df, cfg.combined_output, overwrite=cfg.overwrite)
            written.append(str(cfg.combined_output))
    else:
        fn = resolve_processor(cfg.processor, cfg.job_dir)
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
            checkpoint=cfg.checkpoint,
            rate_limit=cfg.rate_limit,
        )
        batch = fp.process_directory(cfg.directory, fn)
        agg = ResultAggregator(batch)
        if cfg.combined_output is not None:
            combined = agg.combine_dataframes()
            if combined.empty:
                combined = agg.to_dataframe()
            write_frame(combined, cfg.combined_output, overwrite=cfg.overwrite)
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
    summary = agg.summary()
    log.info("job: %d of %d files processed, %d failed, in %.2f s%s", summary["successful"],
             summary["total_files"], summary["failed"], summary["total_duration_seconds"],
             "".join(f"; wrote {w}" for w in written))
    return JobOutcome(batch, summary, written, dashboard)


def _aggregate_batch(files: list[FileInfo], df: Any) -> BatchResult[Any]:
    """One result per merged file: its rows, or why it failed."""
    from .types import ProcessingResult, Status

    report = df.attrs["report"]
    failed = {os.fspath(e.path): e for e in report.failed}
    rows = df["_source_file"].value_counts().to_dict() if "_source_file" in df else {}
    batch: BatchResult[Any] = BatchResult(total_files=len(files))
    for i, f in enumerate(files):
        e = failed.get(f.path_str)
        if e is None:
            batch.add(ProcessingResult(f, True, {"rows": int(rows.get(f.path_str, 0))},
                                       index=i, item=f))
        else:
            batch.add(ProcessingResult(f, False, None, e.message, error_type=e.error_type,
                                       status=Status.FAILED, index=i, item=f))
        batch.total_bytes += f.size_bytes
    return batch


def _option_path(cfg: JobConfig, key: str, *, required: bool = False) -> Any:
    from .errors import ConfigError

    value = cfg.options.get(key)
    if value is None:
        if required:
            raise ConfigError(f"processing.options.{key}: required by the "
                              f"{cfg.processor!r} processor")
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"processing.options.{key}: expected a path, got {value!r}")
    return cfg.base_dir / value


def _native_job(cfg: JobConfig, files: list[FileInfo], written: list[str],
                client: Any = None) -> BatchResult[Any]:
    """The ``hash`` and ``unzip`` built-ins: one native job over every scanned file, results
    and per-file errors shaped like the engine's."""
    from .errors import ConfigError
    from .types import ProcessingResult, Status

    opts = dict(cfg.options)
    batch: BatchResult[Any] = BatchResult(total_files=len(files))
    if cfg.processor == "hash":
        from .hash import ALGORITHMS, hash_files, write_manifest

        algorithm = opts.pop("algorithm", "blake3")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"processing.options.algorithm: expected one of "
                              f"{', '.join(ALGORITHMS)}, got {algorithm!r}")
        manifest = _option_path(cfg, "manifest")
        results = hash_files([f.path for f in files], algorithm, workers=cfg.max_workers,
                             client=client,
                             progress=cfg.progress)
        for i, (f, r) in enumerate(zip(files, results)):
            if r.digest is None:
                batch.add(ProcessingResult(f, False, None, f"{r.error_type}: {r.error}",
                                           error_type=r.error_type, status=Status.FAILED,
                                           index=i, item=f))
            else:
                batch.add(ProcessingResult(f, True, {"algorithm": algorithm, "digest": r.digest,
                                                     "changed": r.changed}, index=i, item=f))
            batch.total_bytes += r.size
        if manifest is not None:
            write_manifest([f.path for f in files], manifest, algorithm=algorithm,
                           base=cfg.directory, workers=cfg.max_workers)
            written.append(str(manifest))
        return batch
    from .extract import batch_from_results, extract_zips

    out_dir = _option_path(cfg, "output_directory", required=True)
    known = {"output_directory", "if_exists", "layout", "members", "exclude_members",
             "max_total_size", "max_ratio", "max_entries", "keep_partial"}
    unknown = set(opts) - known
    if unknown:
        raise ConfigError(f"processing.options: unknown key(s) for 'unzip': "
                          f"{', '.join(sorted(unknown))}")
    opts.pop("output_directory")
    extracted = extract_zips([f.path for f in files], out_dir, workers=cfg.max_workers,
                             client=client,
                             progress=cfg.progress, **opts)
    written.append(str(out_dir))
    return batch_from_results(extracted, files)
