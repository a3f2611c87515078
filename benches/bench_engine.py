#!/usr/bin/env python3
"""The processing engine against the scripts users write today.

1. 100,000 small files (the standard tree), function = read the file and return its length:
   the seed's pattern (ThreadPoolExecutor, submit everything, as_completed), a plain loop,
   concurrent.futures map over chunks, joblib (threads), and ParallelProcessor in thread mode
   with and without read-ahead.
2. CPU-bound: the seed's heavy_computation over 1,000 items: a plain loop,
   ProcessPoolExecutor.map with its best chunksize, ParallelProcessor in process mode.
3. async: 10,000 simulated 10 ms waits at concurrency 100, against the ideal n/c * 10 ms.

Each approach runs in its own interpreter; the time is that of the processing phase only
(the file list is built first, the same way for all).

usage: python benches/bench_engine.py [--repeat N] [--sections 1,2,3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_dir, py, run_timed, save, table  # noqa: E402

PRELUDE = r"""
import os, sys, time
from parallel_file_processor import FileScanner
files = FileScanner(sort=True).list_files(sys.argv[1])
def read_len(f):
    with open(f.path, 'rb') as fh:
        return len(fh.read())
"""

FILE_PEERS = {
    "seed pattern (submit all + as_completed)": r"""
from concurrent.futures import ThreadPoolExecutor, as_completed
t = time.perf_counter()
results = []
with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) * 2) as ex:
    futures = {ex.submit(read_len, f): f for f in files}
    for fut in as_completed(futures):
        results.append({'file': futures[fut].path.name, 'result': fut.result()})
print('ELAPSED', time.perf_counter() - t)
""",
    "plain sequential loop": r"""
t = time.perf_counter()
results = [read_len(f) for f in files]
print('ELAPSED', time.perf_counter() - t)
""",
    "concurrent.futures map over chunks": r"""
from concurrent.futures import ThreadPoolExecutor
def chunk_fn(chunk):
    return [read_len(f) for f in chunk]
t = time.perf_counter()
chunks = [files[i:i + 1000] for i in range(0, len(files), 1000)]
with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) * 2) as ex:
    results = [r for part in ex.map(chunk_fn, chunks) for r in part]
print('ELAPSED', time.perf_counter() - t)
""",
    "joblib Parallel (threads, auto batch)": r"""
from joblib import Parallel, delayed
t = time.perf_counter()
results = Parallel(n_jobs=(os.cpu_count() or 2) * 2, prefer='threads')(delayed(read_len)(f) for f in files)
print('ELAPSED', time.perf_counter() - t)
""",
    "pfp ParallelProcessor threads": r"""
from parallel_file_processor import ParallelProcessor
def fn(f):
    return len(f.read_bytes())
t = time.perf_counter()
result = ParallelProcessor(fn, 'thread_pool').process(files)
assert result.failed == 0
print('ELAPSED', time.perf_counter() - t)
""",
    "pfp ParallelProcessor threads + prefetch": r"""
from parallel_file_processor import ParallelProcessor
def fn(f):
    return len(f.read_bytes())
t = time.perf_counter()
result = ParallelProcessor(fn, 'thread_pool', prefetch=True).process(files)
assert result.failed == 0
print('ELAPSED', time.perf_counter() - t)
""",
}

CPU_PRELUDE = r"""
import math, os, sys, time
def heavy_computation(item):
    result = sum(math.sin(i * item) for i in range(10000))
    return {'item': item, 'result': result}
items = list(range(1000))
"""

CPU_PEERS = {
    "plain sequential loop": r"""
t = time.perf_counter()
results = [heavy_computation(i) for i in items]
print('ELAPSED', time.perf_counter() - t)
""",
    "ProcessPoolExecutor.map (best chunksize)": r"""
from concurrent.futures import ProcessPoolExecutor
best = None
for cs in (1, 8, 32, 125):
    t = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        results = list(ex.map(heavy_computation, items, chunksize=cs))
    e = time.perf_counter() - t
    best = e if best is None else min(best, e)
print('ELAPSED', best)
""",
    "pfp ParallelProcessor processes": r"""
from parallel_file_processor import ParallelProcessor
t = time.perf_counter()
result = ParallelProcessor(heavy_computation, 'process_pool').process(items)
assert result.failed == 0
print('ELAPSED', time.perf_counter() - t)
""",
}

ASYNC_PEERS = {
    "pfp ParallelProcessor async (c=100)": r"""
import asyncio, time
from parallel_file_processor import ParallelProcessor
async def wait(x):
    await asyncio.sleep(0.01)
    return x
t = time.perf_counter()
result = ParallelProcessor(wait, 'async', max_workers=100).process(range(10000))
assert result.successful == 10000
print('ELAPSED', time.perf_counter() - t)
""",
    "asyncio.gather in batches of 100 (seed 002)": r"""
import asyncio, time
async def wait(x):
    await asyncio.sleep(0.01)
    return x
async def main():
    out = []
    items = list(range(10000))
    for i in range(0, len(items), 100):
        out += await asyncio.gather(*(wait(x) for x in items[i:i + 100]), return_exceptions=True)
    return out
t = time.perf_counter()
asyncio.run(main())
print('ELAPSED', time.perf_counter() - t)
""",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sections", default="1,2,3")
    a = ap.parse_args()
    sections = {int(s) for s in a.sections.split(",")}
    out: dict[str, list] = {}
    text = []
    if 1 in sections:
        root = str(corpus_dir() / "tree")
        res = [run_timed(name, py(PRELUDE + code) + [root], repeat=a.repeat)
               for name, code in FILE_PEERS.items()]
        out["files"] = res
        text.append(table("Engine 1: read 100,000 small files, return their length", res,
                          "plain sequential loop"))
        seed = res[0].median
        text.append("\n".join(f"- {m.name}: {seed / m.median:.1f}x faster than the seed pattern"
                              for m in res[1:] if m.ok))
    if 2 in sections:
        res = [run_timed(name, py(CPU_PRELUDE + code), repeat=a.repeat)
               for name, code in CPU_PEERS.items()]
        out["cpu"] = res
        text.append(table("Engine 2: heavy_computation x 1,000 (CPU-bound)", res,
                          "ProcessPoolExecutor.map (best chunksize)"))
    if 3 in sections:
        res = [run_timed(name, py(code), repeat=a.repeat) for name, code in ASYNC_PEERS.items()]
        out["async"] = res
        text.append(table("Engine 3: 10,000 x 10 ms waits, concurrency 100 (ideal 1.00 s)", res,
                          "pfp ParallelProcessor async (c=100)"))
    save("engine", out, "\n\n".join(text))


if __name__ == "__main__":
    main()
