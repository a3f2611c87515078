"""Job files: validation before any work, and `pfp run` / `pfp process` / `pfp aggregate`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write
from parallel_file_processor import ConfigError
from parallel_file_processor.config import load_job, parse_job

REPO = Path(__file__).resolve().parents[1]


def pfp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_seed_config_shape_is_accepted(tmp_path: Path) -> None:
    cfg = parse_job({
        "scan": {"directory": "data/raw/", "recursive": True,
                 "include_patterns": ["*.csv", "*.xlsx"], "exclude_patterns": ["*_backup*"],
                 "extensions": [".csv", ".xlsx"],
                 "size_limits": {"min_bytes": 100, "max_bytes": 104857600}},
        "processing": {"mode": "thread_pool", "max_workers": 8, "batch_size": 100,
                       "timeout_seconds": 30},
        "output": {"results_csv": "r.csv", "summary_json": "s.json",
                   "combined_output": "c.csv"},
        "progress": {"enabled": True, "show_eta": True},
    }, tmp_path)
    assert cfg.directory == tmp_path / "data/raw/" and cfg.max_workers == 8
    assert cfg.min_bytes == 100 and cfg.results_csv == tmp_path / "r.csv"


@pytest.mark.parametrize("data, message", [
    ({"scan": {"directory": "d", "includ_patterns": ["*"]}}, "scan.includ_patterns: unknown key"),
    ({"scan": {"directory": "d"}, "processing": {"max_workers": "eight"}},
     "processing.max_workers: expected an integer >= 1, got 'eight'"),
    ({"scan": {"directory": "d"}, "processing": {"mode": "turbo"}}, "processing.mode"),
    ({"scan": {"directory": "d", "size_limits": {"min_bytes": -1}}}, "scan.size_limits.min_bytes"),
    ({"scan": {"recursive": True}}, "scan.directory: required"),
    ({"scan": {"directory": "d"}, "processing": {"processor": "nonsense"}},
     "processing.processor"),
    ({"scan": {"directory": "d"}, "extra": 1}, "extra: unknown key"),
    ([1, 2], "expected a mapping"),
])
def test_invalid_jobs_name_the_key(data, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_job(data)
    assert message in str(info.value)


def test_invalid_yaml(tmp_path: Path) -> None:
    job = write(tmp_path / "job.yaml", "scan: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_job(job)


def test_readme_example_job_runs_repeatedly(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(REPO / "examples", examples, ignore=shutil.ignore_patterns("output"))
    for _ in range(2):
        res = pfp("run", str(examples / "job.yaml"))
        assert res.returncode == 0, res.stderr
        assert "4 of 4 files processed" in res.stdout
    stats = pd.read_csv(examples / "output" / "csv_stats.csv")
    assert sorted(stats["result_rows"]) == [45, 50, 55, 60]
    summary = json.loads((examples / "output" / "summary.json").read_text())
    assert summary["successful"] == 4
    merged = pfp("run", str(examples / "merge.yaml"))
    assert merged.returncode == 0, merged.stderr
    combined = pd.read_csv(examples / "output" / "combined.csv")
    assert len(combined) == 210 and "discount" in combined.columns


def test_invalid_job_is_a_usage_error(tmp_path: Path) -> None:
    job = write(tmp_path / "job.yaml", "scan:\n  directory: x\n  recursiv: true\n")
    res = pfp("run", str(job))
    assert res.returncode == 2 and "scan.recursiv: unknown key" in res.stderr


def test_process_command_with_module_function(tmp_path: Path) -> None:
    write(tmp_path / "mods" / "myjob.py",
          "def count_lines(f):\n"
          "    if f.path.name == 'bad.txt':\n        raise ValueError('nope')\n"
          "    return {'lines': f.read_text().count(chr(10))}\n")
    write(tmp_path / "data" / "a.txt", "1\n2\n")
    write(tmp_path / "data" / "bad.txt", "x\n")
    res = pfp("process", str(tmp_path / "data"), "--func",
              str(tmp_path / "mods" / "myjob.py") + ":count_lines", "--csv", "--errors-csv",
              str(tmp_path / "errors.csv"))
    assert res.returncode == 1, res.stderr
    from io import StringIO

    df = pd.read_csv(StringIO(res.stdout))
    assert df.set_index("file_name").loc["a.txt", "result_lines"] == 2
    assert pd.read_csv(tmp_path / "errors.csv")["error_type"].tolist() == ["ValueError"]
    assert pfp("process", str(tmp_path / "data"), "--func", "nomodule").returncode == 2


def test_aggregate_command(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.csv", "x\n1\n")
    write(tmp_path / "in" / "b.csv", "x\n2\n3,4\n")
    out = tmp_path / "all.csv"
    res = pfp("aggregate", str(tmp_path / "in"), "-o", str(out), "--on-bad-lines", "skip")
    assert res.returncode == 0, res.stderr
    assert pd.read_csv(out)["x"].tolist() == [1, 2]
    assert "1 bad line(s) dropped" in res.stderr
    again = pfp("aggregate", str(tmp_path / "in"), "-o", str(out))
    assert again.returncode == 2 and "exists" in again.stderr


def test_builtin_hash_and_unzip_jobs(tmp_path: Path) -> None:
    import hashlib
    import zipfile

    zips = tmp_path / "drops"
    zips.mkdir()
    for i in range(3):
        with zipfile.ZipFile(zips / f"a{i}.zip", "w") as z:
            z.writestr("data.txt", "x" * (i + 1))
    (zips / "bad.zip").write_bytes(b"not a zip")
    (tmp_path / "unzip.yaml").write_text(
        "scan: {directory: drops/, extensions: ['.zip']}\n"
        "processing: {processor: unzip, options: {output_directory: out/}}\n"
        "output: {results_csv: r.csv, overwrite: true}\n")
    p = pfp("run", str(tmp_path / "unzip.yaml"))
    assert p.returncode == 1, p.stderr  # one archive failed, the others extracted
    assert "ArchiveError" in p.stdout + p.stderr
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == ["a0", "a1", "a2"]
    df = pd.read_csv(tmp_path / "r.csv")
    assert df["result_files_extracted"].sum() == 3 and (~df["success"]).sum() == 1

    (tmp_path / "hash.yaml").write_text(
        "scan: {directory: drops/}\n"
        "processing: {processor: hash, options: {algorithm: sha256, manifest: SUMS}}\n"
        "output: {results_csv: h.csv, overwrite: true}\n")
    p = pfp("run", str(tmp_path / "hash.yaml"))
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(tmp_path / "h.csv")
    want = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in zips.iterdir()}
    assert dict(zip(df["file_name"], df["result_digest"])) == want
    lines = (tmp_path / "SUMS").read_text().splitlines()
    assert sorted(lines) == sorted(f"{d}  {n}" for n, d in want.items())

    (tmp_path / "bad.yaml").write_text(
        "scan: {directory: drops/}\nprocessing: {processor: unzip}\n")
    p = pfp("run", str(tmp_path / "bad.yaml"))
    assert p.returncode == 2 and "processing.options.output_directory" in p.stdout + p.stderr
