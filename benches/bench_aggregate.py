#!/usr/bin/env python3
"""Merging 200 CSV files x 20,000 rows (the standard corpus) into one DataFrame.

Peers side by side, each in its own interpreter, timed from the first read to the finished
frame, with peak memory: the seed's pattern (pandas.read_csv on threads, then pd.concat),
polars.read_csv on the glob (to a polars frame), pyarrow threaded reads + to_pandas, duckdb to
pandas, and aggregate_csv.

usage: python benches/bench_aggregate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_dir, py, run_timed, save, table  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    root = str(corpus_dir() / "csv")
    results = [run_timed(name, py(PRELUDE + code) + [root], repeat=a.repeat)
               for name, code in PEERS.items()]
    text = table("Aggregate: 200 CSV x 20,000 rows into one DataFrame", results,
                 "polars.read_csv glob (polars frame)")
    seed = results[0]
    ours = results[-1]
    if seed.ok and ours.ok:
        text += (f"\n\naggregate_csv is {seed.median / ours.median:.2f}x faster than the seed "
                 f"style and peaks at {ours.peak_rss_mb:.0f} MiB vs {seed.peak_rss_mb:.0f} MiB.")
    save("aggregate", {"aggregate": results}, text)


if __name__ == "__main__":
    main()
