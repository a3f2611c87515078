#!/usr/bin/env python3
"""The standard benchmark corpus: a wide tree of small files, large files, ZIPs and CSVs.

usage: python benches/corpus.py DEST [--files N] [--big-mb MB] [--big-count K] [--zips Z] [--csvs C]
"""
import argparse
import random
import zipfile
from pathlib import Path

EXTS = [".csv", ".txt", ".json", ".log", ".py", ".dat", ".md", ".xml"]

def tree(root: Path, n: int, rng: random.Random):
    root.mkdir(parents=True, exist_ok=True)
    dirs = [root]
    for i in range(max(1, n // 20)):
        parent = rng.choice(dirs[-200:]) if rng.random() < 0.7 else rng.choice(dirs)
        d = parent / f"d{i:05d}"
        d.mkdir(exist_ok=True)
        dirs.append(d)
    for i in range(n):
        d = rng.choice(dirs)
        ext = rng.choice(EXTS)
        size = int(rng.paretovariate(1.2) * 200) % 65536
        (d / f"f{i:06d}{ext}").write_bytes(rng.randbytes(size))

def big(root: Path, count: int, mb: int, rng: random.Random):
    root.mkdir(parents=True, exist_ok=True)
    block = rng.randbytes(1 << 20)
    for i in range(count):
        with open(root / f"big{i:03d}.bin", "wb") as f:
            for j in range(mb):
                f.write(block[j % 997:] + block[: j % 997])

def zips(root: Path, count: int, rng: random.Random):
    root.mkdir(parents=True, exist_ok=True)
    words = [f"w{i}" for i in range(5000)]
    for z in range(count):
        with zipfile.ZipFile(root / f"arch{z:03d}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for e in range(300):
                text = " ".join(rng.choice(words) for _ in range(rng.randint(50, 3000)))
                zf.writestr(f"sub{e % 7}/entry{e:04d}.txt", text)
            zf.writestr("blob.bin", rng.randbytes(2 << 20), compress_type=zipfile.ZIP_STORED)

def csvs(root: Path, count: int, rng: random.Random):
    root.mkdir(parents=True, exist_ok=True)
    for c in range(count):
        with open(root / f"part{c:04d}.csv", "w") as f:
            f.write("id,name,value,score,flag\n")
            for r in range(20000):
                f.write(f"{c*20000+r},item{rng.randint(0, 999)},{rng.random():.6f},{rng.randint(-500, 500)},{rng.random() < 0.5}\n")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--big-count", type=int, default=16)
    ap.add_argument("--big-mb", type=int, default=128)
    ap.add_argument("--zips", type=int, default=40)
    ap.add_argument("--csvs", type=int, default=200)
    a = ap.parse_args()
    rng = random.Random(20261123)
    dest = Path(a.dest)
    tree(dest / "tree", a.files, rng)
    big(dest / "big", a.big_count, a.big_mb, rng)
    zips(dest / "zips", a.zips, rng)
    csvs(dest / "csv", a.csvs, rng)
    print("corpus at", dest)
