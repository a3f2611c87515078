"""The user's own function, as written: in-process modes call the very object (no pickling),
process mode works however Python was started, and runs survive stuck items and Ctrl-C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import write
from parallel_file_processor import FileProcessor, ParallelProcessor, ProcessingMode, Status

IN_PROCESS = [ProcessingMode.SEQUENTIAL, ProcessingMode.THREAD_POOL, ProcessingMode.ASYNC]
REPO = Path(__file__).resolve().parents[1]


def run_python(*args: str, cwd: Path | None = None, stdin: str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


# --- shared state: the very object is called ----------------------------------------------

SEEN: list[int] = []


def append_to_global(x: int) -> int:
    SEEN.append(x)
    return x


@pytest.mark.parametrize("mode", IN_PROCESS)
def test_a_global_list_sees_every_call(mode: ProcessingMode) -> None:
    SEEN.clear()
    batch = ParallelProcessor(append_to_global, mode, max_workers=4).process(range(1000))
    assert batch.successful == 1000
    assert sorted(SEEN) == list(range(1000))


@pytest.mark.parametrize("mode", IN_PROCESS)
def test_a_callable_object_counts_every_call_under_its_lock(mode: ProcessingMode) -> None:
    class Counter:
        def __init__(self) -> None:
            self.lock = threading.Lock()  # cannot be pickled: proves nothing is
            self.calls = 0

        def __call__(self, x: int) -> int:
            with self.lock:
                self.calls += 1
            return x * 2

    counter = Counter()
    batch = ParallelProcessor(counter, mode, max_workers=4).process(range(500))
    assert batch.successful == 500 and counter.calls == 500
    assert batch.successful_results() == [x * 2 for x in range(500)]


@pytest.mark.parametrize("mode", IN_PROCESS)
def test_a_shared_sqlite_connection_is_written_through(mode: ProcessingMode,
                                                       tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "out.db", check_same_thread=False)
    db.execute("CREATE TABLE seen (x INTEGER)")
    lock = threading.Lock()

    def store(x: int) -> None:
        with lock:
            db.execute("INSERT INTO seen VALUES (?)", (x,))

    batch = ParallelProcessor(store, mode, max_workers=4).process(range(300))
    db.commit()
    assert batch.successful == 300
    assert db.execute("SELECT count(*), sum(x) FROM seen").fetchone() == (300, sum(range(300)))


def test_an_async_function_shares_state_too() -> None:
    seen: list[int] = []

    async def record(x: int) -> int:
        seen.append(x)
        return x

    batch = ParallelProcessor(record, ProcessingMode.ASYNC, max_workers=8).process(range(200))
    assert batch.successful == 200 and sorted(seen) == list(range(200))


def test_process_mode_copies_the_function() -> None:
    SEEN.clear()
    batch = ParallelProcessor(append_to_global, "process_pool", max_workers=2).process(range(20))
    assert batch.successful == 20 and SEEN == []  # the copies appended in the workers


# --- process mode however Python was started -------------------------------------------------

EXAMPLE_4 = textwrap.dedent("""
    from parallel_file_processor import ParallelProcessor, ProcessingMode

    # Process list of items (not files)
    items = list(range(1000))

    def heavy_computation(item):
        \"\"\"CPU-intensive calculation.\"\"\"
        import math
        result = sum(math.sin(i * item) for i in range(10000))
        return {'item': item, 'result': result}

    # Use process pool for CPU-bound work
    processor = ParallelProcessor(
        processor=heavy_computation,
        mode=ProcessingMode.PROCESS_POOL,
        max_workers=4
    )

    # Track progress
    def show_progress(completed, total):
        pct = (completed / total) * 100
        print(f"\\rProgress: {pct:.1f}%", end='', flush=True)

    processor.on_progress(show_progress)

    result = processor.process(items)
    print(f"\\nCompleted {result.successful}/{result.total_files} items")
