"""Merging tabular files: equal to pandas' own result, explicit policies, nothing lost silently."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import write
from parallel_file_processor import FileProcessor, SchemaError, aggregate, aggregate_csv


def frame(**cols: list) -> pd.DataFrame:
    return pd.DataFrame(cols)


@pytest.fixture
def same_shape(tmp_path: Path) -> Path:
    d = tmp_path / "csv"
    d.mkdir()
    for i in range(6):
        frame(id=list(range(i * 10, i * 10 + 10)), name=[f"n{j}" for j in range(10)],
              value=[j / 3 for j in range(10)]).to_csv(d / f"part{i}.csv", index=False)
    return d


def test_equals_pandas_concat(same_shape: Path) -> None:
    ours = aggregate(same_shape)
    files = sorted(same_shape.glob("*.csv"))
    ref = pd.concat([pd.read_csv(f).assign(_source_file=f.name) for f in files],
                    ignore_index=True)
    ours = ours.sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours.drop(columns="_source_file"),
                                  ref.drop(columns="_source_file"), check_dtype=False)
    assert list(ours["_source_file"].astype(str)) == list(ref["_source_file"])
    assert ours.attrs["report"].rows == 60 and not ours.attrs["report"].failed


def test_seed_aggregate_csv_and_file_processor(same_shape: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "combined.csv"
    combined = FileProcessor().aggregate_csv(same_shape, output_path=out)
    assert len(combined) == 60 and "_source_file" in combined.columns
    assert len(pd.read_csv(out)) == 60
    assert len(aggregate_csv(same_shape)) == 60


def test_mixed_headers_union_is_stable(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "x,y\n1,2\n")
    write(tmp_path / "b.csv", "y,z\n3,4\n")
    df = aggregate(tmp_path)
    assert list(df.columns) == ["x", "y", "z", "_source_file"]
    assert df["y"].tolist() == [2, 3]
    assert pd.isna(df.loc[1, "x"]) and pd.isna(df.loc[0, "z"])
    report = df.attrs["report"]
    assert report.missing_columns == {"a.csv": ["z"], "b.csv": ["x"]}


def test_strict_and_first_schemas(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "x,y\n1,2\n")
    write(tmp_path / "b.csv", "x,y,extra\n3,4,5\n")
    with pytest.raises(SchemaError, match="b.csv"):
        aggregate(tmp_path, schema="strict")
    df = aggregate(tmp_path, schema="first")
    assert list(df.columns) == ["x", "y", "_source_file"]
    assert df.attrs["report"].dropped_columns == {"b.csv": ["extra"]}


def test_dtype_conflicts(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "v,w\n1,1\n2,2\n")
    write(tmp_path / "b.csv", "v,w\n1.5,hello\n")
    promoted = aggregate(tmp_path)
    assert str(promoted["v"].dtype) == "float64"
    assert promoted["w"].tolist() == ["1", "2", "hello"], "unpromotable -> strings"
    assert promoted.attrs["report"].type_changes == {"a.csv": ["v", "w"], "b.csv": []} or \
        "a.csv" in promoted.attrs["report"].type_changes
    as_string = aggregate(tmp_path, dtype_conflict="string")
    assert as_string["v"].tolist() == ["1", "2", "1.5"]
    with pytest.raises(SchemaError, match="w"):
        aggregate(tmp_path, dtype_conflict="error")


def test_bad_lines_policies(tmp_path: Path) -> None:
    write(tmp_path / "good.csv", "a,b\n1,2\n")
    write(tmp_path / "ragged.csv", "a,b\n3,4\n5,6,7\n8,9\n")
    df = aggregate(tmp_path)  # "error": the file fails, the others are kept
    assert df["a"].tolist() == [1]
    [failed] = df.attrs["report"].failed
    assert failed.path.name == "ragged.csv" and "Expected 2 columns" in failed.message
    skipped = aggregate(tmp_path, on_bad_lines="skip")
    assert sorted(skipped["a"]) == [1, 3, 8]
    assert skipped.attrs["report"].lost_rows == {"ragged.csv": 1}
    collected = aggregate(tmp_path, on_bad_lines="collect")
    assert collected.attrs["report"].bad_lines == [("ragged.csv", "5,6,7")]


def test_empty_and_non_utf8_files_are_reported_not_fatal(tmp_path: Path) -> None:
    write(tmp_path / "empty.csv", b"")
    write(tmp_path / "latin1.csv", "name\ncaf\xe9\n".encode("latin-1"))
    write(tmp_path / "ok.csv", "name\nfine\n")
    errors = tmp_path / "errors.csv"
    df = aggregate(tmp_path, errors_path=errors)
    report = df.attrs["report"]
    assert df["name"].tolist() == ["fine"]
    assert report.empty_files == ["empty.csv"]
    assert [e.path.name for e in report.failed] == ["latin1.csv"]
    assert pd.read_csv(errors)["path"].str.endswith("latin1.csv").all()
    # With the right encoding it reads.
    fixed = aggregate([tmp_path / "latin1.csv"], encoding="latin-1")
    assert fixed["name"].tolist() == ["café"]


def test_pandas_only_options_fall_back_to_pandas(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "# comment\nx,y\n1,2\n")
    df = aggregate(tmp_path, comment="#")
    assert df["x"].tolist() == [1]


def test_other_formats_and_outputs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    frame(a=[1, 2]).to_parquet(src / "one.parquet")
    write(src / "two.jsonl", '{"a": 3}\n{"a": 4}\n')
    write(src / "three.tsv", "a\n5\n")
    out = tmp_path / "all.parquet"
    df = aggregate(src, output_path=out)
    assert sorted(df["a"]) == [1, 2, 3, 4, 5]
    assert sorted(pd.read_parquet(out)["a"]) == [1, 2, 3, 4, 5]
    with pytest.raises(FileExistsError):
        aggregate(src, output_path=out)


def test_large_file_and_memory(tmp_path: Path) -> None:
    n = 300_000
    with open(tmp_path / "big.csv", "w") as f:
        f.write("i,s\n")
        f.writelines(f"{i},row{i}\n" for i in range(n))
    df = aggregate(tmp_path)
    assert len(df) == n and df["i"].iloc[-1] == n - 1


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="schema"):
        aggregate(tmp_path, schema="loose")
    with pytest.raises(FileNotFoundError):
        aggregate(tmp_path / "missing.csv")


def test_unreadable_file_as_unprivileged_user(tmp_path: Path) -> None:
    import tempfile

    from conftest import run_unprivileged

    base = Path(tempfile.mkdtemp(prefix="pfp-agg-"))
    try:
        os.chmod(base, 0o755)
        write(base / "ok.csv", "a\n1\n")
        write(base / "secret.csv", "a\n2\n")
        os.chmod(base / "ok.csv", 0o644)
        os.chmod(base / "secret.csv", 0o000)

        def run() -> tuple[list[int], list[str]]:
            df = aggregate(base)
            return df["a"].tolist(), [e.error_type for e in df.attrs["report"].failed]

        values, errors = run_unprivileged(run)
        assert values == [1] and len(errors) == 1
    finally:
        import shutil

        shutil.rmtree(base)
