#!/usr/bin/env python3
"""What going distributed costs: the same jobs locally and on a 2-worker Dask LocalCluster.

1. hash: the 100,000-file tree (blake3), ``hash_files(tree)`` against
   ``hash_files(tree, client=client)``. Goal: the cluster run within 1.3x the local one.
2. engine: 100,000 FileInfo items, a small Python function (read the file, return its length):
   ``ParallelProcessor`` in thread and process mode against ``executor=client``.
3. shard profile: where the cluster's time goes (listing on a worker, per-task round trip,
   worker-side seconds per file), and from it a paper estimate of throughput at 10 and 100
   workers.

Each peer runs in its own interpreter; the cluster is started before the clock starts (its
start-up is reported apart). Times are of the job only.

usage: python benches/bench_dask.py [--repeat N] [--sections 1,2,3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Measurement, corpus_dir, py, run_timed, save, table  # noqa: E402

CLUSTER = r"""
import os, sys, time
from distributed import Client, LocalCluster
if __name__ == '__main__':
    t = time.perf_counter()
    cluster = LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                           dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(2)
    # a long-lived cluster has the package imported on its workers already
    for module in ('parallel_file_processor.runners.dask', 'parallel_file_processor.job',
                   'parallel_file_processor.hash'):
        client.run(__import__, module)
    print('STARTUP', time.perf_counter() - t, file=sys.stderr)
"""

HASH_PEERS = {
    "pfp hash_files local": r"""
import sys, time
from parallel_file_processor import hash_files
t = time.perf_counter()
res = hash_files(sys.argv[1])
assert len(res) >= 100_000 and not any(r.error for r in res)
print('ELAPSED', time.perf_counter() - t)
""",
    "pfp hash_files on 2-worker LocalCluster": CLUSTER + r"""
    from parallel_file_processor import hash_files
    t = time.perf_counter()
    res = hash_files(sys.argv[1], client=client)
    assert len(res) >= 100_000 and not any(r.error for r in res)
    print('ELAPSED', time.perf_counter() - t)
    client.close(); cluster.close()
""",
}

ENGINE_PEERS = {
    "pfp ParallelProcessor threads (local)": r"""
import sys, time
from parallel_file_processor import FileScanner, ParallelProcessor
files = FileScanner(sort=True).list_files(sys.argv[1])
def read_len(f):
    with open(f.path, 'rb') as fh:
        return len(fh.read())
t = time.perf_counter()
r = ParallelProcessor(read_len, 'thread_pool').process(files)
assert r.failed == 0 and r.successful == len(files)
print('ELAPSED', time.perf_counter() - t)
""",
    "pfp ParallelProcessor processes (local)": r"""
import sys, time
from parallel_file_processor import FileScanner, ParallelProcessor
def read_len(f):
    with open(f.path, 'rb') as fh:
        return len(fh.read())
if __name__ == '__main__':
    files = FileScanner(sort=True).list_files(sys.argv[1])
    t = time.perf_counter()
    r = ParallelProcessor(read_len, 'process_pool').process(files)
    assert r.failed == 0 and r.successful == len(files)
    print('ELAPSED', time.perf_counter() - t)
""",
    "pfp ParallelProcessor executor=client (2 workers)": CLUSTER + r"""
    from parallel_file_processor import FileScanner, ParallelProcessor
    def read_len(f):
        with open(f.path, 'rb') as fh:
            return len(fh.read())
    files = FileScanner(sort=True).list_files(sys.argv[1])
    t = time.perf_counter()
    r = ParallelProcessor(read_len, executor=client).process(files)
    assert r.failed == 0 and r.successful == len(files)
    print('ELAPSED', time.perf_counter() - t)
    client.close(); cluster.close()
""",
}

CPU_FN = r"""
def busy(n):
    # about 2 ms of pure-Python work per item
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
"""

CPU_PEERS = {
    "pfp ParallelProcessor processes (local)": r"""
import sys, time
from parallel_file_processor import ParallelProcessor
""" + CPU_FN + r"""
if __name__ == '__main__':
    t = time.perf_counter()
    r = ParallelProcessor(busy, 'process_pool').process([40_000] * 2_000)
    assert r.successful == 2_000
    print('ELAPSED', time.perf_counter() - t)
""",
    "pfp ParallelProcessor executor=client (2 workers)": CLUSTER + CPU_FN.replace("\n", "\n    ")
    + r"""
    from parallel_file_processor import ParallelProcessor
    t = time.perf_counter()
    r = ParallelProcessor(busy, executor=client).process([40_000] * 2_000)
    assert r.successful == 2_000
    print('ELAPSED', time.perf_counter() - t)
    client.close(); cluster.close()
