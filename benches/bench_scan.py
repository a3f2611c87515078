#!/usr/bin/env python3
"""Scanning, as users run it: whole processes, from the folder to the result.

Peers side by side in one run, alternating, medians of ``--repeat`` runs, peak memory beside
each (warm page cache unless said otherwise):

1. every file of the 100,000-file standard tree: a pure-Python ``os.scandir`` recursion with
   ``stat`` building (path, size, mtime) tuples, the seed-style scanner (``rglob`` + ``stat``),
   ``fd -u -t f``, and ``FileScanner().list_files``;
2. the command line: ``pfp scan --paths`` beside ``fd -u -t f``, and ``pfp scan`` (a table);
3. a filtered scan (``*.csv`` of at least 100 bytes) beside ``fd -g -S``;
4. cold page cache (dropped before every run, where the machine allows it): 1 and 2 again;
5. ``--million``: peak memory of ``list_files`` on a 1,000,000-file tree beside the
   pure-Python script's list of tuples.

usage: python benches/bench_scan.py [--repeat N] [--million] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    HERE,
    Peer,
    compare,
    corpus_dir,
    drop_caches,
    find,
    goal_line,
    have,
    py,
    save,
    table,
)

PY_SCANDIR = r"""
import os, sys
def walk(d, out):
    with os.scandir(d) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                walk(e.path, out)
            elif e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                out.append((e.path, st.st_size, st.st_mtime))
out = []
walk(sys.argv[1], out)
print(len(out))
"""

SEED = r"""
import sys
from pathlib import Path
root = Path(sys.argv[1])
out = []
for path in root.rglob('*'):
    if path.is_file():
        st = path.stat()
        out.append((path, st.st_size, st.st_mtime, path.suffix.lower(),
                    str(path.relative_to(root))))
print(len(out))
"""

LIST_FILES = r"""
import sys
from parallel_file_processor import FileScanner
print(len(FileScanner().list_files(sys.argv[1])))
"""

LIST_CSV = r"""
import sys
from parallel_file_processor import FileScanner
print(len(FileScanner(['*.csv'], min_size=100).list_files(sys.argv[1])))
"""

PFP = [sys.executable, "-m", "parallel_file_processor", "scan"]


def fd_tool() -> str | None:
    return "fd" if have("fd") else "fdfind" if have("fdfind") else None


def listing(tree: str, fd: str | None) -> list[Peer]:
    peers = [Peer("pure-Python scandir + stat", py(PY_SCANDIR) + [tree]),
             Peer("seed-style rglob + stat", py(SEED) + [tree])]
    if fd:
        peers.append(Peer("fd -u -t f", [fd, "-u", "-t", "f", ".", tree]))
    peers.append(Peer("pfp FileScanner().list_files", py(LIST_FILES) + [tree]))
    return peers


def cli(tree: str, fd: str | None) -> list[Peer]:
    peers = []
    if fd:
        peers.append(Peer("fd -u -t f", [fd, "-u", "-t", "f", ".", tree]))
    peers += [Peer("pfp scan --paths", PFP + [tree, "--paths"]),
              Peer("pfp scan (table)", PFP + [tree]),
              Peer("pfp scan --json", PFP + [tree, "--json"])]
    return peers


def filtered(tree: str, fd: str | None) -> list[Peer]:
    peers = []
    if fd:
        peers.append(Peer("fd -g '*.csv' -S +100b",
                          [fd, "-u", "-t", "f", "-g", "*.csv", "-S", "+100b", ".", tree]))
    peers += [Peer("find -name -size", ["find", tree, "-type", "f", "-name", "*.csv",
                                         "-size", "+99c"]),
              Peer("pfp FileScanner(['*.csv'], min_size=100)", py(LIST_CSV) + [tree])]
    return peers


def million_tree() -> Path:
    dest = Path(os.environ.get("PFP_BENCH_MILLION", HERE / ".corpus-1m"))
    if not (dest / ".complete").exists():
        print(f"generating a 1,000,000-file tree in {dest} (once; several minutes)...",
              file=sys.stderr)
        subprocess.run([sys.executable, "-c",
                        "import random, sys; sys.path.insert(0, sys.argv[2]);"
                        "import corpus; corpus.tree(__import__('pathlib').Path(sys.argv[1]),"
                        " 1_000_000, random.Random(1))", str(dest / "tree"), str(HERE)],
                       check=True)
        (dest / ".complete").write_text("ok\n")
    return dest / "tree"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--million", action="store_true", help="also the 1,000,000-file memory row")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-cache rows")
    a = ap.parse_args()
    tree = str(corpus_dir() / "tree")
    fd = fd_tool()
    if fd is None:
        print("fd not installed (apt install fd-find): its rows are skipped", file=sys.stderr)
    r = a.repeat
    sections: dict[str, list] = {}
    parts = []
    sections["list"] = res = compare(listing(tree, fd), repeat=r)
    parts.append(table("Scan 1: every file of the standard tree (100,000 files), warm cache",
                       res, "pure-Python scandir + stat"))
    ours = find("pfp FileScanner().list_files", res)
    parts.append("\n".join([
        goal_line("list_files vs pure-Python scandir + stat", ours,
                  find("pure-Python scandir + stat", res), at_least_faster=2),
        goal_line("list_files vs fd -u -t f", ours, find("fd -u -t f", res), at_most=3),
        goal_line("list_files vs the seed-style scanner", ours,
                  find("seed-style rglob + stat", res), at_least_faster=1)]))
    sections["cli"] = res = compare(cli(tree, fd), repeat=r)
    parts.append(table("Scan 2: the command line, every file of the standard tree", res,
                       "fd -u -t f"))
    parts.append(goal_line("pfp scan --paths vs fd -u -t f", find("pfp scan --paths", res),
                           find("fd -u -t f", res), at_most=2))
    sections["filtered"] = res = compare(filtered(tree, fd), repeat=r)
    parts.append(table("Scan 3: *.csv of at least 100 bytes in the standard tree", res,
                       "fd -g '*.csv' -S +100b" if fd else "find -name -size"))
    if not a.no_cold and drop_caches():
        peers = [p for p in listing(tree, fd) if not p.name.startswith("seed")]
        peers += [p for p in cli(tree, fd)[1:2]]
        sections["cold"] = res = compare(peers, repeat=max(3, r // 2), cold=True)
        parts.append(table("Scan 4: cold page cache (dropped before every run)", res,
                           "pure-Python scandir + stat"))
    elif not a.no_cold:
        parts.append("Scan 4 (cold cache): not measured, this machine does not allow dropping "
                     "the page cache.")
    if a.million:
        big = str(million_tree())
        peers = [Peer("pure-Python scandir + stat (list of tuples)", py(PY_SCANDIR) + [big]),
                 Peer("pfp FileScanner().list_files", py(LIST_FILES) + [big])]
        sections["million"] = res = compare(peers, repeat=3)
        parts.append(table("Scan 5: 1,000,000 files, peak memory", res,
                           "pure-Python scandir + stat (list of tuples)"))
        a_, b_ = find(peers[1].name, res), find(peers[0].name, res)
        if a_ and b_:
            verdict = "met" if a_.peak_rss_mb < b_.peak_rss_mb else "**missed**"
            parts.append(f"- list_files peak {a_.peak_rss_mb:.0f} MiB vs the script's "
                         f"{b_.peak_rss_mb:.0f} MiB (goal: below it: {verdict})")
    save("scan", sections, "\n\n".join(parts))


if __name__ == "__main__":
    main()