""")


def test_unguarded_script_file_runs_process_mode_once(tmp_path: Path) -> None:
    script = write(tmp_path / "ex4.py", EXAMPLE_4)
    res = run_python(str(script), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("Completed 1000/1000 items") == 1  # the script ran once
    assert "Traceback" not in res.stderr


def test_process_mode_from_standard_input() -> None:
    res = run_python("-", stdin=EXAMPLE_4)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Completed 1000/1000 items" in res.stdout


def test_process_mode_from_dash_c() -> None:
    res = run_python("-c", EXAMPLE_4)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Completed 1000/1000 items" in res.stdout


def test_process_mode_with_a_lambda_and_a_main_class_from_stdin() -> None:
    code = textwrap.dedent("""
        from parallel_file_processor import ParallelProcessor
        class Boom(Exception):
            pass
        def f(x):
            if x == 3:
                raise Boom("three")
            return (lambda y: y + 1)(x)
        b = ParallelProcessor(f, "process_pool", max_workers=2, retries=1,
                              retry_on=Boom, backoff=0.01).process(range(6))
        print(b.successful, b.failed, b.results[3].error_type, b.results[3].attempts)
    """)
    res = run_python("-", stdin=code)
    assert res.stdout.split() == ["5", "1", "Boom", "2"], res.stderr[-3000:]


# --- stuck threads, Ctrl-C, dead parents ----------------------------------------------------


def test_more_hanging_items_than_threads_time_out_and_the_run_finishes() -> None:
    release = threading.Event()

    def every_20th_hangs(x: int) -> int:
        if x % 20 == 0:
            while not release.is_set():  # "for ever", until the test ends
                time.sleep(0.05)
        return x

    try:
        batch = ParallelProcessor(every_20th_hangs, "thread_pool", max_workers=4,
                                  timeout=1).process(range(200))
    finally:
        release.set()
    statuses = [r.status for r in batch.results]
    assert statuses.count(Status.TIMEOUT) == 10 and statuses.count(Status.OK) == 190
    assert [r.index for r in batch.results if r.status == Status.TIMEOUT] == list(range(0, 200,
                                                                                        20))
    assert batch.runner_stats["abandoned_threads"] == 10


INTERRUPT_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from parallel_file_processor import ParallelProcessor, BatchInterrupted
    mode, log = sys.argv[1], sys.argv[2]

    def work(x):
        time.sleep(0.002)
        with open(log, "a") as f:
            f.write(f"{x}\\n")
        return x

    async def awork(x):
        import asyncio
        await asyncio.sleep(0.002)
        with open(log, "a") as f:
            f.write(f"{x}\\n")
        return x

    pp = ParallelProcessor(awork if mode == "async" else work, mode, max_workers=2,
                           batch_size=512)
    try:
        pp.process(range(100_000))
    except BatchInterrupted as exc:
        b = exc.result
        ok = sorted(r.index for r in b.results if r.success)
        print("OK", len(ok), "CANCELLED", b.cancelled, "TOTAL", len(b.results))
        print("INDEXES", *ok)
""")


@pytest.mark.parametrize("mode", ["thread_pool", "process_pool", "async"])
def test_ctrl_c_keeps_every_item_that_finished(mode: str, tmp_path: Path) -> None:
    log = tmp_path / "done.log"
    script = write(tmp_path / "interrupt.py", INTERRUPT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), mode, str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # interrupt mid-chunk, once a few hundred are done
        if log.exists() and log.read_text().count("\n") > 300:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert "OK" in out, err[-3000:]
    ok = [int(i) for i in lines["INDEXES"].split()]
    logged = {int(x) for x in log.read_text().split()}
    assert set(ok) <= logged
    # Every call that finished before the interrupt is kept: at most the items running on
    # each worker at the moment of Ctrl-C may be missing.
    assert len(logged) - len(ok) <= 4, (len(logged), len(ok))
    assert len(ok) > 300
    total = int(out.split("TOTAL")[1].split()[0])
    assert total == 100_000  # finished + cancelled account for every item


