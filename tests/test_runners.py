"""Every runner gives the same results: the engine's items and the capabilities' plans, run
inline, on threads, processes, asyncio and a Dask cluster of two worker processes (the
session's ``client``), against a plain local run. What only a cluster does (a killed worker,
a restart, paths the workers cannot see) is in test_distributed.py."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pandas.testing as pdt
import pytest
from conftest import write
from parallel_file_processor import ParallelProcessor, PatternError, Status, WorkerCrashed
from parallel_file_processor.aggregate import aggregate, aggregate_on
from parallel_file_processor.extract import extract_zips, extract_zips_on
from parallel_file_processor.hash import (
    find_duplicates,
    find_duplicates_on,
    hash_files,
    hash_files_on,
)
from parallel_file_processor.job import Plan, execute, shard_runner
from parallel_file_processor.options import ScanOptions
from parallel_file_processor.scan import scan, scan_on

RUNNERS = ["sequential", "thread_pool", "process_pool", "async", "dask", "dask executor"]


@pytest.fixture(params=RUNNERS)
def where(request: pytest.FixtureRequest) -> Any:
    """What the user gives: a mode name, a Dask client or its ``get_executor()``."""
    if request.param.startswith("dask"):
        client = request.getfixturevalue("client")
        return client.get_executor() if request.param == "dask executor" else client
    return request.param


def engine(where: Any, fn: Any, **options: Any) -> ParallelProcessor[Any, Any]:
    if isinstance(where, str):
        return ParallelProcessor(fn, where, **options)
    return ParallelProcessor(fn, executor=where, **options)


def is_mode(where: Any, *modes: str) -> bool:
    return isinstance(where, str) and where in modes


# --- functions the workers run (module level: process and Dask workers import them) ----------

_STATE: dict[str, str] = {}


def square_or_fail(x: int) -> int:
    if x % 7 == 3:
        raise ValueError(f"bad item {x}")
    return x * x


def sleep_on(x: float) -> float:
    time.sleep(x)
    return x


def fail_once(marker_dir: str) -> str:
    marker = Path(marker_dir) / "tried"
    if not marker.exists():
        marker.write_text("1")
        raise OSError("transient")
    return "ok"


def setup_worker(log: str) -> None:
    _STATE["init"] = "ready"
    with open(log, "a") as f:
        f.write(f"{os.getpid()}:{threading.get_ident()}\n")


def initialized(_: object) -> str | None:
    return _STATE.get("init")


def exit_on_first_try(marker_dir: str) -> str:
    marker = Path(marker_dir) / "crashed"
    if not marker.exists():
        marker.write_text("1")
        os._exit(3)
    return "ok"


def always_exit(_: object) -> None:
    os._exit(3)


def first(parts: list[Any]) -> Any:
    return parts[0]


def outcome(batch: Any) -> list[tuple[Any, ...]]:
    return [(r.index, r.success, r.result, r.error_type, r.error, r.status) for r in batch.results]


# --- the engine -------------------------------------------------------------------------------


def test_every_runner_gives_the_results_of_a_plain_run(where: Any) -> None:
    items = list(range(60)) + [5] * 20  # identical inputs must all run (pure=False on Dask)
    local = ParallelProcessor(square_or_fail, "sequential").process(items)
    batch = engine(where, square_or_fail, batch_size=7, max_workers=2).process(items)
    assert outcome(batch) == outcome(local)
    assert batch.successful == local.successful and batch.failed == local.failed > 0
    assert all(r.worker_id for r in batch.results)
    if not isinstance(where, str):
        assert all(r.worker_id.startswith("dask:") for r in batch.results)  # type: ignore[union-attr]
    assert "ValueError: bad item 3" in (batch.failed_results()[0].traceback or "")


def test_progress_counts_every_item_and_ordered_streams_keep_their_order(where: Any) -> None:
    seen: list[tuple[int, int]] = []
    pp = engine(where, square_or_fail, batch_size=4, max_workers=2)
    batch = pp.on_progress(lambda done, total: seen.append((done, total))).process(range(30))
    assert seen == [(n, 30) for n in range(1, 31)]  # once per item, as the seed's callback
    assert batch.successful + batch.failed == 30
    ordered = engine(where, square_or_fail, batch_size=3, max_workers=2).iter(range(20),
                                                                              ordered=True)
    assert [r.index for r in ordered] == list(range(20))


def test_the_initializer_runs_once_per_worker(where: Any, tmp_path: Path) -> None:
    log = tmp_path / "init.log"
    # threads: one call per thread; processes and Dask: per process; inline and asyncio: once
    workers = {"sequential": 1, "thread_pool": 3, "process_pool": 2, "async": 1}
    expected = workers[where] if isinstance(where, str) else 2
    batch = engine(where, initialized, batch_size=1, max_workers=max(2, expected),
                   initializer=setup_worker, initargs=(str(log),)).process(range(20))
    assert batch.successful_results() == ["ready"] * 20
    calls = log.read_text().split()
    assert len(calls) == len(set(calls)) == expected


def test_a_stuck_item_times_out_and_the_rest_completes(where: Any) -> None:
    if is_mode(where, "sequential"):
        pytest.skip("sequential mode runs items on the calling thread: nothing can time out")
    batch = engine(where, sleep_on, batch_size=5, timeout=0.5).process([0.0, 0.0, 3.0, 0.0, 0.0])
    assert [r.status for r in batch.results] == [Status.OK, Status.OK, Status.TIMEOUT,
                                                 Status.OK, Status.OK]
    assert batch.results[2].error_type == "TimeoutError"


def test_failed_items_are_retried_where_they_run(where: Any, tmp_path: Path) -> None:
    batch = engine(where, fail_once, retries=2, backoff=0.01).process([str(tmp_path)])
    assert batch.results[0].success and batch.results[0].attempts == 2


# --- the capabilities' plans ------------------------------------------------------------------


def make_tree(root: Path, n: int = 60) -> Path:
    for i in range(n):
        # sizes repeat, so same-size candidates end up in different shards
        write(root / f"d{i % 4}" / f"f{i:03}.bin", bytes([i % 9]) * (100 + (i % 6) * 50))
    write(root / "empty.bin", b"")
    return root


def test_hash_files_on_every_runner_equals_a_local_run(where: Any, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t")
    paths = sorted(root.rglob("*.bin"))[:20] + [root / "missing.bin"]
    with shard_runner(where) as runner:
        assert hash_files_on(runner, root, sort=True) == hash_files(root, sort=True)
        assert hash_files_on(runner, root, "sha256", extensions={".bin"}, min_size=200,
                             sort=True) == hash_files(root, "sha256", extensions={".bin"},
                                                      min_size=200, sort=True)
        listed = hash_files_on(runner, paths)
        assert listed == hash_files(paths)
        assert listed[-1].error_type == "FileNotFoundError" and listed[-1].digest is None
        # a cache is read and written here, the workers hash only what it misses
        db = tmp_path / "cache.sqlite"
        cold = hash_files_on(runner, root, cache=db, sort=True)
        warm = hash_files_on(runner, root, cache=db, sort=True)
    assert [r.digest for r in warm] == [r.digest for r in cold]
    assert not any(r.cached for r in cold) and all(r.cached for r in warm)


def test_find_duplicates_on_every_runner_equals_a_local_run(where: Any, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t")
    os.link(root / "d0" / "f000.bin", root / "hard.bin")
    local = find_duplicates(root)
    with shard_runner(where) as runner:
        found = find_duplicates_on(runner, root)
    assert found.equals(local) and len(local) > 10
    assert found.attrs["reclaimable_bytes"] == local.attrs["reclaimable_bytes"] > 0


def test_a_scan_of_several_roots_on_every_runner_equals_a_local_run(where: Any,
                                                                   tmp_path: Path) -> None:
    roots = [make_tree(tmp_path / f"r{i}", 10 + i) for i in range(3)]
    local = scan(*roots, include=["*.bin"], min_size=1, sort=True)
    with shard_runner(where) as runner:
        found = scan_on(runner, roots, ScanOptions.make(["*.bin"], min_size=1, sort=True))
        unsorted = scan_on(runner, roots, ScanOptions.make())
        # a shard's own error is raised here, as its type
        with pytest.raises(PatternError):
            scan_on(runner, roots, ScanOptions.make(["[unclosed"]))
    assert found.files == local.files and found.entries_seen == local.entries_seen
    assert sorted(f.path for f in unsorted) == sorted(f.path for f in scan(*roots))


def write_csvs(root: Path) -> Path:
    for i in range(7):
        # int in even files, float in odd ones: the merge must promote across shards
        rows = "".join(f"{j},{j * 0.5 if i % 2 else j},k{j % 3}\n" for j in range(25))
        write(root / f"part{i}.csv", "a,b,c\n" + rows)
    write(root / "extra.csv", "a,d\n1,x\n")
    write(root / "broken.csv", b"a,b\n\xff\xfe,1\n")
    write(root / "empty.csv", "")
    write(root / "merged.csv", "a,_source_file\n1,part0.csv\n")  # an earlier run's output
    return root


def test_aggregate_on_every_runner_equals_a_local_run(where: Any, tmp_path: Path) -> None:
    root = write_csvs(tmp_path / "csv")
    local = aggregate(root)
    with shard_runner(where) as runner:
        merged = aggregate_on(runner, root)
    pdt.assert_frame_equal(merged, local)
    lr, rr = local.attrs["report"], merged.attrs["report"]
    assert rr.failed == lr.failed and [e.path.name for e in lr.failed] == ["broken.csv",
                                                                           "merged.csv"]
    assert rr.rows == lr.rows and rr.empty_files == lr.empty_files == ["empty.csv"]
    assert rr.type_changes == lr.type_changes and rr.missing_columns == lr.missing_columns


def test_extract_zips_on_every_runner_equals_a_local_run(where: Any, tmp_path: Path) -> None:
    src = tmp_path / "zips"
    src.mkdir()
    for i in range(6):
        with zipfile.ZipFile(src / f"a{i}.zip", "w") as z:
            for j in range(i + 1):
                z.writestr(f"dir/file{j}.txt", f"archive {i} entry {j}\n" * (j + 1))
    write(src / "corrupt.zip", b"PK\x03\x04 not really a zip")
    local = extract_zips(src, tmp_path / "local")
    with shard_runner(where) as runner:
        extracted = extract_zips_on(runner, src, tmp_path / "out")

    def key(results: list[Any], out: Path) -> list[tuple[Any, ...]]:
        return [(r.archive, r.destination.relative_to(out), r.files_extracted, r.bytes, r.status,
                 r.error_type) for r in results]

    assert key(extracted, tmp_path / "out") == key(local, tmp_path / "local")
    assert any(r.status == "failed" for r in extracted)
    assert (tmp_path / "out" / "a5" / "dir" / "file5.txt").read_text() == \
        (tmp_path / "local" / "a5" / "dir" / "file5.txt").read_text()


# --- the driver's retries of a shard whose worker died -------------------------------------------


def test_a_shard_whose_worker_died_runs_again_and_one_that_always_kills_it_fails(
        tmp_path: Path) -> None:
    with shard_runner("process_pool", workers=1) as runner:
        plan = Plan([str(tmp_path)], exit_on_first_try, first)
        assert execute(plan, runner) == "ok"
        with pytest.raises(WorkerCrashed, match="died each of the 4 times it ran"):
            execute(Plan([None], always_exit, first), runner)
