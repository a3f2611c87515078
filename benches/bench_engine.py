#!/usr/bin/env python3
"""The processing engine against the scripts users write today, whole process each.

Every approach is the script a user would write, timed from ``python script.py`` to its exit
(the listing of the folder included), alternating runs, medians of ``--repeat``, peak memory:

1. the 100,000-file standard tree, the function opens the file and returns its length: an
   ``os.walk`` loop, the seed's pattern (list the files, ThreadPoolExecutor, submit all,
   as_completed), and ``FileProcessor(mode=THREAD_POOL).process_directory`` (``fi.path``
   opened; and with ``prefetch=True`` and ``fi.read_bytes()``); plus how soon the user's
   function is first called after ``process_directory`` is;
2. CPU-bound: the seed's heavy_computation over 1,000 items: a plain loop,
   ProcessPoolExecutor.map with its best chunk size, ParallelProcessor in process mode;
3. async: 10,000 simulated 10 ms waits at concurrency 100: asyncio.gather in batches of 100
   (seed 002), ParallelProcessor in async mode (ideal: 1.00 s plus start-up).

usage: python benches/bench_engine.py [--repeat N] [--sections 1,2,3] [--no-cold]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Peer,
    compare,
    corpus_dir,
    drop_caches,
    find,
    goal_line,
    save,
    table,
)

OS_WALK = r"""
import os, sys
out = []
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(d, f), 'rb') as fh:
            out.append(len(fh.read()))
print(len(out))
"""

SEED = r"""
import os, sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
def read_len(p):
    with open(p, 'rb') as fh:
        return len(fh.read())
files = [p for p in Path(sys.argv[1]).rglob('*') if p.is_file()]
results = []
with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) * 2) as ex:
    futures = {ex.submit(read_len, f): f for f in files}
    for fut in as_completed(futures):
        results.append({'file': futures[fut].name, 'result': fut.result()})
print(len(results))
"""

PFP_OPEN = r"""
import sys
from parallel_file_processor import FileProcessor, ProcessingMode
def fn(fi):
    with open(fi.path, 'rb') as fh:
        return len(fh.read())
result = FileProcessor(mode=ProcessingMode.THREAD_POOL).process_directory(sys.argv[1], fn)
assert result.failed == 0
print(result.successful)
"""

PFP_PREFETCH = r"""
import sys
from parallel_file_processor import FileProcessor, ProcessingMode
def fn(fi):
    return len(fi.read_bytes())
result = FileProcessor(mode=ProcessingMode.THREAD_POOL, prefetch=True).process_directory(
    sys.argv[1], fn)
assert result.failed == 0
print(result.successful)
"""

FIRST_CALL = r"""
import sys, time
from parallel_file_processor import FileProcessor, ProcessingMode
first = []
def fn(fi):
    if not first:
        first.append(time.perf_counter())
    with open(fi.path, 'rb') as fh:
        return len(fh.read())
t = time.perf_counter()
FileProcessor(mode=ProcessingMode.THREAD_POOL).process_directory(sys.argv[1], fn)
end = time.perf_counter()
print('FIRST', first[0] - t, 'TOTAL', end - t)
"""

CPU_PRELUDE = r"""
import math, os
def heavy_computation(item):
    result = sum(math.sin(i * item) for i in range(10000))
    return {'item': item, 'result': result}
items = list(range(1000))
"""

CPU = {
    "plain sequential loop": "results = [heavy_computation(i) for i in items]",
    "ProcessPoolExecutor.map, chunksize 32": r"""
from concurrent.futures import ProcessPoolExecutor
if __name__ == '__main__':
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        results = list(ex.map(heavy_computation, items, chunksize=32))
""",
    "ProcessPoolExecutor.map, chunksize 125": r"""
from concurrent.futures import ProcessPoolExecutor
if __name__ == '__main__':
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        results = list(ex.map(heavy_computation, items, chunksize=125))
""",
    "pfp ParallelProcessor processes": r"""
from parallel_file_processor import ParallelProcessor
result = ParallelProcessor(heavy_computation, 'process_pool').process(items)
assert result.failed == 0
""",
}

ASYNC = {
    "asyncio.gather in batches of 100 (seed 002)": r"""
import asyncio
async def wait(x):
    await asyncio.sleep(0.01)
    return x
async def main():
    out = []
    items = list(range(10000))
    for i in range(0, len(items), 100):
        out += await asyncio.gather(*(wait(x) for x in items[i:i + 100]), return_exceptions=True)
    return out
