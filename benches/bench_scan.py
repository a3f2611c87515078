#!/usr/bin/env python3
"""Directory scanning: filter *.csv with size >= 100 B in the 100,000-file standard tree.

Peers, side by side in one run (warm cache, whole process each):
the seed-style scanner (pathlib rglob + fnmatch + stat), scandir-rs, os.walk, GNU find,
fd (2 threads), and this package's FileScanner.list_files, scan_frame (all files) and `pfp scan`.

usage: python benches/bench_scan.py [--repeat N] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import corpus_dir, have, py, run, save, table  # noqa: E402

SEED = r"""
import fnmatch, sys
from pathlib import Path
root = Path(sys.argv[1])
out = []
for path in root.rglob('*'):
    if path.is_file() and fnmatch.fnmatch(path.name, '*.csv'):
        st = path.stat()
        if st.st_size >= 100:
            out.append((path, st.st_size, st.st_mtime, path.suffix.lower(), str(path.relative_to(root))))
print(len(out))
"""

OS_WALK = r"""
import os, sys
root = sys.argv[1]
out = []
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith('.csv'):
            p = os.path.join(d, f)
            st = os.stat(p)
            if st.st_size >= 100:
                out.append((p, st.st_size, st.st_mtime))
print(len(out))
"""

SCANDIR_RS = r"""
import os, sys, scandir_rs
root = sys.argv[1]
out = []
for d, _, files in scandir_rs.Walk(root, file_include=['*.csv']):
    for f in files:
        p = os.path.join(root, d, f)
        st = os.stat(p)
        if st.st_size >= 100:
            out.append((p, st.st_size, st.st_mtime))
print(len(out))
"""

OURS = r"""
import sys
from parallel_file_processor import FileScanner
print(len(FileScanner(['*.csv'], min_size=100).list_files(sys.argv[1])))
"""

OURS_FRAME = r"""
import sys
from parallel_file_processor import scan_frame
print(len(scan_frame(sys.argv[1])))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--root", type=Path, default=None, help="default: the standard corpus tree")
    a = ap.parse_args()
    root = str(a.root or corpus_dir() / "tree")
    r = a.repeat
    results = [run("seed-style (rglob+fnmatch+stat)", py(SEED) + [root], repeat=max(1, r // 2))]
    results.append(run("os.walk + stat", py(OS_WALK) + [root], repeat=r))
    try:
        import scandir_rs  # noqa: F401

        results.append(run("scandir-rs Walk + stat", py(SCANDIR_RS) + [root], repeat=r))
    except ImportError:
        print("scandir-rs not installed (pip install scandir-rs): skipped", file=sys.stderr)
    results.append(run("find -name -size", ["find", root, "-type", "f", "-name", "*.csv",
                                            "-size", "+99c"], repeat=r))
    fd = "fd" if have("fd") else "fdfind" if have("fdfind") else None
    if fd:
        results.append(run("fd -j2", [fd, "-u", "-j2", "-t", "f", "-g", "*.csv", "-S", "+100b",
                                      ".", root], repeat=r))
    else:
        print("fd not installed (apt install fd-find): skipped", file=sys.stderr)
    results.append(run("pfp FileScanner.list_files", py(OURS) + [root], repeat=r))
    results.append(run("pfp scan_frame (all 100k files)", py(OURS_FRAME) + [root], repeat=r))
    results.append(run("pfp scan CLI --count", [sys.executable, "-m", "parallel_file_processor",
                                                "scan", root, "-i", "*.csv", "--min-size",
                                                "100", "--count"], repeat=r))
    base = "fd -j2" if fd else "find -name -size"
    text = table(f"Scan: *.csv >= 100 B in the standard tree ({os.cpu_count()} cores, warm cache)",
                 results, base)
    seed = next(m for m in results if m.name.startswith("seed")).median
    ours = next(m for m in results if m.name == "pfp FileScanner.list_files").median
    text += f"\n\nFileScanner.list_files is {seed / ours:.1f}x faster than the seed-style scanner."
    save("scan", {"scan": results}, text)


if __name__ == "__main__":
    main()
