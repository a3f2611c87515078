"""The processing engine: modes agree, every fault is recorded and the run goes on."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FORK_WARNINGS_SHOWN, write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import (
    BatchResult,
    FileInfo,
    FileProcessor,
    FileScanner,
    ParallelProcessor,
    ProcessingMode,
    ProgressTracker,
    Status,
    WorkerCrashed,
)

MODES = [ProcessingMode.SEQUENTIAL, ProcessingMode.THREAD_POOL, ProcessingMode.PROCESS_POOL]


# Module-level functions: process workers import them by reference.
def square(x: int) -> int:
    return x * x


def fail_on_multiples_of_seven(x: int) -> int:
    if x % 7 == 0:
        raise ValueError(f"bad item {x}")
    return x


def heavy_computation(item: int) -> dict[str, float]:
    result = sum(math.sin(i * item) for i in range(2000))
    return {"item": item, "result": result}


def sleep_if_negative(x: float) -> float:
    if x < 0:
        time.sleep(60)
    return x


def exit_on_13(x: int) -> int:
    if x == 13:
        os._exit(3)
    return x


def whoami(_: object) -> int:
    return os.getpid()


_STATE: dict[str, object] = {}


def remember(value: str) -> None:
    _STATE["init"] = value
    _STATE["calls"] = int(_STATE.get("calls", 0)) + 1  # type: ignore[call-overload]


def read_state(_: object) -> tuple[object, int]:
    return _STATE.get("init"), os.getpid()


def flaky_on_disk(path_and_item: tuple[str, int]) -> int:
    """Fails the first two attempts of each item (state kept on disk, works across processes)."""
    base, item = path_and_item
    marker = Path(base) / f"attempts-{item}"
    n = int(marker.read_text()) if marker.exists() else 0
    marker.write_text(str(n + 1))
    if n < 2:
        raise ConnectionError(f"transient failure {n} for {item}")
    return item


# --- modes agree ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_gives_the_same_results(mode: ProcessingMode) -> None:
    items = list(range(60))
    result = ParallelProcessor(fail_on_multiples_of_seven, mode, max_workers=2).process(items)
    assert result.total_files == 60
    assert result.failed == 9 and result.successful == 51
    assert [r.index for r in result.results] == items, "results come back in input order"
    assert sorted(result.successful_results()) == [x for x in items if x % 7]
    assert result.success_rate == pytest.approx(51 / 60 * 100)


def test_async_mode_matches_and_runs_concurrently() -> None:
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.05)
        if x % 7 == 0:
            raise ValueError("bad")
        return x

    t0 = time.perf_counter()
    result = ParallelProcessor(fetch, ProcessingMode.ASYNC, max_workers=50).process(range(100))
    elapsed = time.perf_counter() - t0
    assert result.successful == 85 and result.failed == 15
    assert elapsed < 100 * 0.05 / 4, "tasks overlap (bounded concurrency, not one by one)"


def test_mode_accepts_names() -> None:
    assert ParallelProcessor(square, "process_pool").mode is ProcessingMode.PROCESS_POOL
    assert ParallelProcessor(square, "threads").mode is ProcessingMode.THREAD_POOL
    with pytest.raises(ValueError):
        ParallelProcessor(square, "warp-drive")


@given(
    items=st.lists(st.integers(-50, 50), max_size=80),
    mode=st.sampled_from([ProcessingMode.SEQUENTIAL, ProcessingMode.THREAD_POOL]),
    batch=st.one_of(st.none(), st.integers(1, 9)),
    workers=st.integers(1, 4),
)
def test_results_match_a_plain_loop(items, mode, batch, workers) -> None:
    expected_ok = [x for x in items if x % 7]
    result = ParallelProcessor(fail_on_multiples_of_seven, mode, max_workers=workers,
                               batch_size=batch).process(items)
    assert [r.result for r in result.results if r.success] == expected_ok
    assert result.failed == len(items) - len(expected_ok)
    assert all(r.error_type == "ValueError" and "bad item" in (r.error or "")
               for r in result.results if not r.success)


# --- the seed's examples ----------------------------------------------------------------------


def test_seed_example_4_process_pool_with_progress() -> None:
    seen: list[tuple[int, int]] = []
    processor = ParallelProcessor(processor=heavy_computation,
                                  mode=ProcessingMode.PROCESS_POOL, max_workers=2)
    processor.on_progress(lambda done, total: seen.append((done, total)))
    result = processor.process(list(range(40)))
    assert result.successful == 40 and result.total_files == 40
    assert seen[-1] == (40, 40) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert result.worker_peak_memory_mb, "per-worker peak memory is reported"
    assert result.peak_memory_mb and result.peak_memory_mb > 0


def test_seed_example_1_process_directory_with_tracker(tmp_path: Path) -> None:
    import pandas as pd

    for i in range(5):
        pd.DataFrame({"a": range(i + 1), "b": ["x"] * (i + 1)}).to_csv(tmp_path / f"f{i}.csv",
                                                                      index=False)

    def process_csv(file_info: FileInfo) -> dict[str, int]:
        df = pd.read_csv(file_info.path)
        return {"rows": len(df), "columns": len(df.columns)}

    processor = FileProcessor(scanner=FileScanner(extensions={".csv"}),
                              mode=ProcessingMode.THREAD_POOL, max_workers=8)
    tracker = ProgressTracker(0, "Processing CSVs")
    tracker.start()
    result = processor.process_directory(tmp_path, process_csv, progress_callback=tracker.update)
    tracker.finish()
    assert result.successful == 5
    assert sorted(r["rows"] for r in result.successful_results()) == [1, 2, 3, 4, 5]
    assert tracker.completed == 5


def test_process_directory_records_unreadable_entries(tree: Path) -> None:
    os.symlink(tree / "nowhere", tree / "broken.csv")
    result = FileProcessor(FileScanner(extensions={".csv"})).process_directory(
        tree, lambda f: f.size_bytes)
    assert result.failed == 1
    [bad] = result.failed_results()
    assert bad.file_info.path == tree / "broken.csv" and bad.error_type == "FileNotFoundError"


def test_empty_input_gives_an_empty_batch(tmp_path: Path) -> None:
    assert ParallelProcessor(square).process([]).total_files == 0
    assert FileProcessor().process_directory(tmp_path, square).success_rate == 100.0


# --- faults ---------------------------------------------------------------------------------


def test_exceptions_are_recorded_with_details() -> None:
    result = ParallelProcessor(fail_on_multiples_of_seven, ProcessingMode.THREAD_POOL,
                               max_workers=2).process([1, 7, 2])
    bad = result.results[1]
    assert not bad.success and bad.status == Status.FAILED
    assert bad.error_type == "ValueError" and bad.error == "bad item 7"
    assert "fail_on_multiples_of_seven" in (bad.traceback or "")
    assert bad.attempts == 1 and bad.worker_id and bad.item == 7
    df = result.errors_df()
    assert list(df["error_type"]) == ["ValueError"] and list(df["item"]) == ["7"]
    assert result.errors == ["bad item 7"]


def test_on_error_raise_and_skip() -> None:
    with pytest.raises(ValueError, match="bad item 7"):
        ParallelProcessor(fail_on_multiples_of_seven, ProcessingMode.SEQUENTIAL,
                          on_error="raise").process(range(1, 20))
    skipped = ParallelProcessor(fail_on_multiples_of_seven, on_error="skip").process(range(1, 15))
    assert skipped.failed == 2 and skipped.successful == 12
    assert all(r.success for r in skipped.results)
    with pytest.raises(ValueError):
        ParallelProcessor(square, on_error="ignore")


@pytest.mark.parametrize("mode", [ProcessingMode.THREAD_POOL, ProcessingMode.PROCESS_POOL])
def test_flaky_items_succeed_on_retry(mode: ProcessingMode, tmp_path: Path) -> None:
    items = [(str(tmp_path), i) for i in range(6)]
    result = ParallelProcessor(flaky_on_disk, mode, max_workers=2, retries=2, backoff=0.001,
                               retry_on=ConnectionError).process(items)
    assert result.successful == 6
    assert all(r.attempts == 3 for r in result.results)
    # Not retried: the exception type is not in retry_on.
    for f in tmp_path.glob("attempts-*"):
        f.unlink()
    result = ParallelProcessor(flaky_on_disk, mode, max_workers=2, retries=2, backoff=0.001,
                               retry_on=KeyError).process(items)
    assert result.failed == 6 and all(r.attempts == 1 for r in result.results)


def test_hanging_item_times_out_in_threads_and_the_run_goes_on() -> None:
    items = [1.0, 2.0, -1.0, 3.0, 4.0, 5.0]
    t0 = time.perf_counter()
    result = ParallelProcessor(sleep_if_negative, ProcessingMode.THREAD_POOL, max_workers=2,
                               batch_size=3, timeout=0.3).process(items)
    assert time.perf_counter() - t0 < 30
    assert result.successful == 5
    [stuck] = result.failed_results()
    assert stuck.item == -1.0 and stuck.status == Status.TIMEOUT
    assert stuck.error_type == "TimeoutError"


def test_hanging_item_in_process_mode_kills_and_replaces_the_worker() -> None:
    items = [1.0, -1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    t0 = time.perf_counter()
    result = ParallelProcessor(sleep_if_negative, ProcessingMode.PROCESS_POOL, max_workers=2,
                               batch_size=2, timeout=0.5).process(items)
    assert time.perf_counter() - t0 < 30
    assert result.successful == 6
    [stuck] = result.failed_results()
    assert stuck.item == -1.0 and stuck.status == Status.TIMEOUT


def test_async_timeout() -> None:
    async def maybe_hang(x: int) -> int:
        await asyncio.sleep(30 if x == 2 else 0)
        return x

    result = ParallelProcessor(maybe_hang, "async", timeout=0.2).process(range(5))
    assert result.successful == 4 and result.results[2].status == Status.TIMEOUT


def test_dead_worker_costs_only_its_item() -> None:
    result = ParallelProcessor(exit_on_13, ProcessingMode.PROCESS_POOL, max_workers=2,
                               batch_size=5).process(range(30))
    assert result.successful == 29
    [dead] = result.failed_results()
    assert dead.item == 13 and dead.status == Status.CRASHED
    assert dead.error_type == WorkerCrashed.__name__ and "exit code 3" in (dead.error or "")
    assert sorted(result.successful_results()) == [x for x in range(30) if x != 13]


def test_segfaulting_worker_is_isolated() -> None:
    result = ParallelProcessor(_segfault_on_3, ProcessingMode.PROCESS_POOL, max_workers=2,
                               batch_size=4).process(range(8))
    assert result.successful == 7
    assert result.results[3].status == Status.CRASHED
    assert "SIGSEGV" in (result.results[3].error or "")


def _segfault_on_3(x: int) -> int:
    if x == 3:
        import ctypes

        ctypes.string_at(0)
    return x


def test_ctrl_c_returns_completed_results_and_cancels_the_rest(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from parallel_file_processor import ParallelProcessor, BatchInterrupted

        def slow(x):
            time.sleep(0.05)
            return x

        if __name__ == "__main__":
            print("start", flush=True)
            try:
                pp = ParallelProcessor(slow, "process_pool", max_workers=2, batch_size=1)
                pp.process(range(400))
            except BatchInterrupted as exc:
                r = exc.result
                print("interrupted", r.successful, r.cancelled, r.total_files, r.interrupted,
                      flush=True)
                sys.exit(3)
            print("finished", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    words = out.split()
    assert proc.returncode == 3, out
    assert words[0] == "interrupted"
    successful, cancelled, total = int(words[1]), int(words[2]), int(words[3])
    assert successful > 0 and cancelled > 0 and successful + cancelled == total == 400
    assert words[4] == "True"


# --- workers, state, memory -----------------------------------------------------------------


def test_initializer_runs_once_per_worker_process() -> None:
    result = ParallelProcessor(read_state, ProcessingMode.PROCESS_POOL, max_workers=2,
                               batch_size=2, initializer=remember,
                               initargs=("ready",)).process(range(20))
    values = result.successful_results()
    assert {v[0] for v in values} == {"ready"}
    assert len({v[1] for v in values}) <= 2


def test_initializer_in_thread_mode() -> None:
    _STATE.clear()
    result = ParallelProcessor(read_state, ProcessingMode.THREAD_POOL, max_workers=3,
                               initializer=remember, initargs=("t",)).process(range(10))
    assert {v[0] for v in result.successful_results()} == {"t"}
    assert _STATE["calls"] == 3


def test_max_tasks_per_worker_recycles_processes() -> None:
    result = ParallelProcessor(whoami, ProcessingMode.PROCESS_POOL, max_workers=1, batch_size=2,
                               max_tasks_per_worker=2).process(range(8))
    assert len(set(result.successful_results())) >= 3


def test_streaming_keeps_memory_flat() -> None:
    n = 200_000
    tracemalloc.start()
    count = 0
    for r in ParallelProcessor(square, ProcessingMode.THREAD_POOL, max_workers=2).iter(
            x for x in range(n)):
        count += r.success
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == n
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB: results were held in memory"


def test_ordered_streaming() -> None:
    def jitter(x: int) -> int:
        time.sleep(0.001 * (x % 3))
        return x

    got = [r.result for r in ParallelProcessor(jitter, max_workers=4, batch_size=2,
                                               adaptive=False).iter(range(40), ordered=True)]
    assert got == list(range(40))


def test_an_ordered_stream_stays_small_behind_one_slow_item() -> None:
    """While the next result in order is missing, dispatching stops: 2,000,000 items behind
    a first one that sleeps 3 s hold a few chunks per worker, not every result."""
    code = textwrap.dedent("""
        import resource, time
        from parallel_file_processor import ParallelProcessor

        def first_is_slow(x):
            if x == 0:
                time.sleep(3)
            return x

        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        n = 0
        # adaptive=False: the slow item runs on a worker thread while the others go on
        pp = ParallelProcessor(first_is_slow, "thread_pool", adaptive=False)
        for r in pp.iter((x for x in range(2_000_000)), ordered=True):
            assert r.index == n
            n += 1
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
        print(n, grown // 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stderr
    count, grown_mib = map(int, res.stdout.split())
    assert count == 2_000_000
    assert grown_mib < 150, f"peak memory grew {grown_mib} MiB behind the slow item"


def test_progress_is_reported_from_the_calling_thread_only() -> None:
    caller = threading.get_ident()
    threads: set[int] = set()
    calls: list[tuple[int, int]] = []

    def cb(done: int, total: int) -> None:
        threads.add(threading.get_ident())
        calls.append((done, total))

    ParallelProcessor(heavy_computation, max_workers=4, adaptive=False).on_progress(cb).process(
        range(30))
    assert threads == {caller}
    assert calls[-1] == (30, 30) and len(calls) == 30


def test_existing_executors_are_used() -> None:
    with ThreadPoolExecutor(2) as ex:
        r1 = ParallelProcessor(square, executor=ex).process(range(20))
    # Not the platform default (fork before 3.14): this process has threads, and a child forked
    # from it could deadlock.
    import multiprocessing

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        r2 = ParallelProcessor(square, executor=ex).process(range(20))
    assert r1.successful_results() == r2.successful_results() == [x * x for x in range(20)]


def test_lambdas_work_in_process_mode() -> None:
    result = ParallelProcessor(lambda x: x + 1, ProcessingMode.PROCESS_POOL,
                               max_workers=2).process(range(5))
    assert result.successful_results() == [1, 2, 3, 4, 5]


# --- read-ahead -----------------------------------------------------------------------------


def test_prefetch_gives_the_same_results_and_frees_bytes(tmp_path: Path) -> None:
    for i in range(200):
        write(tmp_path / f"d{i % 9}" / f"f{i}.bin", os.urandom(i * 37 % 5000))
    files = FileScanner().list_files(tmp_path)

    def size_and_head(f: FileInfo) -> tuple[int, bytes]:
        data = f.read_bytes()
        return len(data), data[:8]

    plain = ParallelProcessor(size_and_head, max_workers=2).process(files)
    files = FileScanner().list_files(tmp_path)
    ahead = ParallelProcessor(size_and_head, max_workers=2, prefetch=True,
                              prefetch_bytes=64 * 1024).process(files)
    assert ahead.successful_results() == plain.successful_results()
    assert not any(f.prefetched for f in files), "prefetched bytes are handed over once"


def test_prefetch_never_reads_fifos_and_reports_missing_files(tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "fine")
    os.mkfifo(tmp_path / "pipe")
    files = [FileInfo.from_path(tmp_path / "ok.txt"), FileInfo(tmp_path / "pipe", 0, 0.0, ""),
             FileInfo(tmp_path / "gone.txt", 3, 0.0, ".txt")]

    def kind(f: FileInfo) -> str:
        if f.path.name == "pipe":
            return "skipped"  # reading it would block: the point is prefetch never tried
        return f.read_text()

    result = ParallelProcessor(kind, prefetch=True).process(files)
    assert result.results[0].result == "fine"
    assert result.results[1].result == "skipped"
    assert result.results[2].error_type == "FileNotFoundError"


def test_batch_result_helpers() -> None:
    b: BatchResult[int] = BatchResult()
    assert b.success_rate == 100.0 and b.successful_results() == []


def test_workers_that_cannot_start_give_a_clear_error_not_a_loop() -> None:
    # Workers never import the main script, so a script on stdin works with spawn too; a real
    # start-up failure (the initializer raises) is one clear error naming its cause.
    code = textwrap.dedent("""
        from parallel_file_processor import ParallelProcessor
        from parallel_file_processor.errors import WorkerStartError
        def f(x):
            return x
        def broken_init():
            raise RuntimeError("no model file")
        pp = ParallelProcessor(f, "process_pool", max_workers=2, start_method="spawn")
        print("spawn:", pp.process(range(10)).successful)
        try:
            ParallelProcessor(f, "process_pool", max_workers=2,
                              initializer=broken_init).process(range(10))
        except WorkerStartError as exc:
            print("clear error:", exc)
        pp = ParallelProcessor(f, "process_pool", start_method="fork")
        print("fork:", pp.process(range(10)).successful)
    """)
    res = subprocess.run([sys.executable, "-W", FORK_WARNINGS_SHOWN, "-"], input=code,
                         capture_output=True, text=True, timeout=120)
    assert "is multi-threaded, use of fork" not in res.stderr  # Python 3.12+ warns
    assert "spawn: 10" in res.stdout, res.stderr[-2000:]
    assert "clear error: the initializer failed in a worker process: RuntimeError: no model file" \
        in res.stdout, res.stderr[-2000:]
    assert "fork: 10" in res.stdout


def test_fork_is_not_used_once_this_process_has_threads() -> None:
    # start_method="fork" after the native pool started its threads: the workers start with
    # forkserver instead (a WARNING says so), and nothing forks a multi-threaded process.
    code = textwrap.dedent("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(message)s")
        from parallel_file_processor import ParallelProcessor, hash_files
        hash_files([sys.executable])
        def f(x):
            return x * 2
        pp = ParallelProcessor(f, "process_pool", max_workers=2, start_method="fork")
        print("results:", pp.process(range(10)).successful_results())
    """)
    res = subprocess.run([sys.executable, "-W", FORK_WARNINGS_SHOWN, "-"], input=code,
                         capture_output=True, text=True, timeout=120)
    assert "is multi-threaded, use of fork" not in res.stderr  # Python 3.12+ warns
    assert f"results: {[2 * x for x in range(10)]}" in res.stdout, res.stderr[-2000:]
    assert "WARNING start_method='fork': this process runs" in res.stdout
    assert "starting workers with forkserver instead" in res.stdout
