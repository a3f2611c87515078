"""What aggregation writes: never read back as an input of the same run, and created with the
permissions a plain ``open()`` would give (not mkstemp's 0600), atomically."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import unprivileged_prefix, write
from parallel_file_processor import aggregate

REPO = Path(__file__).resolve().parents[1]


def pfp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def months(folder: Path) -> None:
    for m in (1, 2):
        write(folder / f"2024-0{m}.csv", "k,v\n" + "".join(f"{i},{i * m}\n" for i in range(4)))


def test_rerunning_into_the_merged_folder_reads_no_output(tmp_path: Path) -> None:
    months(tmp_path / "m")
    for run in range(3):
        res = pfp("aggregate", "m", "-o", "m/all.csv", "--overwrite",
                  "--errors-csv", "m/errors.csv", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out = pd.read_csv(tmp_path / "m" / "all.csv")
        assert len(out) == 8, f"run {run + 1}"
        assert list(out.columns) == ["k", "v", "_source_file"]
        assert sorted(out["_source_file"].unique()) == ["2024-01.csv", "2024-02.csv"]
        if run:
            assert "all.csv: not read (it is this run's output)" in res.stderr
            assert "errors.csv: not read" in res.stderr


def test_outputs_given_relatively_or_through_links_are_not_inputs(tmp_path: Path) -> None:
    m = tmp_path / "m"
    months(m)
    out = m / "all.csv"
    aggregate(m, output_path=out)
    os.symlink(out, m / "link.csv")
    os.link(out, m / "hardlink.csv")
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        df = aggregate("m", output_path="m/../m/all.csv", overwrite=True)
    finally:
        os.chdir(cwd)
    report = df.attrs["report"]
    assert len(df) == 8 and report.files == 2
    assert sorted(report.skipped_outputs) == ["all.csv", "hardlink.csv", "link.csv"]
    # through a symlink to the output, explicitly listed
    df = aggregate([m / "2024-01.csv", m / "link.csv"], output_path=m / "all.csv",
                   overwrite=True)
    assert len(df) == 4 and df.attrs["report"].skipped_outputs == [str(m / "link.csv")]


def test_a_merged_file_given_as_input_fails_clearly(tmp_path: Path) -> None:
    months(tmp_path / "m")
    aggregate(tmp_path / "m", output_path=tmp_path / "merged.csv")
    df = aggregate([tmp_path / "m" / "2024-01.csv", tmp_path / "merged.csv"])
    [err] = df.attrs["report"].failed
    assert err.path.name == "merged.csv" and "_source_file" in err.message
    assert len(df) == 4


def test_job_outputs_inside_the_scanned_folder_are_not_read(tmp_path: Path) -> None:
    months(tmp_path / "data")
    write(tmp_path / "job.yaml", textwrap.dedent("""\
        scan:
          directory: data
          extensions: [".csv"]
        output:
          combined_output: data/combined.csv
          results_csv: data/results.csv
        """))
    for _ in range(3):
        res = pfp("run", "job.yaml", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert len(pd.read_csv(tmp_path / "data" / "combined.csv")) == 8
        assert len(pd.read_csv(tmp_path / "data" / "results.csv")) == 2


# --- modes -------------------------------------------------------------------------------------

WRITE_ALL = textwrap.dedent("""\
    import json, os, sys
    from pathlib import Path
    import pandas as pd
    from parallel_file_processor import BatchResult, ResultAggregator, aggregate
    from parallel_file_processor.hash import write_manifest
    os.umask(int(sys.argv[1], 8))
    d = Path(sys.argv[2])
    src = d / "src"
    agg = aggregate(src, output_path=d / "merged.csv", errors_path=d / "errors.csv",
                    overwrite=True)
    r = ResultAggregator(BatchResult())
    r.export_csv(d / "results.csv")
    r.export_json(d / "summary.json")
    r.export_parquet(d / "results.parquet")
    r.export_jsonl(d / "results.jsonl")
    write_manifest(sorted(src.glob("*.csv")), d / "SHA256SUMS", algorithm="sha256", base=src,
                   overwrite=True)
    print(json.dumps({p.name: os.stat(p).st_mode & 0o7777 for p in sorted(d.iterdir())
                      if p.is_file()}))
    """)

OUTPUTS = ["SHA256SUMS", "errors.csv", "merged.csv", "results.csv", "results.jsonl",
           "results.parquet", "summary.json"]


def write_all(folder: Path, umask: int) -> dict[str, int]:
    import json

    res = subprocess.run([sys.executable, "-c", WRITE_ALL, f"{umask:o}", str(folder)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077, 0o027, 0o000])
def test_new_outputs_get_the_mode_open_gives(tmp_path: Path, umask: int) -> None:
    months(tmp_path / "src")
    modes = write_all(tmp_path, umask)
    assert sorted(modes) == OUTPUTS
    assert modes == {name: 0o666 & ~umask for name in OUTPUTS}


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_replaced_outputs_keep_their_mode(tmp_path: Path, umask: int) -> None:
    months(tmp_path / "src")
    for name in OUTPUTS:
        write(tmp_path / name, b"old")
        os.chmod(tmp_path / name, 0o644 if name != "summary.json" else 0o640)
    modes = write_all(tmp_path, umask)
    assert modes == {name: 0o640 if name == "summary.json" else 0o644 for name in OUTPUTS}
    assert (tmp_path / "summary.json").read_text() != "old"


def test_writing_through_a_symlink_replaces_its_target(tmp_path: Path) -> None:
    months(tmp_path / "src")
    real = write(tmp_path / "real" / "merged.csv", b"old")
    os.chmod(real, 0o664)
    os.symlink(real, tmp_path / "merged.csv")
    aggregate(tmp_path / "src", output_path=tmp_path / "merged.csv", overwrite=True)
    assert (tmp_path / "merged.csv").is_symlink()
    assert len(pd.read_csv(real)) == 8 and stat.S_IMODE(os.stat(real).st_mode) == 0o664


def test_no_atomic_writer_of_its_own(tmp_path: Path) -> None:
    """Everything that writes outputs goes through output.atomic_writer."""
    pkg = REPO / "python" / "parallel_file_processor"
    users = [p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py")
             if "mkstemp" in p.read_text()]
    assert users == ["output.py"]




def unprivileged(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in sys.path if p and os.path.isdir(p))}
    return subprocess.run([*unprivileged_prefix(), sys.executable, "-c", code, *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_failed_write_leaves_the_old_file_intact(open_tmp: Path) -> None:
    src = open_tmp / "src"
    months(src)
    out_dir = open_tmp / "out"
    out = write(out_dir / "merged.csv", b"old,content\n")
    os.chmod(out, 0o666)
    for p in [src, *src.iterdir()]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(out_dir, 0o555)  # nobody may create the temporary file beside it
    code = textwrap.dedent("""\
        import sys
        from parallel_file_processor import aggregate
        try:
            aggregate(sys.argv[1], output_path=sys.argv[2], overwrite=True)
        except PermissionError as e:
            print("refused:", e)
        else:
            print("written")
        """)
    res = unprivileged(code, str(src), str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("refused:"), res.stdout
    assert out.read_bytes() == b"old,content\n"
    assert [p.name for p in out_dir.iterdir()] == ["merged.csv"]  # no temporary left
