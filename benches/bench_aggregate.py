#!/usr/bin/env python3
"""Merging tables into one DataFrame: CSV files and spreadsheets.

csv: 200 CSV files x 20,000 rows (the standard corpus). Peers side by side, each in its own
interpreter, timed from the first read to the finished frame, with peak memory: the seed's
pattern (pandas.read_csv on threads, then pd.concat), polars.read_csv on the glob (to a polars
frame), pyarrow threaded reads + to_pandas, duckdb to pandas, and aggregate_csv.

excel: a dozen .xlsx workbooks x 5,000 rows x 8 columns (ints, floats, text, dates, booleans,
gaps), generated here once. Whole processes are timed (start-up and imports included), with
peak memory: pandas.read_excel with openpyxl (the seed's threads + concat), polars.read_excel
with its calamine engine (when polars and fastexcel are installed), and pfp aggregate.

usage: python benches/bench_aggregate.py [--repeat N] [--only csv|excel]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HERE, corpus_dir, py, run, run_timed, save, table  # noqa: E402

PRELUDE = "import glob, os, sys, time\nroot = sys.argv[1]\n"

PEERS = {
    "seed style (pandas + threads + concat)": r"""
import pandas as pd
from concurrent.futures import ThreadPoolExecutor
t = time.perf_counter()
files = sorted(glob.glob(os.path.join(root, '*.csv')))
def read(p):
    df = pd.read_csv(p)
    df['_source_file'] = os.path.basename(p)
    return df
with ThreadPoolExecutor(max_workers=8) as ex:
    dfs = list(ex.map(read, files))
df = pd.concat(dfs, ignore_index=True)
print('ELAPSED', time.perf_counter() - t, len(df))
""",
    "polars.read_csv glob (polars frame)": r"""
import polars as pl
t = time.perf_counter()
df = pl.read_csv(os.path.join(root, '*.csv'))
print('ELAPSED', time.perf_counter() - t, len(df))
""",
    "pyarrow threaded reads + to_pandas": r"""
import pyarrow as pa, pyarrow.csv as pacsv
from concurrent.futures import ThreadPoolExecutor
t = time.perf_counter()
files = sorted(glob.glob(os.path.join(root, '*.csv')))
with ThreadPoolExecutor(max_workers=4) as ex:
    tables = list(ex.map(pacsv.read_csv, files))
df = pa.concat_tables(tables).to_pandas()
print('ELAPSED', time.perf_counter() - t, len(df))
""",
    "duckdb read_csv union_by_name -> pandas": r"""
import duckdb
t = time.perf_counter()
df = duckdb.sql(f"select * from read_csv_auto('{root}/*.csv', union_by_name=true, filename=true)").df()
print('ELAPSED', time.perf_counter() - t, len(df))
""",
    "pfp aggregate_csv": r"""
from parallel_file_processor import aggregate_csv
t = time.perf_counter()
df = aggregate_csv(root)
print('ELAPSED', time.perf_counter() - t, len(df))
""",
}


EXCEL_PEERS = {
    "pandas.read_excel (openpyxl) + threads + concat": r"""
import pandas as pd
from concurrent.futures import ThreadPoolExecutor
files = sorted(glob.glob(os.path.join(root, '*.xlsx')))
def read(p):
    df = pd.read_excel(p, engine='openpyxl')
    df['_source_file'] = os.path.basename(p)
    return df
with ThreadPoolExecutor(max_workers=8) as ex:
    dfs = list(ex.map(read, files))
df = pd.concat(dfs, ignore_index=True)
assert len(df) == int(sys.argv[2]), len(df)
""",
    "polars.read_excel (calamine) + concat (polars frame)": r"""
import polars as pl
files = sorted(glob.glob(os.path.join(root, '*.xlsx')))
df = pl.concat([pl.read_excel(p, engine='calamine') for p in files], how='diagonal_relaxed')
assert len(df) == int(sys.argv[2]), len(df)
""",
    "pfp aggregate": r"""
