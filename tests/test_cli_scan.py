"""`pfp scan` as users run it: a subprocess, exit codes, output formats."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path


def pfp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True, timeout=120)


def test_scan_table_json_and_csv(tree: Path) -> None:
    table = pfp("scan", str(tree), "-e", "csv", "--sort")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:2] == ["path", "relative_path"]
    assert "sub/c.csv" in table.stdout

    js = pfp("scan", str(tree), "-e", "csv", "--json")
    rows = [json.loads(line) for line in js.stdout.splitlines()]
    assert {r["relative_path"] for r in rows} == {
        "a.csv", "B.CSV", ".hidden.csv", "sub/c.csv", "sub/deep/d.csv", "build/x_backup.csv"}
    assert {r["size_bytes"] for r in rows if r["relative_path"] == "sub/c.csv"} == {300}

    cs = pfp("scan", str(tree), "--csv", "-H", "-E", "build", "--min-size", "100")
    got = list(csv.DictReader(io.StringIO(cs.stdout)))
    assert {r["relative_path"] for r in got} == {"B.CSV", "sub/c.csv"}


def test_scan_count_and_paths(tree: Path) -> None:
    assert pfp("scan", str(tree), "--count").stdout.strip() == "8"
    paths = pfp("scan", str(tree), "--paths", "-i", "*.json").stdout.split()
    assert paths == [str(tree / "sub" / "deep" / "e.json")]


def test_exit_codes(tree: Path, tmp_path: Path) -> None:
    assert pfp("scan", str(tmp_path / "missing")).returncode == 2
    assert pfp("scan", str(tree), "--min-size", "lots").returncode == 2
    assert pfp("scan").returncode == 2
    os.symlink(tree / "nowhere", tree / "broken")
    res = pfp("scan", str(tree))
    assert res.returncode == 1, "some entries could not be read"
    assert "broken" in res.stderr


def test_pfp_entry_point_is_installed(tree: Path) -> None:
    exe = Path(sys.executable).with_name("pfp")
    res = subprocess.run([str(exe), "scan", str(tree), "--count"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "8"


def test_native_rows_match_what_the_python_writer_prints(tree: Path) -> None:
    # The rows `pfp scan` writes natively equal the DataFrame rows written by the shared writer.
    import pandas as pd
    from parallel_file_processor import scan_frame
    from parallel_file_processor.commands._output import write_frame

    df = scan_frame(tree, sort=True)
    for flag, fmt in (([], "table"), (["--json"], "json"), (["--csv"], "csv")):
        expected = io.StringIO()
        write_frame(df, fmt, expected)
        got = pfp("scan", str(tree), "--sort", *flag)
        assert got.returncode == 0, got.stderr
        if fmt == "json":
            assert [json.loads(x) for x in got.stdout.splitlines()] == [
                json.loads(x) for x in expected.getvalue().splitlines()]
        else:
            assert got.stdout == expected.getvalue(), fmt
    paths = pfp("scan", str(tree), "--sort", "--paths").stdout.splitlines()
    assert paths == list(pd.Series(df["path"]).astype(str))


def test_paths_are_written_as_the_bytes_the_file_system_holds(tmp_path: Path) -> None:
    name = b"caf\xe9.txt"  # latin-1, not UTF-8
    (tmp_path / os.fsdecode(name)).write_text("x")
    res = subprocess.run([sys.executable, "-m", "parallel_file_processor", "scan",
                          str(tmp_path), "--paths"], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout == os.fsencode(tmp_path) + b"/" + name + b"\n"


def test_a_closed_pipe_ends_the_scan_quietly(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"f{i}.txt").write_text("x")
    proc = subprocess.run(
        f"{sys.executable} -m parallel_file_processor scan {tmp_path} --paths | head -n 1",
        shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr
