"""A user's script written from the README's examples, annotated the way a strictly typed
project would write it. ``tests/test_typing.py`` checks it with ``mypy --strict``; it is never
run (its paths do not exist)."""

from __future__ import annotations

import logging
from pathlib import Path

from parallel_file_processor import (
    BatchResult,
    FileError,
    FileInfo,
    FileProcessor,
    HashResult,
    ParallelProcessor,
    ProcessingMode,
    ProcessingResult,
    ProgressTracker,
    ResultAggregator,
    ScanResult,
    aggregate,
    extract_zips,
    find_duplicates,
    hash_files,
    scan,
    scan_frame,
    verify_manifest,
    write_manifest,
)
from parallel_file_processor import FileScanner as Scanner
from parallel_file_processor.errors import PFPError


def process_csv(file_info: FileInfo) -> dict[str, int]:
    text = file_info.read_text()
    return {"rows": text.count("\n"), "columns": text.split("\n", 1)[0].count(",") + 1}


def heavy_computation(n: int) -> int:
    return sum(i * i for i in range(n))


def main() -> int:
    logging.getLogger("parallel_file_processor").setLevel(logging.INFO)

    scanner = Scanner(["*.csv"], ["*_backup*"], min_size=100, skip_hidden=True)
    files: list[FileInfo] = scanner.list_files("data/raw")
    problems: list[FileError] = scanner.last_errors
    result: ScanResult = scan("data/a", "data/b", extensions={".csv"}, max_depth=3, sort=True)
    first: Path = result.files[0].path if result.files else Path(".")
    frame = scan_frame("data", include=["reports/**/*.xlsx"])

    processor = FileProcessor(scanner=Scanner(extensions={".csv"}),
                              mode=ProcessingMode.THREAD_POOL, max_workers=8)
    tracker = ProgressTracker(0, "Processing CSVs")
    tracker.start()
    batch: BatchResult[object] = processor.process_directory(
        Path("data/raw/"), process_csv, progress_callback=tracker.update)
    tracker.finish()
    rate: float = batch.success_rate
    failures: list[ProcessingResult[object]] = batch.failed_results()

    pp: ParallelProcessor[int, int] = ParallelProcessor(
        heavy_computation, mode="process_pool", max_workers=4, retries=2,
        retry_on=(ConnectionError,), timeout=30, progress=True)
    squares: BatchResult[int] = pp.process(range(1000))
    total: int = sum(squares.successful_results())
    for r in pp.iter(iter(range(10)), ordered=False):
        value: int | None = r.result
        print(r.index, value, r.error_type)

    agg = ResultAggregator(batch)
    agg.to_dataframe()
    summary: dict[str, object] = agg.summary()
    written: Path = agg.export_csv("out/results.csv")
    merged = aggregate("exports/", schema="union", on_bad_lines="skip")

    digests: list[HashResult] = hash_files("data", "blake3", extensions={".parquet"})
    for h in digests:
        digest: str | None = h.digest
        print(h.path, h.size, digest, h.error, h.changed)
    dupes = find_duplicates("photos")
    manifest: Path = write_manifest("release/", "release/B3SUMS")
    all_ok: bool = verify_manifest(manifest).all_ok

    for a in extract_zips("downloads/", "unpacked/"):
        extracted: int = a.files_extracted
        print(a.archive.name, a.status, extracted, a.error_type)

    try:
        scan("missing")
    except PFPError as exc:
        print(exc)
    print(files, problems, first, frame, rate, failures, total, summary, written, merged,
          dupes, all_ok)
    return 0 if batch.failed == 0 else 1
