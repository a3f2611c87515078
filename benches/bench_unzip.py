#!/usr/bin/env python3
"""ZIP extraction: the standard 40 archives, and one big archive of many entries.

Peers side by side, each a whole process writing into a fresh, empty folder (removed between
runs, outside the timing), warm page cache for the archives, median of ``--repeat`` runs.
Outputs go to tmpfs (``/dev/shm``) by default so the figures measure extraction, not the
disk's file-creation latency (``--work DIR`` to write to a disk instead):

1. the standard corpus (40 archives of 300 deflated text entries and one 2 MiB stored entry):
   the seed's pattern (ThreadPoolExecutor + zipfile.extractall, one folder per archive),
   Info-ZIP ``unzip`` over 2 processes (``xargs -P2``), and ``extract_zips``;
2. one ~1 GiB archive of 2,048 entries: ``unzip``, ``zipfile.extractall``, google's
   ``ripunzip`` (parallel inside one archive; ``cargo install ripunzip``) and ``extract_zips``.

usage: python benches/bench_unzip.py [--repeat N] [--only corpus,single]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Measurement, corpus_dir, have, py, save, table  # noqa: E402

SEED = r"""
import sys, zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
src, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
def extract(p):
    dest = out / p.stem
    dest.mkdir(exist_ok=True)
    with zipfile.ZipFile(p) as zf:
        zf.extractall(dest)
        return len(zf.namelist())
archives = sorted(src.glob('*.zip')) if src.is_dir() else [src]
with ThreadPoolExecutor() as ex:
    print(sum(ex.map(extract, archives)))
"""

PFP = r"""
import sys
from parallel_file_processor import extract_zips
res = extract_zips(sys.argv[1], sys.argv[2])
bad = [r for r in res if not r.ok]
assert not bad, bad[:2]
print(sum(r.files_extracted for r in res))
"""


def timed(name: str, argv: list[str] | str, out: Path, *, repeat: int, shell: bool = False,
          flaky: bool = False) -> Measurement:
    """Like ``_common.run``, but the output folder is emptied before every run, untimed.

    ``flaky``: a failed run is counted and retried (up to ``3 * repeat`` attempts) instead of
    ending the measurement; the note says how many runs failed and why.
    """
    m = Measurement(name)
    failures: list[str] = []
    i = 0
    while len(m.times) < repeat and i < 3 * (repeat + 1):  # run 0 warms the cache, not kept
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        subprocess.run(["sync"], check=False)
        cmd = ["bash", "-c", argv] if shell else argv
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        i += 1
        if os.waitstatus_to_exitcode(status) != 0:
            why = err.strip().splitlines()
            reason = " / ".join(line.strip() for line in why if "corrupt" in line or
                                "Error" in line)[:160] or f"exit {status}"
            if flaky:
                failures.append(reason)
                continue
            m.ok = False
            m.note = reason
            print(f"  {name}: FAILED {m.note}", file=sys.stderr)
            break
        if i > 1:
            m.times.append(elapsed)
            m.peak_rss_mb = max(m.peak_rss_mb, usage.ru_maxrss / 1024)
    if failures:
        m.note = f"{len(failures)} of {i} runs failed: {failures[0]}"
        m.ok = bool(m.times)
        print(f"  {name}: {m.note}", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    if m.ok:
        print(f"  {name}: median {m.median:.3f}s  peak {m.peak_rss_mb:.0f} MiB", file=sys.stderr)
    return m


def corpus(root: Path, work: Path, repeat: int) -> list[Measurement]:
    zips = root / "zips"
    out = work / "out"
    results = [timed("seed style (threads + zipfile.extractall)", py(SEED) + [str(zips), str(out)],
                     out, repeat=repeat)]
    if have("unzip"):
        cmd = (f"ls {zips}/*.zip | xargs -P2 -I{{}} sh -c "
               f"'unzip -q -o \"$1\" -d {out}/$(basename \"$1\" .zip)' _ {{}}")
        results.append(timed("unzip, xargs -P2", cmd, out, repeat=repeat, shell=True))
    results.append(timed("pfp extract_zips", py(PFP) + [str(zips), str(out)], out, repeat=repeat))
    return results


def big_archive(root: Path) -> Path:
    """~1 GiB uncompressed: 2,048 entries of 512 KiB, text-like (deflated ~4:1)."""
    path = root / "bigzip" / "one.zip"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(4000)]
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for i in range(2048):
            body = b" ".join(rng.choices(words, k=90_000))[: 512 * 1024]
            z.writestr(f"part{i // 256:02d}/chunk{i:05d}.txt", body)
    tmp.rename(path)
    return path


def single(root: Path, work: Path, repeat: int) -> list[Measurement]:
    archive = big_archive(root)
    out = work / "out"
    results: list[Measurement] = []
    if have("unzip"):
        results.append(timed("unzip", ["unzip", "-q", "-o", str(archive), "-d", str(out)], out,
                             repeat=repeat))
    results.append(timed("zipfile.extractall", py(
        "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])")
        + [str(archive), str(out)], out, repeat=repeat))
    if have("ripunzip"):
        results.append(timed("ripunzip", ["ripunzip", "unzip-file", "-d", str(out), str(archive)],
                             out, repeat=repeat, flaky=True))
    results.append(timed("pfp extract_zips", py(
        "import sys\nfrom parallel_file_processor import extract_zips\n"
        "r = extract_zips([sys.argv[1]], sys.argv[2], layout='flat')\nassert r[0].ok, r")
        + [str(archive), str(out)], out, repeat=repeat))
    return results


def ratios(results: list[Measurement], ours: str, peers: list[str]) -> str:
    mine = next((r for r in results if r.name == ours and r.ok), None)
    lines = []
    for peer in peers:
        other = next((r for r in results if r.name == peer and r.ok), None)
        if mine and other:
            lines.append(f"- {ours} is {other.median / mine.median:.2f}x faster than {peer}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="corpus,single")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder for outputs (default: /dev/shm, else beside the corpus)")
    a = ap.parse_args()
    root = corpus_dir()
    shm = Path("/dev/shm")
    default = shm / "pfp-bench-unzip" if shm.is_dir() and os.access(shm, os.W_OK) else None
    work = a.work or default or root / ".bench-unzip"
    wanted = set(a.only.split(","))
    sections: dict[str, list[Measurement]] = {}
    parts: list[str] = []
    if "corpus" in wanted:
        r = sections["corpus"] = corpus(root, work, a.repeat)
        parts.append(table("Extract the standard corpus: 40 archives, ~207 MB out", r,
                           "unzip, xargs -P2"))
        parts.append(ratios(r, "pfp extract_zips",
                            ["seed style (threads + zipfile.extractall)", "unzip, xargs -P2"]))
    if "single" in wanted:
        r = sections["single"] = single(root, work, a.repeat)
        parts.append(table("Extract one 1 GiB archive of 2,048 entries", r, "unzip"))
        parts.append(ratios(r, "pfp extract_zips", ["unzip", "zipfile.extractall", "ripunzip"]))
        notes = [f"- {m.name}: {m.note}" for m in r if m.note]
        if notes:
            parts.append("\n".join(notes))
    shutil.rmtree(work, ignore_errors=True)
    save("unzip", sections, "\n\n".join(p for p in parts if p))


if __name__ == "__main__":
    main()