""",
}

PROFILE = CLUSTER + r"""
    import json, os
    from parallel_file_processor.hash import hash_shard, list_tree
    from parallel_file_processor.job import (SHARDS_PER_WORKER, balanced_shards, run_one,
                                             shard_runner)
    root = sys.argv[1]
    runner = shard_runner(client)
    # the listing, on one worker
    t = time.perf_counter()
    paths, rels, sizes = run_one(runner, list_tree, [root], {})
    listing = time.perf_counter() - t
    # the plan: size-balanced shards
    t = time.perf_counter()
    threads = runner.workers
    groups = balanced_shards(sizes, threads * SHARDS_PER_WORKER)
    plan = time.perf_counter() - t
    runner.close()
    def timed_shard(shard):
        t0 = time.perf_counter()
        rows = hash_shard((shard, 'blake3', None, None))
        return time.perf_counter() - t0, len(rows)
    t = time.perf_counter()
    futs = [client.submit(timed_shard, [paths[i] for i in g], pure=False) for g in groups]
    out = client.gather(futs)
    hashing_wall = time.perf_counter() - t
    # the cost of one task round trip (submit, run nothing, gather), 200 times in a row
    def noop(x):
        return x
    t = time.perf_counter()
    for i in range(200):
        client.submit(noop, i, pure=False).result()
    per_task = (time.perf_counter() - t) / 200
    print(json.dumps({
        'files': len(paths), 'bytes': sum(sizes), 'shards': len(groups), 'threads': threads,
        'listing_s': listing, 'plan_s': plan, 'hashing_wall_s': hashing_wall,
        'worker_seconds': sum(s for s, _ in out), 'max_shard_s': max(s for s, _ in out),
        'min_shard_s': min(s for s, _ in out), 'task_round_trip_s': per_task,
    }))
    client.close(); cluster.close()
"""


def shard_profile(tree: Path) -> dict[str, float]:
    out = subprocess.run(py(PROFILE) + [str(tree)], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("{"))
    return json.loads(line)


def estimate(p: dict[str, float], workers: int, files: int) -> dict[str, float]:
    """Seconds for ``files`` files on ``workers`` one-core workers, from the measured costs.

    Time = listing (one worker walks the tree; it does not shrink with more workers)
         + the client's plan (linear in files)
         + files x worker-seconds-per-file / workers (assumes storage keeps up)
         + one task round trip per wave of shards (3 shards per worker thread)."""
    per_file = p["worker_seconds"] / p["files"]
    listing = p["listing_s"] * files / p["files"]
    plan = p["plan_s"] * files / p["files"]
    waves = 3
    seconds = listing + plan + files * per_file / workers + waves * p["task_round_trip_s"]
    return {"workers": workers, "files": files, "seconds": seconds,
            "files_per_s": files / seconds,
            "files_per_s_without_listing": files / (seconds - listing)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sections", default="1,2,3")
    args = ap.parse_args()
    wanted = {s.strip() for s in args.sections.split(",")}
    corpus = corpus_dir()
    tree = corpus / "tree"
    sections: dict[str, list[Measurement]] = {}
    text: list[str] = []
    if "1" in wanted:
        print("hash: 100k files, blake3", file=sys.stderr)
        res = [run_timed(name, py(code) + [str(tree)], repeat=args.repeat, warmup=1)
               for name, code in HASH_PEERS.items()]
        sections["hash"] = res
        text.append(table("Hashing 100,000 small files (blake3): local vs 2-worker Dask "
                          "LocalCluster", res, "pfp hash_files local"))
    if "2" in wanted:
        print("engine: 100k FileInfo items, read the file", file=sys.stderr)
        res = [run_timed(name, py(code) + [str(tree)], repeat=max(1, args.repeat - 1))
               for name, code in ENGINE_PEERS.items()]
        sections["engine"] = res
        text.append(table("Engine: 100,000 FileInfo items, read each file (Python function)",
                          res, "pfp ParallelProcessor threads (local)"))
    if "2" in wanted:
        print("engine: 2,000 CPU-bound items (~2 ms each)", file=sys.stderr)
        res = [run_timed(name, py(code), repeat=max(1, args.repeat - 1))
               for name, code in CPU_PEERS.items()]
        sections["engine_cpu"] = res
        text.append(table("Engine: 2,000 CPU-bound items of ~2 ms (pure Python)", res,
                          "pfp ParallelProcessor processes (local)"))
    if "3" in wanted:
        print("shard profile", file=sys.stderr)
        p = shard_profile(tree)
        sections["shard_profile"] = [Measurement("profile", [p["hashing_wall_s"]],
                                                 note=json.dumps(p))]
        lines = [
            "### Where the cluster's time goes (hash job, 2 workers)", "",
            f"- listing {p['files']:,} files on one worker: {p['listing_s']:.2f} s",
            f"- planning {p['shards']} size-balanced shards on the client: {p['plan_s']:.3f} s",
            f"- hashing the shards: {p['hashing_wall_s']:.2f} s wall, "
            f"{p['worker_seconds']:.2f} worker-seconds "
            f"({p['worker_seconds'] / p['files'] * 1e6:.1f} us per file; shards took "
            f"{p['min_shard_s']:.2f}-{p['max_shard_s']:.2f} s)",
            f"- one task round trip (submit, run, result): {p['task_round_trip_s'] * 1e3:.2f} ms",
            "",
            "### Paper estimate (one-core workers, storage assumed to keep up)", "",
            "| workers | files | est. seconds | files/s | files/s without the listing |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for workers, files in ((2, 100_000), (10, 1_000_000), (100, 10_000_000)):
            e = estimate(p, workers, files)
            lines.append(f"| {workers} | {files:,} | {e['seconds']:.1f} | "
                         f"{e['files_per_s']:,.0f} | {e['files_per_s_without_listing']:,.0f} |")
        text.append("\n".join(lines))
    save("dask", sections, "\n\n".join(text))


if __name__ == "__main__":
    main()