asyncio.run(main())
""",
    "pfp ParallelProcessor async (c=100)": r"""
import asyncio
from parallel_file_processor import ParallelProcessor
async def wait(x):
    await asyncio.sleep(0.01)
    return x
result = ParallelProcessor(wait, 'async', max_workers=100).process(range(10000))
assert result.successful == 10000
""",
}


def script(tmp: Path, name: str, code: str) -> list[str]:
    """Peers run as script files (``python script.py``), as users run them; process mode
    needs a real ``__main__`` file for the standard library's pool."""
    path = tmp / (name.replace(" ", "_").replace("/", "_").replace(",", "") + ".py")
    path.write_text(code)
    return [sys.executable, str(path)]


def files_peers(tmp: Path, tree: str) -> list[Peer]:
    return [Peer("os.walk loop", script(tmp, "walk", OS_WALK) + [tree]),
            Peer("seed pattern (rglob, submit all, as_completed)",
                 script(tmp, "seed", SEED) + [tree]),
            Peer("pfp process_directory threads", script(tmp, "pfp_open", PFP_OPEN) + [tree]),
            Peer("pfp process_directory threads + prefetch",
                 script(tmp, "pfp_prefetch", PFP_PREFETCH) + [tree])]


def first_call(tmp: Path, tree: str, repeat: int) -> tuple[float, float]:
    """Median seconds from the call to process_directory to the first call of the function,
    and to its return."""
    argv = script(tmp, "first", FIRST_CALL) + [tree]
    firsts, totals = [], []
    for _ in range(repeat):
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
        firsts.append(float(out[out.index("FIRST") + 1]))
        totals.append(float(out[out.index("TOTAL") + 1]))
    return statistics.median(firsts), statistics.median(totals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sections", default="1,2,3")
    ap.add_argument("--no-cold", action="store_true")
    a = ap.parse_args()
    wanted = {int(s) for s in a.sections.split(",")}
    tmp = Path(__file__).resolve().parent / ".scripts"
    tmp.mkdir(exist_ok=True)
    out: dict[str, list] = {}
    text = []
    if 1 in wanted:
        tree = str(corpus_dir() / "tree")
        out["files"] = res = compare(files_peers(tmp, tree), repeat=a.repeat)
        text.append(table("Engine 1: open and read 100,000 small files, return their length "
                          "(listing included)", res, "os.walk loop"))
        walk = find("os.walk loop", res)
        first, total = first_call(tmp, tree, a.repeat)
        verdict = "met" if first <= 0.05 else "**missed**"
        text.append("\n".join([
            goal_line("process_directory (threads) vs the os.walk loop",
                      find("pfp process_directory threads", res), walk, at_least_faster=1.3),
            goal_line("with prefetch=True and read_bytes()",
                      find("pfp process_directory threads + prefetch", res), walk,
                      at_least_faster=2.5),
            goal_line("process_directory vs the seed's pattern",
                      find("pfp process_directory threads", res),
                      find("seed pattern (rglob, submit all, as_completed)", res),
                      at_least_faster=1),
            f"- first call of the function {first * 1000:.0f} ms after process_directory is "
            f"called, of {total:.2f} s (goal within 50 ms: {verdict})"]))
        if not a.no_cold and drop_caches():
            peers = [p for p in files_peers(tmp, tree) if not p.name.startswith("seed")]
            out["files_cold"] = res = compare(peers, repeat=3, cold=True)
            text.append(table("Engine 1, cold page cache (dropped before every run)", res,
                              "os.walk loop"))
    if 2 in wanted:
        peers = [Peer(name, script(tmp, f"cpu_{i}", CPU_PRELUDE + code))
                 for i, (name, code) in enumerate(CPU.items())]
        out["cpu"] = res = compare(peers, repeat=a.repeat)
        text.append(table("Engine 2: heavy_computation x 1,000 (CPU-bound)", res,
                          "ProcessPoolExecutor.map, chunksize 32"))
    if 3 in wanted:
        peers = [Peer(name, script(tmp, f"async_{i}", code))
                 for i, (name, code) in enumerate(ASYNC.items())]
        out["async"] = res = compare(peers, repeat=a.repeat)
        text.append(table("Engine 3: 10,000 x 10 ms waits, concurrency 100 (ideal 1.00 s + "
                          "start-up)", res, "asyncio.gather in batches of 100 (seed 002)"))
    save("engine", out, "\n\n".join(text))


if __name__ == "__main__":
    main()
