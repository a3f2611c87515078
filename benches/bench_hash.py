#!/usr/bin/env python3
"""Hashing, as users run it: whole processes, peers side by side, alternating runs.

Every approach is timed from its start to its exit (interpreter start-up and listing the
tree included), warm page cache unless said otherwise, medians of ``--repeat``, peak memory:

1. the 100,000-file standard tree: ``b3sum`` over a file list made beforehand (``xargs
   -P2``), the whole ``fd | xargs -P2 b3sum`` pipeline, the seed's pattern (threads +
   hashlib.sha256), and ``hash_files`` (blake3, sha256, xxh3_64) from a script; the command
   line ``pfp hash`` beside the pipeline; cold-cache rows where the machine allows dropping
   the page cache;
2. 16 files of 128 MiB: ``b3sum --num-threads 2``, threaded hashlib.sha256, single-thread
   ``xxhsum -H3``, and ``hash_files``;
3. duplicates in a 20,000-file tree with planted copies: ``jdupes -r -q``, a plain Python
   size-then-full-hash script, ``pfp dupes`` and ``find_duplicates`` from a script.

usage: python benches/bench_hash.py [--repeat N] [--only small,big,dupes] [--no-cold]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    Measurement,
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
import hashlib, os, sys
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
print(sum(len(v) for v in dupes.values()))
"""

PFP_DUPES = r"""
import sys
from parallel_file_processor import find_duplicates
print(len(find_duplicates(sys.argv[1])))
"""


def fd_tool() -> str:
    return "fd" if have("fd") else "fdfind" if have("fdfind") else ""


def pipeline(tool: str, root: Path) -> str:
    """What a command-line user runs: list and hash, two processes at a time."""
    fd = fd_tool()
    lister = f"{fd} -u -t f -0 . {root}" if fd else f"find {root} -type f -print0"
    return f"{lister} | xargs -0 -P2 -n 2000 {tool} > /dev/null"


def file_list(root: Path) -> Path:
    """The tree's files listed once, for peers measured on a list made beforehand."""
    out = Path(__file__).resolve().parent / ".scripts" / "tree.list0"
    out.parent.mkdir(exist_ok=True)
    if not out.exists():
        names = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        out.write_bytes(b"\0".join(os.fsencode(n) for n in names) + b"\0")
    return out


PFP = [sys.executable, "-m", "parallel_file_processor"]


def small_peers(root: Path, with_seed: bool = True) -> list[Peer]:
    tree = root / "tree"
    peers = []
    if have("b3sum"):
        peers.append(Peer("b3sum over a prepared list (xargs -P2)",
                          [f"xargs -0 -P2 -n 2000 -a {file_list(tree)} b3sum > /dev/null"],
                          shell=True))
        peers.append(Peer("fd | xargs -P2 b3sum", [pipeline("b3sum", tree)], shell=True))
    if with_seed:
        peers.append(Peer("seed style (threads + hashlib.sha256)", py(SEED_SHA256) + [str(tree)]))
    for algo in ("blake3", "sha256", "xxh3_64"):
        peers.append(Peer(f"pfp hash_files {algo}", py(PFP_HASH) + [str(tree), algo]))
    peers.append(Peer("pfp hash (CLI)", [*PFP, "hash", str(tree)]))
    return peers


def small(root: Path, repeat: int) -> list[Measurement]:
    return compare(small_peers(root), repeat=repeat)


def big(root: Path, repeat: int) -> list[Measurement]:
    files = sorted(str(p) for p in (root / "big").iterdir())
    seed_big = SEED_SHA256.replace("max_workers=8", "max_workers=2")
    peers = []
    if have("b3sum"):
        peers.append(Peer("b3sum --num-threads 2", ["b3sum", "--num-threads", "2", *files]))
    peers.append(Peer("threaded hashlib.sha256 (2 threads)", py(seed_big) + [str(root / "big")]))
    if have("xxhsum"):
        peers.append(Peer("xxhsum -H3 (1 thread)", ["xxhsum", "-H3", *files]))
    for algo in ("blake3", "sha256", "xxh3_64"):
        peers.append(Peer(f"pfp hash_files {algo}", py(PFP_HASH) + [str(root / "big"), algo]))
    return compare(peers, repeat=repeat)


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
    peers = []
    if have("jdupes"):
        peers.append(Peer("jdupes -r -q", ["jdupes", "-r", "-q", str(tree)]))
    peers += [Peer("Python size-then-full-hash script", py(PY_DUPES) + [str(tree)]),
              Peer("pfp dupes (CLI)", [*PFP, "dupes", str(tree)]),
              Peer("pfp find_duplicates (script)", py(PFP_DUPES) + [str(tree)])]
    return compare(peers, repeat=repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="small,big,dupes")
    ap.add_argument("--no-cold", action="store_true")
    a = ap.parse_args()
    root = corpus_dir()
    wanted = set(a.only.split(","))
    sections: dict[str, list[Measurement]] = {}
    parts: list[str] = []
    if "small" in wanted:
        r = sections["small"] = small(root, a.repeat)
        parts.append(table("Hash 1: the 100,000-file standard tree, warm cache", r,
                           "b3sum over a prepared list (xargs -P2)"))
        ours = find("pfp hash_files blake3", r)
        parts.append("\n".join([
            goal_line("hash_files blake3 vs b3sum over a prepared list", ours,
                      find("b3sum over a prepared list (xargs -P2)", r), at_most=1.0),
            goal_line("hash_files blake3 vs the fd | xargs b3sum pipeline", ours,
                      find("fd | xargs -P2 b3sum", r), at_most=1.0),
            goal_line("pfp hash vs the fd | xargs b3sum pipeline", find("pfp hash (CLI)", r),
                      find("fd | xargs -P2 b3sum", r), at_most=1.1),
            goal_line("hash_files sha256 vs the seed's threads + hashlib",
                      find("pfp hash_files sha256", r),
                      find("seed style (threads + hashlib.sha256)", r), at_least_faster=1)]))
        if not a.no_cold and drop_caches():
            peers = [p for p in small_peers(root, with_seed=False)
                     if "sha256" not in p.name and "xxh3" not in p.name]
            r = sections["small_cold"] = compare(peers, repeat=3, cold=True)
            parts.append(table("Hash 1, cold page cache (dropped before every run)", r,
                               "b3sum over a prepared list (xargs -P2)"))
    if "big" in wanted:
        r = sections["big"] = big(root, a.repeat)
        parts.append(table("Hash 2: 16 files x 128 MiB", r, "b3sum --num-threads 2"))
        parts.append("\n".join([
            goal_line("hash_files blake3 vs b3sum --num-threads 2", find("pfp hash_files blake3", r),
                      find("b3sum --num-threads 2", r), at_most=1.0),
            goal_line("hash_files sha256 vs threaded hashlib", find("pfp hash_files sha256", r),
                      find("threaded hashlib.sha256 (2 threads)", r), at_most=1.0)]))
    if "dupes" in wanted:
        r = sections["dupes"] = dupes(root, a.repeat)
        parts.append(table("Hash 3: duplicates among 20,024 files with planted copies", r,
                           "jdupes -r -q" if have("jdupes") else
                           "Python size-then-full-hash script"))
        parts.append(goal_line("pfp dupes vs jdupes -r -q", find("pfp dupes (CLI)", r),
                               find("jdupes -r -q", r), at_most=1.0))
    save("hash", sections, "\n\n".join(p.rstrip("\n") for p in parts if p))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
