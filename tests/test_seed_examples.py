"""The seed's four examples and its YAML, verbatim, run as a user runs them: scripts in a folder
of their own, each run twice (users re-run jobs)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import write

# The imports of the seed's Example 1; its later examples continue from them.
IMPORTS = '''
from parallel_file_processor import (
    FileScanner, FileProcessor, ProcessingMode,
    ProgressTracker, ResultAggregator
)
from pathlib import Path
import pandas as pd
'''

EXAMPLE_1 = IMPORTS + '''
# Define processing function
def process_csv(file_info):
    """Extract statistics from CSV file."""
    df = pd.read_csv(file_info.path)
    return {
        'rows': len(df),
        'columns': len(df.columns),
        'memory_mb': df.memory_usage(deep=True).sum() / 1e6,
        'numeric_columns': len(df.select_dtypes(include='number').columns)
    }

# Setup scanner and processor
scanner = FileScanner(extensions={'.csv'})
processor = FileProcessor(
    scanner=scanner,
    mode=ProcessingMode.THREAD_POOL,
    max_workers=8
)

# Create progress tracker
tracker = ProgressTracker(0, "Processing CSVs")
tracker.start()

# Process with progress
result = processor.process_directory(
    Path("data/raw/"),
    process_csv,
    progress_callback=tracker.update
)

tracker.finish()

# Aggregate results
aggregator = ResultAggregator(result)
print(f"\\nSummary: {aggregator.summary()}")
aggregator.export_csv(Path("data/results/csv_stats.csv"))
'''

EXAMPLE_2 = IMPORTS + '''
# Extract all ZIPs in parallel
processor = FileProcessor(mode=ProcessingMode.THREAD_POOL)

result = processor.extract_all_zips(
    directory=Path("data/archives/"),
    output_directory=Path("data/extracted/")
)

print(f"Extracted {result.successful} ZIP files")
print(f"Failed: {result.failed}")

# Get extraction details
aggregator = ResultAggregator(result)
df = aggregator.to_dataframe()
total_files = df['result_files_extracted'].sum()
print(f"Total files extracted: {total_files}")
'''

EXAMPLE_3 = IMPORTS + '''
# Aggregate CSV files with custom processing
def load_and_clean(file_info):
    """Load CSV and perform basic cleaning."""
    df = pd.read_csv(file_info.path)

    # Clean column names
    df.columns = [c.lower().strip().replace(' ', '_') for c in df.columns]

    # Add metadata
    df['_source'] = file_info.path.name
    df['_loaded_at'] = pd.Timestamp.now()

    return df

processor = FileProcessor(
    scanner=FileScanner(extensions={'.csv'}),
    mode=ProcessingMode.THREAD_POOL
)

result = processor.process_directory(
    Path("data/monthly_reports/"),
    load_and_clean
)

# Combine all DataFrames
aggregator = ResultAggregator(result)
combined_df = aggregator.combine_dataframes()

print(f"Combined {len(combined_df)} rows from {result.successful} files")
combined_df.to_csv("data/combined_reports.csv", index=False)
'''

EXAMPLE_4 = '''
from parallel_file_processor import ParallelProcessor, ProcessingMode

# Process list of items (not files)
items = list(range(1000))

def heavy_computation(item):
    """CPU-intensive calculation."""
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
'''

SEED_YAML = '''
# config/parallel_processing.yaml

scan:
  directory: "data/raw/"
  recursive: true

  include_patterns:
    - "*.csv"
    - "*.xlsx"

  exclude_patterns:
    - "*_backup*"
    - "~$*"

  extensions:
    - ".csv"
    - ".xlsx"

  size_limits:
    min_bytes: 100
    max_bytes: 104857600  # 100MB

processing:
  mode: thread_pool  # sequential, thread_pool, process_pool, async
  max_workers: 8
  batch_size: 100
  timeout_seconds: 30

output:
  results_csv: "data/results/processing_results.csv"
  summary_json: "data/results/summary.json"
  combined_output: "data/processed/combined.csv"

progress:
  enabled: true
  show_eta: true
'''


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True,
                         timeout=300)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    return res


def monthly_csvs(folder: Path, n: int = 4, rows: int = 30) -> None:
    for m in range(1, n + 1):
        lines = ["Region, Amount ,Units"] + [f"r{i % 3},{i * 1.5},{i}" for i in range(rows)]
        write(folder / f"2024-{m:02d}.csv", "\n".join(lines) + "\n")


def archive(path: Path, entries: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in entries.items():
            zf.writestr(name, text)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_example_1_process_csv_files(tmp_path: Path, how: str) -> None:
    monthly_csvs(tmp_path / "data" / "raw")
    write(tmp_path / "data" / "raw" / "notes.txt", "not a csv")
    write(tmp_path / "ex1.py", EXAMPLE_1)
    for _ in range(2):
        res = run(tmp_path, "ex1.py") if how == "file" else subprocess.run(
            [sys.executable, "-"], input=EXAMPLE_1, cwd=tmp_path, capture_output=True,
            text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "'total_files': 4" in res.stdout and "'successful': 4" in res.stdout
    stats = pd.read_csv(tmp_path / "data" / "results" / "csv_stats.csv")
    assert sorted(stats["result_rows"]) == [30] * 4 and set(stats["result_columns"]) == {3}


def test_example_2_zip_extraction_runs_twice(tmp_path: Path) -> None:
    for i in range(3):
        archive(tmp_path / "data" / "archives" / f"batch{i}.zip",
                {f"part{j}.txt": f"text {i} {j}" for j in range(i + 1)})
    write(tmp_path / "ex2.py", EXAMPLE_2)
    for _ in range(2):  # the second run refreshes the output instead of failing
        res = run(tmp_path, "ex2.py")
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Extracted 3 ZIP files" in res.stdout and "Failed: 0" in res.stdout
        assert "Total files extracted: 6" in res.stdout
    assert (tmp_path / "data" / "extracted" / "batch2" / "part2.txt").read_text() == "text 2 2"


def test_example_2_over_broken_archives(tmp_path: Path) -> None:
    write(tmp_path / "data" / "archives" / "truncated.zip", b"PK\x03\x04 not really")
    write(tmp_path / "data" / "archives" / "empty.zip", b"")
    write(tmp_path / "ex2.py", EXAMPLE_2)
    for _ in range(2):
        res = run(tmp_path, "ex2.py")
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Extracted 0 ZIP files" in res.stdout and "Failed: 2" in res.stdout
        assert "Total files extracted: 0" in res.stdout


def test_example_2_over_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "data" / "archives").mkdir(parents=True)
    write(tmp_path / "ex2.py", EXAMPLE_2)
    res = run(tmp_path, "ex2.py")
    assert res.returncode == 0 and "Total files extracted: 0" in res.stdout, res.stderr


def test_example_3_combines_dataframes(tmp_path: Path) -> None:
    monthly_csvs(tmp_path / "data" / "monthly_reports", n=3, rows=20)
    write(tmp_path / "ex3.py", EXAMPLE_3)
    for _ in range(2):
        res = run(tmp_path, "ex3.py")
        assert res.returncode == 0, res.stderr[-3000:]
        assert "Combined 60 rows from 3 files" in res.stdout
    combined = pd.read_csv(tmp_path / "data" / "combined_reports.csv")
    assert list(combined.columns[:3]) == ["region", "amount", "units"]
    assert len(combined) == 60 and combined["_source"].nunique() == 3


@pytest.mark.parametrize("how", ["file", "stdin", "-c"])
def test_example_4_process_pool_however_python_starts(tmp_path: Path, how: str) -> None:
    write(tmp_path / "ex4.py", EXAMPLE_4)
    for _ in range(2):
        if how == "file":
            res = run(tmp_path, "ex4.py")
        elif how == "-c":
            res = run(tmp_path, "-c", EXAMPLE_4)
        else:
            res = subprocess.run([sys.executable, "-"], input=EXAMPLE_4, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.count("Completed 1000/1000 items") == 1
        assert "Progress: 100.0%" in res.stdout


def test_seed_yaml_merges_the_scanned_tables(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "raw"
    monthly_csvs(raw, n=3, rows=25)
    write(raw / "2024-01_backup.csv", "Region, Amount ,Units\nx,1,1\n" * 10)  # excluded
    write(raw / "tiny.csv", "a\n1\n")  # under 100 bytes: left out
    write(tmp_path / "config" / "parallel_processing.yaml", SEED_YAML)
    for _ in range(2):
        res = run(tmp_path, "-m", "parallel_file_processor", "run",
                  "config/parallel_processing.yaml")
        assert res.returncode == 0, res.stderr[-3000:]
        assert "3 of 3 files processed" in res.stdout
    combined = pd.read_csv(tmp_path / "data" / "processed" / "combined.csv")
    assert len(combined) == 75 and combined["_source_file"].nunique() == 3
    results = pd.read_csv(tmp_path / "data" / "results" / "processing_results.csv")
    assert len(results) == 3 and results["success"].all()
    assert sorted(results["result_rows"]) == [25, 25, 25]
    summary = json.loads((tmp_path / "data" / "results" / "summary.json").read_text())
    assert summary["total_files"] == 3 and summary["successful"] == 3
