"""What a killed extraction leaves behind is removed by the next run, and a live run's is not."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from parallel_file_processor import extract_zips

ENTRIES = 3000
CHILD = (
    "import sys\n"
    "from parallel_file_processor import extract_zips\n"
    "[r] = extract_zips([sys.argv[1]], sys.argv[2], workers=1, if_exists=sys.argv[3])\n"
    "assert r.ok, r\n"
)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """Many small entries: creating the files takes a while, so a run can be caught midway."""
    path = tmp_path_factory.mktemp("zips") / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(ENTRIES):
            z.writestr(f"d{i % 20}/f{i}.txt", f"entry {i}\n".encode() * 200)
    return path


def partials(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if ".pfp-partial-" in p.name or ".pfp-old-" in p.name)


def start_and_stop_midway(archive: Path, out: Path, if_exists: str = "error"
                          ) -> tuple[subprocess.Popen[bytes], Path]:
    """Start an extraction in a child and SIGSTOP it while its temporary folder fills."""
    for _attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(archive), str(out), if_exists])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            found = partials(out) if out.exists() else []
            if found and any(found[0].rglob("*.txt")):
                proc.send_signal(signal.SIGSTOP)
                if partials(out):
                    return proc, partials(out)[0]
                proc.send_signal(signal.SIGCONT)
                break
            time.sleep(0.001)
        proc.wait(timeout=60)
        # Finished before it could be caught: start again on a fresh target.
        for p in out.iterdir():
            if p.name == archive.stem and if_exists == "error":
                import shutil

                shutil.rmtree(p)
    pytest.skip("the extraction always finished before it could be stopped midway")


def check_complete(target: Path) -> None:
    files = sorted(target.rglob("*.txt"))
    assert len(files) == ENTRIES
    assert (target / "d7" / "f7.txt").read_bytes() == b"entry 7\n" * 200


def test_a_killed_runs_folder_is_removed_by_the_next_run(tmp_path: Path, big: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    proc, leftover = start_and_stop_midway(big, out)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert leftover.is_dir() and leftover.name.startswith(".big.pfp-partial-")
    assert not (out / "big").exists()
    with caplog.at_level(logging.WARNING, logger="parallel_file_processor.extract"):
        [r] = extract_zips([big], out)
    assert r.status == "extracted", r
    assert not leftover.exists()
    assert [p.name for p in out.iterdir()] == ["big"]
    check_complete(out / "big")
    assert any(str(leftover) in m and f"process {proc.pid}" in m for m in caplog.messages), \
        caplog.messages


def test_a_killed_overwrite_keeps_the_old_target_and_is_cleaned(tmp_path: Path,
                                                                big: Path) -> None:
    out = tmp_path / "out"
    (out / "big").mkdir(parents=True)
    (out / "big" / "old.txt").write_text("old")
    proc, leftover = start_and_stop_midway(big, out, "overwrite")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # Killed midway: the target is untouched, never missing.
    assert (out / "big" / "old.txt").read_text() == "old"
    assert leftover.exists()
    [r] = extract_zips([big], out, if_exists="overwrite")
    assert r.ok, r
    assert [p.name for p in out.iterdir()] == ["big"]
    assert not (out / "big" / "old.txt").exists()
    check_complete(out / "big")


def test_a_live_runs_folder_is_left_alone(tmp_path: Path, big: Path) -> None:
    out = tmp_path / "out"
    proc, live = start_and_stop_midway(big, out)
    try:
        small = tmp_path / "small.zip"
        with zipfile.ZipFile(small, "w") as z:
            z.writestr("x.txt", b"x")
        # Another process (a concurrent run) extracting into the same folder.
        p = subprocess.run([sys.executable, "-c", CHILD, str(small), str(out), "error"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert live.is_dir(), "a live run's temporary folder was removed"
        assert "removed" not in p.stderr
        # This process too (the run is stopped, not dead: its lock and token say so).
        [r] = extract_zips([small], tmp_path / "out", layout="{stem}-again")
        assert r.ok and live.is_dir()
    finally:
        proc.send_signal(signal.SIGCONT)
    assert proc.wait(timeout=120) == 0
    assert not live.exists()
    assert sorted(p.name for p in out.iterdir()) == ["big", "small", "small-again"]
    check_complete(out / "big")


def test_a_reused_pid_does_not_keep_a_leftover(tmp_path: Path) -> None:
    """A leftover named after a PID that is alive now, but as another process."""
    out = tmp_path / "out"
    out.mkdir()
    me = os.getpid()
    # Old-format name (from before the start token), last changed long before we started.
    stale = out / f".a.pfp-partial-{me}-0"
    (stale / "sub").mkdir(parents=True)
    os.utime(stale, (1_000_000_000, 1_000_000_000))
    # New format: this host, our PID, but another start time: a process before us had it.
    host = zlib.crc32(socket.gethostname().encode()) & 0xFFFF
    reused = out / f".b.pfp-partial-{me}-{host:04x}00000000-0"
    reused.mkdir()
    # Another host's: judged by its lock alone, which no one holds.
    other = out / f".d.pfp-partial-{me}-{(host + 1) & 0xFFFF:04x}12345678-0"
    other.mkdir()
    # A set-aside old target whose run died between its two renames: put back.
    aside = out / ".c.pfp-old-99999999"
    aside.mkdir()
    (aside / "keep.txt").write_text("old c")
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w") as z:
        z.writestr("x.txt", b"x")
    [r] = extract_zips([small], out)
    assert r.ok
    assert not stale.exists() and not aside.exists()
    assert (out / "c" / "keep.txt").read_text() == "old c"
    assert not reused.exists() and not other.exists()
    assert sorted(p.name for p in out.iterdir()) == ["c", "small"]
