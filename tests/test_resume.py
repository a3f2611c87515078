"""Batch jobs that survive: a run killed with SIGKILL resumes, a re-run does only new work, a
changed function starts over, and a rate limit holds across every worker of the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
from conftest import write
from parallel_file_processor import (
    FileProcessor,
    ParallelProcessor,
    RateLimited,
)

# A script a user would write: every call leaves a line in CALLS (so a test can count the
# calls across a kill), and the results go to OUT once the run is done.
SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from parallel_file_processor import ParallelProcessor

    CALLS, CKPT, OUT, MODE = sys.argv[1:5]

    def work(x):
        with open(CALLS, "a") as f:
            f.write(f"{x}\\n")
        time.sleep(0.002)
        return {"x": x, "square": x * x}

    if __name__ == "__main__":
        result = ParallelProcessor(work, mode=MODE, max_workers=4, batch_size=8,
                                   checkpoint=CKPT).process(range(1500))
        with open(OUT, "w") as f:
            json.dump({"results": [r.result for r in result.results],
                       "statuses": [r.status for r in result.results],
                       "from_checkpoint": sum(r.from_checkpoint for r in result.results)}, f)
""")


def calls_in(path: Path) -> Counter[int]:
    if not path.exists():
        return Counter()
    return Counter(int(line) for line in path.read_text().split())


@pytest.mark.parametrize("mode", ["thread_pool", "process_pool"])
def test_a_killed_run_resumes_and_redoes_only_what_was_in_flight(tmp_path: Path,
                                                                   mode: str) -> None:
    script = write(tmp_path / "job.py", SCRIPT)
    calls, ckpt, out = tmp_path / "calls.txt", tmp_path / "run.ckpt", tmp_path / "out.json"
    argv = [sys.executable, str(script), str(calls), str(ckpt), str(out), mode]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(calls_in(calls).values()) < 400 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # mid-run, with work in flight
    proc.wait(timeout=30)
    before = calls_in(calls)
    assert 400 <= sum(before.values()) < 1500, "killed mid-way"
    assert not out.exists()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["results"] == [{"x": x, "square": x * x} for x in range(1500)]
    assert set(got["statuses"]) == {"ok"}
    after = calls_in(calls)
    assert set(after) == set(range(1500)), "every item ran at least once"
    twice = [x for x, n in after.items() if n > 1]
    # at most what was in flight: 4 workers x 2 chunks of 8, per worker, and the chunks the
    # driver had received but not yet written
    assert len(twice) <= 4 * 2 * 8 + 16, len(twice)
    assert got["from_checkpoint"] >= sum(before.values()) - len(twice)


def test_an_unchanged_rerun_calls_nothing_and_changed_files_run_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(40):
        write(data / f"d{i % 4}" / f"f{i}.txt", f"content {i}")
    ckpt = tmp_path / "files.ckpt"
    calls: list[str] = []
    lock = threading.Lock()

    def size_of(f):  # noqa: ANN001, ANN202
        with lock:
            calls.append(f.path_str)
        return len(f.read_bytes())

    first = FileProcessor(checkpoint=ckpt).process_directory(data, size_of)
    assert first.successful == 40 and len(calls) == 40
    calls.clear()
    again = FileProcessor(checkpoint=ckpt).process_directory(data, size_of)
    assert calls == [], "nothing changed: nothing runs"
    assert again.successful == 40 and all(r.from_checkpoint for r in again.results)
    assert sorted(r.result for r in again.results) == sorted(r.result for r in first.results)
    changed = [data / "d0" / "f0.txt", data / "d1" / "f1.txt", data / "d2" / "f2.txt"]
    for p in changed:
        p.write_text("something else, longer")
    new = write(data / "new.txt", "brand new")
    os.unlink(data / "d3" / "f3.txt")
    third = FileProcessor(checkpoint=ckpt).process_directory(data, size_of)
    assert sorted(calls) == sorted(str(p) for p in [*changed, new])
    assert third.successful == 40


