"""Shared benchmark plumbing: the corpus, timing whole processes, machine info, tables.

Every peer runs as its own process (``python -c ...`` for Python approaches), timed from the
outside with its peak RSS read from ``wait4``, so figures compare like with like.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def corpus_dir() -> Path:
    """The standard corpus (``PFP_BENCH_CORPUS`` or ``benches/.corpus``), generated on first use."""
    dest = Path(os.environ.get("PFP_BENCH_CORPUS", HERE / ".corpus"))
    if not (dest / ".complete").exists():
        print(f"generating the standard corpus in {dest} (once; a few minutes)...", file=sys.stderr)
        subprocess.run([sys.executable, str(HERE / "corpus.py"), str(dest)], check=True)
        (dest / ".complete").write_text("ok\n")
    return dest


@dataclass
class Measurement:
    name: str
    times: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    ok: bool = True
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


def run(name: str, argv: list[str], *, repeat: int = 3, warmup: int = 1,
        env: dict[str, str] | None = None, shell: bool = False, note: str = "") -> Measurement:
    """Time ``argv`` ``repeat`` times after ``warmup`` runs; keep the median and peak RSS."""
    m = Measurement(name, note=note)
    full_env = {**os.environ, **(env or {})}
    for i in range(warmup + repeat):
        t0 = time.perf_counter()
        cmd: list[str] | str = argv
        if shell:
            cmd = ["bash", "-c", argv if isinstance(argv, str) else " ".join(argv)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode != 0:
            m.ok = False
            m.note = (note + " " if note else "") + f"exit {proc.returncode}: {err.strip()[-200:]}"
            print(f"  {name}: FAILED {m.note}", file=sys.stderr)
            return m
        if i >= warmup:
            m.times.append(elapsed)
            m.peak_rss_mb = max(m.peak_rss_mb, usage.ru_maxrss / 1024)
    print(f"  {name}: median {m.median:.3f}s  peak {m.peak_rss_mb:.0f} MiB", file=sys.stderr)
    return m


@dataclass
class Peer:
    """One approach to time: a whole process (``argv``), run as a user runs it."""

    name: str
    argv: list[str]
    shell: bool = False
    env: dict[str, str] | None = None
    note: str = ""


def drop_caches() -> bool:
    """Empty the page cache (root only); False when this machine does not allow it."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def _once(peer: Peer) -> tuple[float, float, str | None]:
    """One whole-process run: (seconds, peak RSS MiB, error or None)."""
    cmd: list[str] = ["bash", "-c", " ".join(peer.argv)] if peer.shell else peer.argv
    env = {**os.environ, **(peer.env or {})}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code != 0:
        return elapsed, 0.0, f"exit {code}: {err.strip()[-200:]}"
    return elapsed, usage.ru_maxrss / 1024, None


def compare(peers: list[Peer], *, repeat: int = 5, warmup: int = 1,
            cold: bool = False) -> list[Measurement]:
    """Time every peer ``repeat`` times, alternating (peer 1, 2, 3, 1, 2, 3...) so a change in
    the machine's state hits all of them alike; medians and peak RSS. ``cold``: the page cache
    is dropped before every run (no warm-up then)."""
    results = {p.name: Measurement(p.name, note=p.note) for p in peers}
    rounds = repeat + (0 if cold else warmup)
    for r in range(rounds):
        for p in peers:
            m = results[p.name]
            if not m.ok:
                continue
            if cold:
                drop_caches()
            elapsed, rss, error = _once(p)
            if error is not None:
                m.ok, m.note = False, (p.note + " " if p.note else "") + error
                print(f"  {p.name}: FAILED {error}", file=sys.stderr)
                continue
            if cold or r >= warmup:
                m.times.append(elapsed)
                m.peak_rss_mb = max(m.peak_rss_mb, rss)
    for m in results.values():
        if m.ok:
            print(f"  {m.name}: median {m.median:.3f}s  peak {m.peak_rss_mb:.0f} MiB",
                  file=sys.stderr)
    return list(results.values())


