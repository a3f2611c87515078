"""ResultAggregator (the seed's examples) and atomic, non-clobbering exports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from parallel_file_processor import (
    FileInfo,
    ParallelProcessor,
    ProcessingMode,
    ResultAggregator,
    TargetExistsError,
)
from parallel_file_processor.aggregate import atomic_writer


def stats(x: int) -> dict[str, object]:
    if x == 3:
        raise ValueError("three is bad")
    return {"item": x, "double": 2 * x, "_private": "hidden"}


@pytest.fixture
def batch():
    return ParallelProcessor(stats, ProcessingMode.SEQUENTIAL).process([1, 2, 3, 4])


def test_to_dataframe_has_seed_columns_and_flattened_results(batch) -> None:
    df = ResultAggregator(batch).to_dataframe()
    for col in ("file_path", "file_name", "file_size", "success", "duration_seconds", "error",
                "error_type", "attempts", "result_item", "result_double"):
        assert col in df.columns
    assert "result__private" not in df.columns
    assert df["success"].tolist() == [True, True, False, True]
    assert df.loc[2, "error_type"] == "ValueError" and df.loc[2, "error"] == "three is bad"
    assert batch.to_dataframe().equals(df)


def test_summary(batch) -> None:
    s = ResultAggregator(batch).summary()
    assert s["total_files"] == 4 and s["successful"] == 3 and s["failed"] == 1
    assert s["success_rate_pct"] == 75.0
    assert s["errors"] == ["three is bad"] and s["errors_by_type"] == {"ValueError": 1}
    assert s["throughput_files_per_s"] > 0 and s["peak_memory_mb"] > 0


def test_export_round_trips(batch, tmp_path: Path) -> None:
    agg = ResultAggregator(batch)
    csv_path = agg.export_csv(tmp_path / "r" / "results.csv")
    assert pd.read_csv(csv_path)["result_double"].dropna().tolist() == [2, 4, 8]
    summary = json.loads(agg.export_json(tmp_path / "summary.json").read_text())
    assert summary["failed"] == 1
    lines = (agg.export_jsonl(tmp_path / "results.jsonl")).read_text().splitlines()
    assert [json.loads(x)["success"] for x in lines] == [True, True, False, True]
    pq = pd.read_parquet(agg.export_parquet(tmp_path / "results.parquet"))
    assert pq["result_double"].dropna().tolist() == [2, 4, 8]
    errs = pd.read_csv(agg.export_errors_csv(tmp_path / "errors.csv"))
    assert errs["error_type"].tolist() == ["ValueError"]


def test_exports_replace_like_the_seed_or_refuse_when_asked(batch, tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("precious")
    with pytest.raises(TargetExistsError):
        ResultAggregator(batch).export_csv(target, overwrite=False)
    assert target.read_text() == "precious"
    ResultAggregator(batch).export_csv(target)  # the seed's call, re-run: replaced atomically
    assert target.read_text().startswith("file_path")


def test_failed_write_leaves_target_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_writer(target, overwrite=True) as f:
        f.write("half of the new conte")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_combine_dataframes_seed_example_3(tmp_path: Path) -> None:
    for i in range(3):
        pd.DataFrame({"Col A": [i], " Col B ": [i * 2]}).to_csv(tmp_path / f"{i}.csv",
                                                               index=False)

    def load_and_clean(file_info: FileInfo) -> pd.DataFrame:
        df = pd.read_csv(file_info.path)
        df.columns = [c.lower().strip().replace(" ", "_") for c in df.columns]
        df["_source"] = file_info.path.name
        return df

    from parallel_file_processor import FileProcessor, FileScanner

    result = FileProcessor(FileScanner(extensions={".csv"})).process_directory(tmp_path,
                                                                                load_and_clean)
    combined = ResultAggregator(result).combine_dataframes()
    assert len(combined) == 3 and list(combined.columns) == ["col_a", "col_b", "_source"]
    assert ResultAggregator(ParallelProcessor(str).process([1])).combine_dataframes().empty
