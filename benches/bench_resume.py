#!/usr/bin/env python3
"""Checkpoints: what keeping every finished item's outcome costs, and how fast a finished run
comes back, whole process each, alternating runs.

1. 100,000 trivial items in thread mode, with and without ``checkpoint=`` (a fresh file each
   run): goal at most 1.2x;
2. the same run again with its checkpoint full: every outcome loaded, nothing run: goal
   under 1 s;
3. a rate limit: 300 calls at 100/s on 8 threads (ideal 3 s), to show the limiter's own cost.

usage: python benches/bench_resume.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Peer, compare, find, goal_line, py, save, table  # noqa: E402

PLAIN = r"""
from parallel_file_processor import ParallelProcessor
def work(x):
    return x * 2
r = ParallelProcessor(work, mode='thread_pool').process(range(100_000))
assert r.successful == 100_000
"""

CHECKPOINTED = r"""
import os, sys
from parallel_file_processor import ParallelProcessor
def work(x):
    return x * 2
path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
r = ParallelProcessor(work, mode='thread_pool', checkpoint=path).process(range(100_000))
assert r.successful == 100_000
"""

RERUN = r"""
import sys
from parallel_file_processor import ParallelProcessor
def work(x):
    return x * 2
r = ParallelProcessor(work, mode='thread_pool', checkpoint=sys.argv[1]).process(range(100_000))
assert r.successful == 100_000 and r.runner_stats['from_checkpoint'] == 100_000
"""

RATE = r"""
import time
from parallel_file_processor import ParallelProcessor
def call(x):
    time.sleep(0.005)
    return x
r = ParallelProcessor(call, max_workers=8, rate_limit=100).process(range(300))
assert r.successful == 300
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pfp-bench-ckpt-"))
    fresh, full = tmp / "fresh.ckpt", tmp / "full.ckpt"
    # the full checkpoint, made once
    compare([Peer("prepare", py(CHECKPOINTED) + [str(full)])], repeat=1, warmup=0)
    peers = [Peer("100,000 items, no checkpoint", py(PLAIN)),
             Peer("100,000 items, checkpoint (fresh file)", py(CHECKPOINTED) + [str(fresh)]),
             Peer("re-run with a full checkpoint (nothing runs)", py(RERUN) + [str(full)])]
    res = compare(peers, repeat=a.repeat)
    base = find("100,000 items, no checkpoint", res)
    text = [table("Checkpoints: 100,000 trivial items, thread mode (whole process)", res,
                  "100,000 items, no checkpoint"),
            "\n".join([
                goal_line("checkpoint overhead", find(peers[1].name, res), base, at_most=1.2),
                "- re-run with everything in the checkpoint: "
                + (f"{find(peers[2].name, res).median:.2f} s (goal under 1 s: "  # type: ignore[union-attr]
                   + ("met" if find(peers[2].name, res).median < 1 else "**missed**") + ")"  # type: ignore[union-attr]
                   if find(peers[2].name, res) else "not measured")])]
    rate = compare([Peer("300 calls, rate_limit=100 (ideal 3.0 s + start-up)", py(RATE))],
                   repeat=max(1, a.repeat // 2))
    text.append(table("Rate limit: 300 calls at 100/s on 8 threads", rate,
                      "300 calls, rate_limit=100 (ideal 3.0 s + start-up)"))
    save("resume", {"checkpoint": res, "rate": rate}, "\n\n".join(text))


if __name__ == "__main__":
    main()