def test_a_changed_function_starts_over_and_says_so(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.ckpt"
    ParallelProcessor(lambda x: x + 1, checkpoint=ckpt).process(range(10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ParallelProcessor(lambda x: x * 100, checkpoint=ckpt).process(range(10))
    assert any("starting over" in str(w.message) for w in caught)
    assert [r.result for r in result.results] == [x * 100 for x in range(10)]
    assert not any(r.from_checkpoint for r in result.results)
    kept = ParallelProcessor(lambda x: -x, checkpoint=ckpt, reuse="always").process(range(10))
    assert [r.result for r in kept.results] == [x * 100 for x in range(10)]
    bumped = ParallelProcessor(lambda x: x * 100, checkpoint=ckpt, version="2").process(
        range(3))
    assert not any(r.from_checkpoint for r in bumped.results), "a new version starts over"


def test_failures_run_again_unless_kept(tmp_path: Path) -> None:
    ckpt = tmp_path / "run.ckpt"
    attempts: Counter[int] = Counter()

    def flaky(x: int) -> int:
        attempts[x] += 1
        if x % 3 == 0 and attempts[x] == 1:
            raise ValueError(f"bad {x}")
        return x

    first = ParallelProcessor(flaky, checkpoint=ckpt).process(range(9))
    assert first.failed == 3
    again = ParallelProcessor(flaky, checkpoint=ckpt).process(range(9))
    assert again.failed == 0 and sum(not r.from_checkpoint for r in again.results) == 3
    attempts.clear()
    ParallelProcessor(flaky, checkpoint=tmp_path / "b.ckpt").process(range(9))
    attempts.clear()
    kept = ParallelProcessor(flaky, checkpoint=tmp_path / "b.ckpt",
                             retry_failed=False).process(range(9))
    assert kept.failed == 3 and not attempts, "kept failures do not run"
    assert {r.error_type for r in kept.failed_results()} == {"ValueError"}


def test_results_that_cannot_be_kept_fail_with_their_type(tmp_path: Path) -> None:
    def lock_or_number(x: int) -> object:
        return threading.Lock() if x == 2 else x

    result = ParallelProcessor(lock_or_number, checkpoint=tmp_path / "r.ckpt").process(range(5))
    assert result.successful == 4 and result.failed == 1
    [bad] = result.failed_results()
    assert bad.index == 2 and bad.error_type == "CheckpointError" and "lock" in bad.error


def test_pfp_process_checkpoint_and_status(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(12):
        write(data / f"f{i}.txt", "x" * i)
    ckpt = tmp_path / "run.ckpt"
    pfp = [sys.executable, "-m", "parallel_file_processor"]
    cmd = [*pfp, "process", str(data), "--func", "parallel_file_processor.jobs:file_info",
           "--checkpoint", str(ckpt), "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    write(data / "f99.txt", "new")
    status = subprocess.run([*pfp, "status", str(ckpt), str(data), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["done"] == 12 and info["failed"] == 0 and info["pending"] == 1
    assert info["function"] == "parallel_file_processor.jobs.file_info"
    text = subprocess.run([*pfp, "status", str(ckpt)], capture_output=True, text=True,
                          timeout=120)
    assert "done: 12" in text.stdout and "last written:" in text.stdout
    missing = subprocess.run([*pfp, "status", str(tmp_path / "nope.ckpt")], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_a_job_file_keeps_a_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    data = tmp_path / "data"
    for i in range(5):
        write(data / f"f{i}.csv", f"a\n{i}\n")
    job = write(tmp_path / "job.yaml", textwrap.dedent("""
        scan:
          directory: data
        processing:
          processor: csv_stats
          checkpoint: state/run.ckpt
          rate_limit: 200/s
        output:
          results_csv: out/results.csv
    """))
    pfp = [sys.executable, "-m", "parallel_file_processor", "run", str(job)]
    for _ in range(2):
        res = subprocess.run(pfp, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
    assert (tmp_path / "state" / "run.ckpt").exists()
    bad = write(tmp_path / "bad.yaml", "scan:\n  directory: data\nprocessing:\n"
                "  rate_limit: lots\n")
    res = subprocess.run([sys.executable, "-m", "parallel_file_processor", "run", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "processing.rate_limit" in res.stderr


# --- rate limits --------------------------------------------------------------------------


def busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < t + 1.0) for i, t in enumerate(stamps))


def test_a_rate_limit_holds_across_threads() -> None:
    stamps: list[float] = []
    lock = threading.Lock()

    def call(x: int) -> int:
        with lock:
            stamps.append(time.monotonic())
        time.sleep(0.01)
        return x

    result = ParallelProcessor(call, max_workers=8, rate_limit=50).process(range(150))
    assert result.successful == 150
    assert busiest_second(stamps) <= 53
    assert max(stamps) - min(stamps) >= 2.0, "150 calls at 50/s take about 3 s"


def stamp(x: int) -> float:
    return time.time()


def test_a_rate_limit_holds_across_processes() -> None:
    result = ParallelProcessor(stamp, mode="process_pool", max_workers=2,
                               rate_limit="3000/min").process(range(150))
    assert result.successful == 150
    assert busiest_second([r.result for r in result.results]) <= 53


def test_rate_limited_pauses_every_worker_and_keeps_retries() -> None:
    stamps: list[tuple[float, int]] = []
    lock = threading.Lock()
    raised = threading.Event()

    def call(x: int) -> int:
        with lock:
            stamps.append((time.monotonic(), x))
        if x == 40 and not raised.is_set():
            raised.set()
            raise RateLimited(retry_after=1)
        return x

    result = ParallelProcessor(call, max_workers=4, rate_limit=100, retries=0).process(
        range(120))
    assert result.successful == 120 and result.failed == 0, "the item ran again, not failed"
    at = next(t for t, x in stamps if x == 40)
    after = sorted(t for t, _ in stamps if t > at)
    assert after and after[0] - at >= 0.9, "every worker waited about a second"


def test_any_exception_with_retry_after_pauses_too() -> None:
    class TooManyRequests(Exception):
        retry_after = 0.5

    seen: Counter[int] = Counter()

    def call(x: int) -> int:
        seen[x] += 1
        if x == 3 and seen[x] == 1:
            raise TooManyRequests("HTTP 429")
        return x

    started = time.monotonic()
    result = ParallelProcessor(call, max_workers=2, rate_limit=1000).process(range(10))
    assert result.successful == 10 and seen[3] == 2
    assert time.monotonic() - started >= 0.45