from parallel_file_processor import aggregate
df = aggregate(root)
assert len(df) == int(sys.argv[2]), len(df)
""",
}

N_BOOKS, N_ROWS = 12, 5000


def excel_corpus() -> Path:
    """A dozen generated workbooks (``PFP_BENCH_CORPUS``/xlsx or benches/.corpus/xlsx)."""
    import datetime as dt
    import os
    import random

    base = Path(os.environ.get("PFP_BENCH_CORPUS", HERE / ".corpus"))
    dest = base / "xlsx"
    if (dest / ".complete").exists():
        return dest
    import openpyxl

    print(f"generating {N_BOOKS} workbooks in {dest} (once)...", file=sys.stderr)
    dest.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    regions = ["north", "south", "east", "west", "centre"]
    start = dt.datetime(2023, 1, 1)
    for b in range(N_BOOKS):
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("data")
        ws.append(["id", "when", "region", "product", "amount", "qty", "paid", "note"])
        for i in range(N_ROWS):
            ws.append([
                b * N_ROWS + i,
                start + dt.timedelta(minutes=rnd.randrange(1_000_000)),
                rnd.choice(regions),
                f"product-{rnd.randrange(500):03d}",
                round(rnd.uniform(0, 10_000), 2),
                rnd.randrange(1, 100),
                rnd.random() < 0.7,
                None if rnd.random() < 0.8 else f"note {rnd.randrange(100)}",
            ])
        wb.save(dest / f"book{b:02d}.xlsx")
    (dest / ".complete").write_text("ok\n")
    return dest


def bench_csv(repeat: int) -> None:
    root = str(corpus_dir() / "csv")
    results = [run_timed(name, py(PRELUDE + code) + [root], repeat=repeat)
               for name, code in PEERS.items()]
    text = table("Aggregate: 200 CSV x 20,000 rows into one DataFrame", results,
                 "polars.read_csv glob (polars frame)")
    seed = results[0]
    ours = results[-1]
    if seed.ok and ours.ok:
        text += (f"\n\naggregate_csv is {seed.median / ours.median:.2f}x faster than the seed "
                 f"style and peaks at {ours.peak_rss_mb:.0f} MiB vs {seed.peak_rss_mb:.0f} MiB.")
    save("aggregate", {"aggregate": results}, text)


def bench_excel(repeat: int) -> None:
    import importlib.util

    root = str(excel_corpus())
    rows = str(N_BOOKS * N_ROWS)
    results = []
    for name, code in EXCEL_PEERS.items():
        if "polars" in name and not all(importlib.util.find_spec(m) for m in ("polars",
                                                                             "fastexcel")):
            print(f"  {name}: skipped (polars or fastexcel not installed)", file=sys.stderr)
            continue
        results.append(run(name, py(PRELUDE + code) + [root, rows], repeat=repeat))
    baseline = next(iter(EXCEL_PEERS))
    text = table(f"Aggregate: {N_BOOKS} .xlsx x {N_ROWS:,} rows into one DataFrame "
                 "(whole process)", results, baseline)
    seed, ours = results[0], results[-1]
    if seed.ok and ours.ok:
        text += (f"\n\npfp aggregate is {seed.median / ours.median:.1f}x faster than pandas + "
                 f"openpyxl and peaks at {ours.peak_rss_mb:.0f} MiB vs "
                 f"{seed.peak_rss_mb:.0f} MiB.")
        polars = [r for r in results if "polars" in r.name and r.ok]
        if polars:
            text += (f" polars + calamine (a polars frame, not pandas) takes "
                     f"{polars[0].median / ours.median:.2f}x pfp's time.")
    save("aggregate_excel", {"aggregate_excel": results}, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["csv", "excel"], default=None)
    a = ap.parse_args()
    if a.only in (None, "csv"):
        bench_csv(a.repeat)
    if a.only in (None, "excel"):
        bench_excel(a.repeat)


if __name__ == "__main__":
    main()
