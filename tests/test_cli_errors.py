"""Every CLI error is one line naming the file and the cause, with the README's exit codes:
0 ok, 1 some files failed or an output could not be written whole, 2 the command could not
run as given, 130 interrupted. Run as users run them: subprocesses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write


def pfp(*args: str, stdout: int | None = subprocess.PIPE, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120, cwd=cwd)


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i in range(300):
        write(root / f"d{i % 7}" / f"f{i}.csv", "x,y\n" + "".join(f"{j},{j * i}\n"
                                                                 for j in range(40)))
    return root


def test_run_on_a_folder_is_a_usage_error(data: Path) -> None:
    res = pfp("run", str(data))
    assert res.returncode == 2
    assert one_error_line(res) == (
        f"pfp run: error: {data}: is a directory, not a job file (a YAML file such as "
        "examples/job.yaml)")


def test_run_on_a_missing_or_invalid_job_file(tmp_path: Path) -> None:
    missing = pfp("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert one_error_line(missing) == (
        f"pfp run: error: {tmp_path / 'nope.yaml'}: No such file or directory")
    job = write(tmp_path / "job.yaml",
                "scan: {directory: d, recursiv: true}\nprocessing: {max_workers: eight}\n")
    bad = pfp("run", str(job))
    assert bad.returncode == 2
    assert one_error_line(bad) == (
        f"pfp run: error: {job}: invalid job file: scan.recursiv: unknown key (expected one "
        "of: directory, recursive, include_patterns, exclude_patterns, extensions, "
        "skip_hidden, size_limits); processing.max_workers: expected an integer >= 1, got "
        "'eight'")
    yaml = write(tmp_path / "broken.yaml", "scan: [unclosed\n")
    assert one_error_line(pfp("run", str(yaml))).startswith(
        f"pfp run: error: {yaml}: not valid YAML: ")


def test_run_accepts_no_progress_like_every_subcommand(tmp_path: Path, data: Path) -> None:
    job = write(tmp_path / "job.yaml", f"scan: {{directory: {data}}}\n")
    res = pfp("run", str(job), "--no-progress", "--dry-run")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = pfp("run", str(job), "--no-progress")
    assert res.returncode == 0 and "300 of 300 files processed" in res.stdout


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--csv"], ["--paths"], ["--count"]])
def test_scan_to_a_full_stdout(data: Path, fmt: list[str]) -> None:
    with open("/dev/full", "w") as full:
        res = pfp("scan", str(data), *fmt, stdout=full.fileno())
    assert res.returncode == 1
    assert one_error_line(res) == "pfp scan: error: <stdout> (/dev/full): No space left on device"


@pytest.mark.parametrize("command", [["hash"], ["process", "--func",
                                                "parallel_file_processor.jobs:file_info"]])
def test_other_commands_to_a_full_stdout(data: Path, command: list[str]) -> None:
    with open("/dev/full", "w") as full:
        res = pfp(command[0], str(data), *command[1:], stdout=full.fileno())
    assert res.returncode == 1
    assert one_error_line(res) == (
        f"pfp {command[0]}: error: <stdout> (/dev/full): No space left on device")


def test_a_reader_that_goes_away_is_not_an_error(data: Path) -> None:
    # 300 JSON rows are more than a pipe holds: the command is still writing when the reader
    # leaves.
    proc = subprocess.Popen([sys.executable, "-m", "parallel_file_processor", "scan",
                             str(data), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "error:" not in err and "Exception ignored" not in err


@pytest.mark.parametrize("name", ["all.csv", "all.parquet", "all.jsonl"])
def test_aggregate_output_on_a_full_disk(data: Path, full_dir: Path, name: str) -> None:
    res = pfp("aggregate", str(data), "-o", str(full_dir / name))
    assert res.returncode == 1
    assert one_error_line(res) == (
        f"pfp aggregate: error: {full_dir / name}: No space left on device")
    assert sorted(os.listdir(full_dir)) == ["filler"]  # no temporary file left behind


def test_hash_manifest_on_a_full_disk(data: Path, full_dir: Path) -> None:
    res = pfp("hash", str(data), "--manifest", str(full_dir / "SUMS"), stdout=subprocess.DEVNULL)
    assert res.returncode == 1
    assert one_error_line(res) == (
        f"pfp hash: error: {full_dir / 'SUMS'}: No space left on device")
    assert sorted(os.listdir(full_dir)) == ["filler"]


def test_hash_cache_on_a_full_disk(data: Path, full_dir: Path) -> None:
    res = pfp("hash", str(data), "--cache", str(full_dir / "cache.sqlite"),
              stdout=subprocess.DEVNULL)
    assert res.returncode == 1
    line = one_error_line(res)
    assert line.startswith(f"pfp hash: error: hash cache {full_dir / 'cache.sqlite'} "), line
    assert "database or disk is full" in line


def test_job_outputs_on_a_full_disk(tmp_path: Path, data: Path, full_dir: Path) -> None:
    job = write(tmp_path / "job.yaml", f"scan: {{directory: {data}}}\n"
                                       f"output: {{results_csv: {full_dir / 'r.csv'}}}\n")
    res = pfp("run", str(job), "--no-progress", stdout=subprocess.DEVNULL)
    assert res.returncode == 1
    assert one_error_line(res) == f"pfp run: error: {full_dir / 'r.csv'}: No space left on device"


def test_log_file_that_cannot_be_opened_or_written(data: Path, tmp_path: Path) -> None:
    nowhere = write(tmp_path / "a-file", "x") / "pfp.log"
    res = pfp("scan", str(data), "--count", "--log-file", str(nowhere))
    assert res.returncode == 2 and res.stdout == ""  # nothing ran
    assert one_error_line(res) == f"pfp scan: error: {tmp_path / 'a-file'}: File exists"
    full = pfp("scan", str(data), "--count", "--log-file", "/dev/full", "-q")
    assert full.returncode == 1 and full.stdout.strip() == "300"
    assert one_error_line(full) == (
        "pfp scan: error: /dev/full: No space left on device (the log file)")


def test_missing_inputs_are_usage_errors(tmp_path: Path) -> None:
    for args, line in [
        (["hash", str(tmp_path / "nope")], f"pfp hash: error: not found: {tmp_path / 'nope'}"),
        (["verify", str(tmp_path / "SUMS")],
         f"pfp verify: error: {tmp_path / 'SUMS'}: No such file or directory"),
        (["process", str(tmp_path), "--func", "nosuchmodule:f"],
         "pfp process: error: nosuchmodule:f: cannot import module 'nosuchmodule' "
         "(ModuleNotFoundError: No module named 'nosuchmodule')"),
    ]:
        res = pfp(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert one_error_line(res) == line


def test_an_existing_output_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    out = write(tmp_path / "all.csv", "old\n")
    res = pfp("aggregate", str(data), "-o", str(out))
    assert res.returncode == 2
    assert one_error_line(res) == (
        f"pfp aggregate: error: {out} exists; pass overwrite=True to replace it")


def test_ctrl_c_is_one_line_and_130(data: Path, tmp_path: Path) -> None:
    import signal
    import time

    slow = write(tmp_path / "slow.py", "import time\ndef f(info):\n    time.sleep(0.05)\n"
                                       "    return 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "parallel_file_processor", "process",
                             str(data), "--func", f"{slow}:f", "-j", "2", "--log-file",
                             str(tmp_path / "run.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    line = one_error_line(res)
    assert re.fullmatch(r"pfp process: interrupted \(\d+ items finished, \d+ cancelled\)", line)
    assert line in (tmp_path / "run.log").read_text()