def find(name: str, results: list[Measurement]) -> Measurement | None:
    return next((m for m in results if m.name == name and m.ok), None)


def goal_line(label: str, ours: Measurement | None, peer: Measurement | None, *,
              at_most: float | None = None, at_least_faster: float | None = None) -> str:
    """``label: ratio (goal ...: met/missed)`` for the README, from two measurements."""
    if ours is None or peer is None:
        return f"- {label}: not measured"
    ratio = ours.median / peer.median
    if at_most is not None:
        verdict = "met" if ratio <= at_most else "**missed**"
        return f"- {label}: {ratio:.2f}x (goal at most {at_most:g}x: {verdict})"
    assert at_least_faster is not None
    faster = peer.median / ours.median
    verdict = "met" if faster >= at_least_faster else "**missed**"
    how = f"{faster:.2f}x faster" if faster >= 1 else f"{1 / faster:.2f}x slower"
    return f"- {label}: {how} (goal at least {at_least_faster:g}x faster: {verdict})"


def py(code: str) -> list[str]:
    """A Python peer: the code runs in a fresh interpreter (whole-process timing)."""
    return [sys.executable, "-c", code]


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def machine() -> dict[str, object]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "date": time.strftime("%Y-%m-%d"),
    }


def table(title: str, results: list[Measurement], baseline: str) -> str:
    """A Markdown table of medians, peak memory and each peer's time relative to ``baseline``."""
    base = next((r.median for r in results if r.name == baseline and r.ok), float("nan"))
    lines = [f"### {title}", "",
             f"| approach | median s | peak MiB | time vs {baseline} |",
             "| --- | ---: | ---: | ---: |"]
    for r in results:
        if not r.ok:
            lines.append(f"| {r.name} | failed | | {r.note} |")
            continue
        ratio = r.median / base if base == base and base > 0 else float("nan")
        lines.append(f"| {r.name} | {r.median:.3f} | {r.peak_rss_mb:.0f} | {ratio:.2f}x |")
    return "\n".join(lines)


def save(bench: str, sections: dict[str, list[Measurement]], text: str) -> None:
    """Write ``results/<bench>.json`` and ``results/<bench>.md`` (the README copies the latter)."""
    RESULTS.mkdir(exist_ok=True)
    data = {
        "machine": machine(),
        "sections": {k: [asdict(m) | {"median": m.median} for m in v] for k, v in sections.items()},
    }
    (RESULTS / f"{bench}.json").write_text(json.dumps(data, indent=2) + "\n")
    mach = data["machine"]
    header = (f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB, "
              f"{mach['os']}, Python {mach['python']}, {mach['date']}.\n\n")
    (RESULTS / f"{bench}.md").write_text(header + text + "\n")
    print(header + text)


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def run_timed(name: str, argv: list[str], *, repeat: int = 3, warmup: int = 0,
              env: dict[str, str] | None = None, note: str = "") -> Measurement:
    """Like :func:`run`, but the time is what the program prints as ``ELAPSED <seconds>`` (the
    phase being compared, without interpreter start-up and input preparation)."""
    m = Measurement(name, note=note)
    full_env = {**os.environ, **(env or {})}
    for i in range(warmup + repeat):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=full_env, text=True)
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        usage = rusage.ru_maxrss / 1024
        if proc.returncode != 0:
            m.ok = False
            m.note = (note + " " if note else "") + f"exit {proc.returncode}: {err.strip()[-300:]}"
            print(f"  {name}: FAILED {m.note}", file=sys.stderr)
            return m
        elapsed = next((float(line.split()[1]) for line in out.splitlines()
                        if line.startswith("ELAPSED ")), None)
        if elapsed is None:
            m.ok, m.note = False, "no ELAPSED line"
            return m
        if i >= warmup:
            m.times.append(elapsed)
            m.peak_rss_mb = max(m.peak_rss_mb, usage)
    print(f"  {name}: median {m.median:.3f}s  peak {m.peak_rss_mb:.0f} MiB", file=sys.stderr)
    return m
