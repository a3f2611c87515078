#!/usr/bin/env python3
"""Hashing: many small files, a few big ones, and duplicate finding, against the best tools.

Every peer is a whole process (interpreter start-up included for Python peers; ``find`` and
``xargs`` included for the command-line tools), warm page cache, median of ``--repeat`` runs:

1. the standard tree (100,000 small files): the seed's pattern (ThreadPoolExecutor +
   hashlib.sha256), ``b3sum`` and ``xxhsum -H3`` over the file list split across 2 processes
   (``xargs -P2``), and ``hash_files`` with blake3, sha256 and xxh3_64;
2. 16 files of 128 MiB: ``b3sum --num-threads 2``, threaded hashlib.sha256, single-thread
   ``xxhsum -H3``, and ``hash_files``;
3. ``find_duplicates`` on a tree with planted duplicates against a plain Python reference that
   groups by size and then hashes every same-size file in full.

usage: python benches/bench_hash.py [--repeat N] [--only small,big,dupes]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Measurement, corpus_dir, have, py, run, run_timed, save, table  # noqa: E402

SEED_SHA256 = r"""
import hashlib, os, sys
from concurrent.futures import ThreadPoolExecutor
root = sys.argv[1]
paths = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
def digest(p):
    h = hashlib.sha256()
    with open(p, 'rb') as fh:
        for block in iter(lambda: fh.read(1 << 20), b''):
            h.update(block)
    return p, h.hexdigest()
with ThreadPoolExecutor(max_workers=8) as ex:
    out = list(ex.map(digest, paths))
print(len(out))
"""

PFP_HASH = r"""
import sys
from parallel_file_processor import hash_files
out = hash_files(sys.argv[1], sys.argv[2])
assert not any(r.error for r in out), [r for r in out if r.error][:3]
print(len(out))
"""

PY_DUPES = r"""
import hashlib, os, sys, time
t = time.perf_counter()
from collections import defaultdict
root = sys.argv[1]
by_size = defaultdict(list)
for d, _, fs in os.walk(root):
    for f in fs:
        p = os.path.join(d, f)
        st = os.stat(p)
        if st.st_size:
            by_size[st.st_size].append(p)
groups = defaultdict(list)
for size, paths in by_size.items():
    if len(paths) < 2:
        continue
    for p in paths:
        h = hashlib.sha256()
        with open(p, 'rb') as fh:
            for block in iter(lambda: fh.read(1 << 20), b''):
                h.update(block)
        groups[(size, h.hexdigest())].append(p)
