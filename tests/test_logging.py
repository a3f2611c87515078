"""Logging: one WARNING per failed item in every mode, records from process and Dask workers
reach the parent's handlers, retries at INFO, timings at DEBUG, the CLI's flags and log file,
and job files' ``logging:`` section."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import unprivileged_prefix, write
from parallel_file_processor import ConfigError, FileScanner, ParallelProcessor, hash_files
from parallel_file_processor.config import parse_job
from parallel_file_processor.engine import FileProcessor

PKG = "parallel_file_processor"


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


async def fail_on_three_async(x: int) -> int:
    return fail_on_three(x)


def warn_and_double(x: int) -> int:
    logging.getLogger("user.fn").warning("looked at %d in pid %d", x, os.getpid())
    return 2 * x


def fail_first_time(marker: str) -> str:
    path = Path(marker)
    if not path.exists():
        path.write_text("tried")
        raise ConnectionError("flaky")
    return "ok"


def failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(PKG) and r.levelno == logging.WARNING]


@pytest.mark.parametrize("mode", ["sequential", "thread_pool", "process_pool", "async"])
def test_each_failed_item_is_one_warning_in_every_mode(
        mode: str, caplog: pytest.LogCaptureFixture) -> None:
    fn = fail_on_three_async if mode == "async" else fail_on_three
    caplog.set_level(logging.WARNING, logger=PKG)
    batch = ParallelProcessor(fn, mode, max_workers=2).process(range(8))
    assert batch.failed == 1
    [record] = failures(caplog)
    assert record.name == f"{PKG}.job"
    assert record.getMessage() == "item 3 (3): ValueError: three is bad"
    assert (record.error_type, record.item_index, record.status) == ("ValueError", 3, "failed")


def test_a_failed_file_is_named_by_its_path(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    for name in ("a.txt", "b.txt", "bad.txt"):
        write(tmp_path / name, name)

    def read(f):  # noqa: ANN001, ANN202 - a user's function
        if f.path.name == "bad.txt":
            raise OSError("disk said no")
        return len(f.read_bytes())

    caplog.set_level(logging.WARNING, logger=PKG)
    batch = FileProcessor(FileScanner(), "thread_pool").process_directory(tmp_path, read)
    assert batch.failed == 1
    [record] = failures(caplog)
    assert record.getMessage() == f"{tmp_path / 'bad.txt'}: OSError: disk said no"
    assert record.file_path == str(tmp_path / "bad.txt")


def test_records_of_the_users_function_in_process_workers_reach_the_parent(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    batch = ParallelProcessor(warn_and_double, "process_pool", max_workers=2).process(range(4))
    assert batch.successful == 4
    got = [r for r in caplog.records if r.name == "user.fn"]
    assert sorted(r.getMessage().split(" in pid")[0] for r in got) == [
        f"looked at {i}" for i in range(4)]
    pids = {int(r.getMessage().rsplit(" ", 1)[1]) for r in got}
    assert os.getpid() not in pids and {r.process for r in got} == pids  # made in the workers
    assert all(r.processName != "MainProcess" for r in got)


def test_worker_records_respect_the_parents_levels(caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("user.fn").setLevel(logging.ERROR)
    try:
        caplog.set_level(logging.WARNING)
        ParallelProcessor(warn_and_double, "process_pool", max_workers=1).process(range(3))
    finally:
        logging.getLogger("user.fn").setLevel(logging.NOTSET)
    assert not [r for r in caplog.records if r.name == "user.fn"]


@pytest.mark.parametrize("mode", ["thread_pool", "process_pool"])
def test_retries_are_info(mode: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=PKG)
    pp = ParallelProcessor(fail_first_time, mode, max_workers=1, retries=2, backoff=0.01)
    batch = pp.process([str(tmp_path / "marker")])
    assert batch.successful == 1 and not failures(caplog)
    [retry] = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert retry.levelno == logging.INFO and retry.name == f"{PKG}.task"
    assert "ConnectionError: flaky; retrying in 0.01 s (attempt 2 of 3)" in retry.getMessage()


def test_timings_and_chunking_are_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=PKG)
    ParallelProcessor(fail_on_three, "thread_pool", max_workers=2, batch_size=4).process(
        range(20))
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("chunks of 4 items" in m for m in debug), debug
    assert any(m.startswith("20 items in ") and "19 ok, 1 failed" in m for m in debug), debug


def test_nothing_is_printed_without_a_handler() -> None:
    code = ("from parallel_file_processor import ParallelProcessor, hash_files\n"
            "def f(x):\n    raise ValueError(x)\n"
            "print(ParallelProcessor(f, 'thread_pool').process(range(3)).failed)\n"
            "print(len(hash_files(['/nonexistent/file'])))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.stdout.split() == ["3", "1"] and res.stderr == ""


def test_native_jobs_log_their_failed_files(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    good = write(tmp_path / "good.bin", "x")
    missing = tmp_path / "gone.bin"
    caplog.set_level(logging.WARNING, logger=PKG)
    results = hash_files([good, missing], "sha256")
    assert results[1].digest is None
    [record] = failures(caplog)
    assert record.name == f"{PKG}.hash"
    assert record.getMessage().startswith(f"{missing}: FileNotFoundError: ")


# --- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(processes=True, n_workers=1, threads_per_worker=2,
                                       dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    client.wait_for_workers(1, timeout=60)
    yield client
    client.close()
    cluster.close()


def test_failed_item_on_dask_is_one_warning(dask_client,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=PKG)
    batch = ParallelProcessor(fail_on_three, executor=dask_client).process(range(8))
    assert batch.failed == 1
    [record] = failures(caplog)
    assert record.getMessage() == "item 3 (3): ValueError: three is bad"


def test_records_of_the_users_function_on_dask_workers_reach_the_client(
        dask_client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    batch = ParallelProcessor(warn_and_double, executor=dask_client).process(range(3))
    assert batch.successful == 3
    deadline = time.monotonic() + 10  # forwarded records arrive as events, soon after
    while time.monotonic() < deadline:
        got = [r for r in caplog.records if r.name == "user.fn"]
        if len(got) == 3:
            break
        time.sleep(0.05)
    assert sorted(r.getMessage().split(" in pid")[0] for r in got) == [
        f"looked at {i}" for i in range(3)]
    assert os.getpid() not in {int(r.getMessage().rsplit(" ", 1)[1]) for r in got}


# --- the CLI and job files ----------------------------------------------------------------------


def pfp(*args: str, prefix: list[str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*(prefix or []), sys.executable, "-m", "parallel_file_processor",
                           *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_hash_log_file_gets_the_unreadable_file(open_tmp: Path) -> None:
    data = open_tmp / "data"
    write(data / "ok.txt", "fine")
    secret = write(data / "secret.txt", "hidden")
    os.chmod(secret, 0o000)
    log = open_tmp / "logs" / "pfp.log"
    res = pfp("hash", str(data), "--log-file", str(log), prefix=unprivileged_prefix())
    assert res.returncode == 1, res.stderr
    lines = log.read_text().splitlines()
    [warning] = [line for line in lines if " WARNING " in line]
    assert " WARNING parallel_file_processor.hash [MainProcess " in warning, warning
    assert warning.endswith(f": {secret}: PermissionError: Permission denied (os error 13)")
    assert any("1 failed" in line and " INFO " in line for line in lines), lines
    # The terminal's output is as without the flag: the capped error list and the summary.
    assert f"error: {secret}: Permission denied" in res.stderr
    assert "2 hashed" not in res.stderr and "1 hashed, 1 failed" in res.stderr


def test_verbose_quiet_and_log_file_on_every_subcommand() -> None:
    from parallel_file_processor.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    for name, command in sub.choices.items():
        options = {o for a in command._actions for o in a.option_strings}  # noqa: SLF001
        assert {"-v", "--verbose", "-q", "--quiet", "--log-file"} <= options, name


def test_verbose_shows_failures_as_they_happen_quiet_shows_only_problems(tmp_path: Path) -> None:
    write(tmp_path / "mods" / "jobfn.py",
          "import logging\n"
          "def f(info):\n"
          "    logging.getLogger('jobfn').info('saw %s', info.path.name)\n"
          "    if info.path.name == 'bad.txt':\n        raise ValueError('bad file')\n"
          "    return 1\n")
    for name in ("a.txt", "bad.txt"):
        write(tmp_path / "data" / name, name)
    func = f"{tmp_path / 'mods' / 'jobfn.py'}:f"
    loud = pfp("process", str(tmp_path / "data"), "--func", func, "-v", "--mode",
               "process_pool")
    assert loud.returncode == 1
    assert f"pfp: WARNING: {tmp_path / 'data' / 'bad.txt'}: ValueError: bad file" in loud.stderr
    assert "pfp: INFO: saw a.txt" in loud.stderr  # the function's own record, from a worker
    quiet = pfp("process", str(tmp_path / "data"), "--func", func, "-q", "--json")
    assert quiet.returncode == 1 and len(quiet.stdout.splitlines()) == 2
    assert quiet.stderr.splitlines() == [
        f"error: {tmp_path / 'data' / 'bad.txt'}: ValueError: bad file"]
    debug = pfp("process", str(tmp_path / "data"), "--func", func, "-vv")
    assert "pfp: DEBUG: " in debug.stderr and "items in" in debug.stderr


def test_job_file_logging_section(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a.csv", "x\n1\n")
    write(tmp_path / "data" / "b.csv", "x\n\"unclosed\n")
    job = write(tmp_path / "job.yaml",
                "scan: {directory: data/}\n"
                "processing: {processor: csv_stats}\n"
                "logging: {file: logs/run.log, level: INFO}\n")
    res = pfp("run", str(job), "--no-progress")
    assert res.returncode == 1, res.stderr
    text = (tmp_path / "logs" / "run.log").read_text()
    assert "WARNING parallel_file_processor.job" in text and "b.csv: ParserError" in text
    assert "job: 1 of 2 files processed, 1 failed" in text
    cli_log = tmp_path / "cli.log"
    pfp("run", str(job), "--log-file", str(cli_log))  # the command line's file wins
    assert "b.csv: ParserError" in cli_log.read_text()
    assert text == (tmp_path / "logs" / "run.log").read_text()


@pytest.mark.parametrize("section, message", [
    ({"level": "loud", "file": "x.log"},
     "logging.level: expected one of debug, info, warning, error, critical, got 'loud'"),
    ({"file": ""}, "logging.file: expected a non-empty string, got ''"),
    ({"level": "debug"}, "logging.level: applies to logging.file, which is not set"),
    ({"fil": "x.log"}, "logging.fil: unknown key (expected one of: file, level)"),
])
def test_job_file_logging_is_validated(section: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_job({"scan": {"directory": "d"}, "logging": section})
    assert message in str(info.value)