def test_workers_of_a_killed_parent_exit_quietly(tmp_path: Path) -> None:
    script = write(tmp_path / "parent.py", textwrap.dedent("""
        import os, time
        from parallel_file_processor import ParallelProcessor
        def slow(x):
            time.sleep(0.05)
            return x
        print(os.getpid(), flush=True)
        ParallelProcessor(slow, "process_pool", max_workers=2).process(range(10_000))
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    parent = psutil.Process(int(proc.stdout.readline()))
    deadline = time.monotonic() + 30
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = [p for p in psutil.process_iter(["cmdline"]) if p.pid != parent.pid
                   and p.info["cmdline"] and "multiprocessing" in " ".join(p.info["cmdline"])
                   and _descends_from(p, parent.pid)]
        time.sleep(0.1)
    assert workers, "no worker processes seen"
    os.kill(parent.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, f"workers still running: {alive}"
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-3000:]


def _descends_from(p: psutil.Process, pid: int) -> bool:
    try:
        return any(a.pid == pid for a in p.parents())
    except psutil.Error:
        return False


# --- files: streaming per call, prefetch per call -------------------------------------------


def test_prefetch_can_be_asked_per_call(tmp_path: Path) -> None:
    for i in range(50):
        write(tmp_path / f"f{i}.txt", f"line {i}")
    seen: list[bool] = []

    def was_prefetched(f):  # type: ignore[no-untyped-def]
        seen.append(f.prefetched)
        return f.read_text()

    batch = FileProcessor(mode="sequential").process_directory(tmp_path, was_prefetched,
                                                               prefetch=True)
    assert batch.successful == 50 and all(seen)
    assert sorted(batch.successful_results()) == sorted(f"line {i}" for i in range(50))


# --- MODULE:FUNCTION, as users name their function ------------------------------------------


def pfp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "parallel_file_processor", *args, cwd=cwd)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: data, a module of their own beside the job file."""
    write(tmp_path / "data" / "a.txt", "one two three")
    write(tmp_path / "data" / "sub" / "b.txt", "four five")
    write(tmp_path / "wordcount.py", textwrap.dedent("""
        def count(f):
            return {"words": len(f.read_text().split())}
    """))
    return tmp_path


def test_pfp_process_loads_a_module_from_the_working_directory(project: Path) -> None:
    res = pfp("process", "data", "--func", "wordcount:count", "--csv", cwd=project)
    assert res.returncode == 0, res.stderr
    assert "result_words" in res.stdout and ",3" in res.stdout and ",2" in res.stdout


def test_pfp_process_loads_an_installed_module(project: Path) -> None:
    res = pfp("process", "data", "--func", "os.path:basename", "--json", cwd=project)
    assert res.returncode == 0, res.stderr
    assert '"result": "a.txt"' in res.stdout or "a.txt" in res.stdout


@pytest.mark.parametrize("spec, message", [
    ("nosuchmodule:f", "cannot import module 'nosuchmodule'"),
    ("wordcount:nope", "has no attribute 'nope'"),
    ("missing.py:f", "no such file"),
    ("wordcount", "expected MODULE:FUNCTION"),
])
def test_pfp_process_names_what_cannot_be_loaded(project: Path, spec: str, message: str) -> None:
    res = pfp("process", "data", "--func", spec, cwd=project)
    assert res.returncode == 2
    assert message in res.stderr and spec in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("mode", ["thread_pool", "process_pool"])
def test_job_file_processor_beside_the_job_file(project: Path, mode: str) -> None:
    write(project / "jobs" / "job.yaml", textwrap.dedent(f"""
        scan:
          directory: ../data
          extensions: [".txt"]
        processing:
          processor: wordcount:count
          mode: {mode}
        output:
          results_csv: ../out/results.csv
    """))
    # The module sits beside the job's data, not the job file: move it next to the job file.
    (project / "wordcount.py").rename(project / "jobs" / "wordcount.py")
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    for _ in range(2):  # re-running the same job refreshes its outputs
        res = pfp("run", str(project / "jobs" / "job.yaml"), cwd=elsewhere)
        assert res.returncode == 0, res.stderr
        assert "2 of 2 files processed" in res.stdout
    assert "result_words" in (project / "out" / "results.csv").read_text()


def test_job_file_with_a_missing_module_is_a_clear_usage_error(project: Path) -> None:
    write(project / "job.yaml", "scan: {directory: data}\nprocessing: {processor: gone:f}\n")
    res = pfp("run", "job.yaml", cwd=project)
    assert res.returncode == 2 and "gone:f: cannot import module 'gone'" in res.stderr
    assert "Traceback" not in res.stderr