dupes = {k: v for k, v in groups.items() if len(v) > 1}
print('ELAPSED', time.perf_counter() - t, sum(len(v) for v in dupes.values()))
"""

PFP_DUPES = r"""
import sys, time
import pandas  # loaded already in pandas workflows; the reference returns plain dicts
from parallel_file_processor import find_duplicates
t = time.perf_counter()
df = find_duplicates(sys.argv[1])
print('ELAPSED', time.perf_counter() - t, len(df))
"""


def xargs(tool: str, root: Path) -> str:
    return f"find {root} -type f -print0 | xargs -0 -P2 -n 2000 {tool} > /dev/null"


def small(root: Path, repeat: int) -> list[Measurement]:
    tree = root / "tree"
    results = [run("seed style (threads + hashlib.sha256)", py(SEED_SHA256) + [str(tree)],
                   repeat=max(1, repeat - 2), warmup=0)]
    if have("b3sum"):
        results.append(run("b3sum, xargs -P2", xargs("b3sum", tree), shell=True, repeat=repeat))
    if have("xxhsum"):
        results.append(run("xxhsum -H3, xargs -P2", xargs("xxhsum -H3", tree), shell=True,
                           repeat=repeat))
    for algo in ("blake3", "sha256", "xxh3_64"):
        results.append(run(f"pfp hash_files {algo}", py(PFP_HASH) + [str(tree), algo],
                           repeat=repeat))
    return results


def big(root: Path, repeat: int) -> list[Measurement]:
    files = sorted(str(p) for p in (root / "big").iterdir())
    seed_big = SEED_SHA256.replace("max_workers=8", "max_workers=2")
    results: list[Measurement] = []
    if have("b3sum"):
        results.append(run("b3sum --num-threads 2", ["b3sum", "--num-threads", "2", *files],
                           repeat=repeat))
    results.append(run("threaded hashlib.sha256 (2 threads)", py(seed_big) + [str(root / "big")],
                       repeat=repeat))
    if have("xxhsum"):
        results.append(run("xxhsum -H3 (1 thread)", ["xxhsum", "-H3", *files], repeat=repeat))
    for algo in ("blake3", "sha256", "xxh3_64"):
        results.append(run(f"pfp hash_files {algo}", py(PFP_HASH) + [str(root / "big"), algo],
                           repeat=repeat))
    return results


def planted_dupes(root: Path) -> Path:
    """20,000 files of 1-64 KiB plus 24 files of 8 MiB; a tenth of each are copies."""
    dest = root / "dupes"
    if (dest / ".complete").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    rng = random.Random(7)
    originals: list[Path] = []
    for i in range(20_000):
        p = dest / f"d{i % 200:03d}" / f"f{i:05d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        if originals and i % 10 == 0:
            shutil.copyfile(rng.choice(originals), p)
        else:
            p.write_bytes(rng.randbytes(rng.randint(1024, 64 * 1024)))
            originals.append(p)
    big_orig: list[Path] = []
    for i in range(24):
        p = dest / "big" / f"b{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        if big_orig and i % 4 == 0:
            shutil.copyfile(big_orig[-1], p)
        else:
            # Same size, different tail: a size-only grouping must still hash these.
            p.write_bytes(rng.randbytes(8 << 20))
            big_orig.append(p)
    (dest / ".complete").write_text("ok\n")
    return dest


def dupes(root: Path, repeat: int) -> list[Measurement]:
    tree = planted_dupes(root)
    # Timed from the first stat to the finished groups (interpreter start-up left out).
    return [run_timed("Python size-then-full-hash reference", py(PY_DUPES) + [str(tree)],
                      repeat=repeat),
            run_timed("pfp find_duplicates", py(PFP_DUPES) + [str(tree)], repeat=repeat)]


def ratio_line(results: list[Measurement], ours: str, peer: str) -> str:
    a = next((r for r in results if r.name == ours and r.ok), None)
    b = next((r for r in results if r.name == peer and r.ok), None)
    if a is None or b is None:
        return ""
    return f"- {ours}: {a.median / b.median:.2f}x the time of {peer}\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="small,big,dupes")
    a = ap.parse_args()
    root = corpus_dir()
    wanted = set(a.only.split(","))
    sections: dict[str, list[Measurement]] = {}
    parts: list[str] = []
    if "small" in wanted:
        r = sections["small"] = small(root, a.repeat)
        parts.append(table("Hash 100,000 small files (standard tree)", r, "b3sum, xargs -P2"))
        parts.append("\n" + ratio_line(r, "pfp hash_files blake3", "b3sum, xargs -P2")
                     + ratio_line(r, "pfp hash_files xxh3_64", "xxhsum -H3, xargs -P2")
                     + ratio_line(r, "pfp hash_files blake3",
                                  "seed style (threads + hashlib.sha256)")
                     + ratio_line(r, "pfp hash_files sha256",
                                  "seed style (threads + hashlib.sha256)"))
    if "big" in wanted:
        r = sections["big"] = big(root, a.repeat)
        parts.append(table("Hash 16 files x 128 MiB", r, "b3sum --num-threads 2"))
        parts.append("\n" + ratio_line(r, "pfp hash_files blake3", "b3sum --num-threads 2")
                     + ratio_line(r, "pfp hash_files sha256", "threaded hashlib.sha256 (2 threads)")
                     + ratio_line(r, "pfp hash_files xxh3_64", "xxhsum -H3 (1 thread)"))
    if "dupes" in wanted:
        r = sections["dupes"] = dupes(root, a.repeat)
        parts.append(table("Find duplicates: 20,024 files with planted copies", r,
                           "Python size-then-full-hash reference"))
    save("hash", sections, "\n\n".join(p.rstrip("\n") for p in parts if p))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
