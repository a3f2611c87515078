"""Files as the walk finds them: process_directory starts before the walk ends, sees every file
exactly once, and stops walk and workers together on Ctrl-C; FileInfo stays the seed's."""

from __future__ import annotations

import copy
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_unprivileged, write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import FileInfo, FileProcessor, FileScanner, ProcessingMode


def many_files(root: Path, n: int, per_dir: int = 25) -> set[str]:
    paths = set()
    for i in range(n):
        p = root / f"d{i // per_dir:04d}" / f"f{i:05d}.txt"
        write(p, str(i))
        paths.add(str(p))
    return paths


@pytest.mark.parametrize("mode", ["sequential", "thread_pool", "process_pool", "async"])
@pytest.mark.parametrize("prefetch", [False, True])
def test_every_file_is_processed_exactly_once(tmp_path: Path, mode: str, prefetch: bool) -> None:
    expected = many_files(tmp_path, 2000)

    def name(f: FileInfo) -> str:
        return f.path_str

    batch = FileProcessor(mode=mode, max_workers=3, prefetch=prefetch).process_directory(
        tmp_path, name)
    seen = Counter(batch.successful_results())
    assert set(seen) == expected and set(seen.values()) == {1}
    assert batch.total_files == 2000 and [r.index for r in batch.results] == list(range(2000))


def test_walk_errors_are_failed_items_and_the_rest_is_seen_once(open_tmp: Path) -> None:
    tmp_path = open_tmp
    expected = many_files(tmp_path / "open", 300)
    many_files(tmp_path / "locked", 10)
    os.chmod(tmp_path / "locked", 0o000)

    def run() -> tuple[list[str], list[tuple[str, str]]]:
        batch = FileProcessor(mode="thread_pool").process_directory(tmp_path, lambda f: 1)
        ok = [r.file_info.path_str for r in batch.results if r.success]
        bad = [(str(r.file_info.path), r.error_type) for r in batch.results if not r.success]
        return ok, bad

    try:
        ok, bad = run_unprivileged(run)
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert sorted(ok) == sorted(expected) and len(ok) == len(set(ok))
    assert bad == [(str(tmp_path / "locked"), "PermissionError")]


def test_the_first_file_is_processed_before_the_walk_ends(tmp_path: Path) -> None:
    many_files(tmp_path, 20_000, per_dir=10)
    first: list[float] = []
    stream_done: list[bool] = []
    scanner = FileScanner()

    def f(info: FileInfo) -> None:
        if not first:
            first.append(time.perf_counter())
            stream_done.append(bool(files_stream[0].done) if files_stream else True)

    files_stream: list = []
    original = scanner.stream

    def spy(directory, **kw):  # type: ignore[no-untyped-def]
        s = original(directory, **kw)
        files_stream.append(s)
        return s

    scanner.stream = spy  # type: ignore[method-assign]
    start = time.perf_counter()
    FileProcessor(scanner, mode="thread_pool").process_directory(tmp_path, f)
    assert first and stream_done == [False], "the function ran only after the walk"
    assert first[0] - start < 2.0


def test_sorted_scanner_processes_in_path_order(tmp_path: Path) -> None:
    expected = sorted(many_files(tmp_path, 300))
    batch = FileProcessor(FileScanner(sort=True), mode="sequential").process_directory(
        tmp_path, lambda f: f.path_str)
    assert batch.successful_results() == expected


def test_ctrl_c_stops_the_walk_and_the_workers(tmp_path: Path) -> None:
    many_files(tmp_path / "data", 30_000, per_dir=5)
    script = write(tmp_path / "walk.py", textwrap.dedent("""
        import sys, threading, time
        from parallel_file_processor import FileProcessor, BatchInterrupted
        def slow(f):
            time.sleep(0.001)
            return 1
        print("start", flush=True)
        t0 = time.monotonic()
        try:
            FileProcessor(mode="thread_pool", max_workers=4).process_directory(sys.argv[1], slow)
        except BatchInterrupted as exc:
            b = exc.result
            left = [t.name for t in threading.enumerate() if t.name.startswith("pfp-scan")]
            print("interrupted", b.successful, b.cancelled, "walkers", len(left), flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert "interrupted" in out, err[-2000:]
    words = out.split()
    assert int(words[words.index("interrupted") + 1]) > 0
    assert words[-1] == "0", "the walk thread was still running"


def test_stream_close_stops_the_walk(tmp_path: Path) -> None:
    many_files(tmp_path, 5000, per_dir=5)
    stream = FileScanner().stream(tmp_path, batch_size=10)
    first = next(stream.batches())
    assert 0 < len(first) <= 10
    stream.close()
    assert not any(t.name == "pfp-scan" for t in threading.enumerate())


def test_missing_root_fails_at_once_for_a_stream(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileScanner().stream(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        FileProcessor().process_directory(tmp_path / "missing", lambda f: 1)


# --- FileInfo keeps the seed's behaviour ------------------------------------------------------


def test_fileinfo_is_the_seeds(tmp_path: Path) -> None:
    p = write(tmp_path / "sub" / "Data.CSV", "a,b\n1,2\n")
    [info] = FileScanner().list_files(tmp_path)
    assert isinstance(info.path, Path) and info.path == p
    assert (info.size_bytes, info.extension, info.relative_path) == (8, ".csv", "sub/Data.CSV")
    assert info.modified_time == pytest.approx(p.stat().st_mtime)
    assert info == FileInfo.from_path(p, tmp_path)
    assert info == pickle.loads(pickle.dumps(info)) == copy.deepcopy(info)
    assert len({info, FileInfo.from_path(p, tmp_path)}) == 1
    assert os.fspath(info) == str(p) and info.name == "Data.CSV"
    assert info.read_text() == "a,b\n1,2\n" and info.read_bytes() == b"a,b\n1,2\n"
    made = FileInfo(path=p, size_bytes=8, modified_time=1.0, extension=".csv")
    assert made.relative_path is None and made.path is p
    made.relative_path = "x"
    made.path = str(tmp_path)
    assert made.relative_path == "x" and made.path == tmp_path
    assert "FileInfo(path=PosixPath(" in repr(info) and "relative_path='sub/Data.CSV'" in repr(info)
    match info:
        case FileInfo(path=path, size_bytes=8):
            assert path == p
        case _:
            pytest.fail("match by field")


def test_fileinfo_read_errors_are_pythons(tmp_path: Path) -> None:
    gone = FileInfo(tmp_path / "gone.txt", 3, 0.0, ".txt")
    with pytest.raises(FileNotFoundError) as err:
        gone.read_bytes()
    assert err.value.filename == str(tmp_path / "gone.txt")


@given(st.lists(st.text(alphabet="abcé_-. ", min_size=1, max_size=12), min_size=1, max_size=8,
                unique=True))
def test_relative_paths_match_pathlib(tmp_path_factory: pytest.TempPathFactory,
                                      names: list[str]) -> None:
    root = tmp_path_factory.mktemp("rel")
    made = []
    for i, n in enumerate(names):
        n = n.strip() or "x"
        if n in (".", ".."):
            n = f"n{i}"
        p = root / f"d{i % 3}" / f"{n}{i}"
        write(p, "x")
        made.append(p)
    got = {f.relative_path: f for f in FileScanner().list_files(root)}
    assert set(got) == {str(p.relative_to(root)) for p in made}
    for rel, f in got.items():
        assert f.path == root / rel and f.extension == (root / rel).suffix.lower()


def test_in_process_modes_get_the_objects_the_scanner_made(tmp_path: Path) -> None:
    many_files(tmp_path, 50)
    ids: set[int] = set()
    FileProcessor(mode=ProcessingMode.THREAD_POOL).process_directory(
        tmp_path, lambda f: ids.add(id(f)))
    assert len(ids) == 50


# --- read-ahead while walking ------------------------------------------------------------------


def test_read_ahead_hands_over_every_files_bytes(tmp_path: Path) -> None:
    expected = many_files(tmp_path, 500)
    (tmp_path / "big.bin").write_bytes(b"b" * 5000)
    stream = FileScanner().stream(tmp_path, read_ahead=4096)
    seen = {}
    for info in stream:
        assert info.prefetched == (info.size_bytes <= 4096)
        seen[info.path_str] = info.read_bytes()
        assert not info.prefetched, "handed over once"
    assert seen.pop(str(tmp_path / "big.bin")) == b"b" * 5000, "too large: read when asked"
    assert set(seen) == expected
    assert all(seen[p] == Path(p).read_bytes() for p in expected)
    assert stream.read_ahead_bytes == 0


def test_read_ahead_stays_within_its_budget_when_nothing_is_read(tmp_path: Path) -> None:
    for i in range(200):
        write(tmp_path / f"d{i // 10}" / f"f{i}.bin", bytes([i % 256]) * 1000)
    stream = FileScanner().stream(tmp_path, read_ahead=1 << 20, read_budget=10_000)
    held = []
    peak = 0
    for info in stream:  # kept, never read: the walk goes on, reading no more ahead
        held.append(info)
        peak = max(peak, stream.read_ahead_bytes)
    assert len(held) == 200 and peak <= 10_000
    assert 0 < sum(f.prefetched for f in held) <= 10
    assert all(f.read_bytes() == Path(f.path_str).read_bytes() for f in held)
    assert stream.read_ahead_bytes == 0


@pytest.mark.parametrize("mode", ["sequential", "thread_pool", "async"])
def test_prefetch_while_walking_gives_what_reading_gives(tmp_path: Path, mode: str) -> None:
    expected = many_files(tmp_path, 800)
    os.mkfifo(tmp_path / "pipe.txt")

    def head(f: FileInfo) -> bytes:
        return f.read_bytes()

    plain = FileProcessor(mode=mode).process_directory(tmp_path, head)
    ahead = FileProcessor(mode=mode, prefetch=True, prefetch_bytes=20_000).process_directory(
        tmp_path, head)
    by_path = {r.file_info.path_str: r.result for r in ahead.results if r.success}
    assert by_path == {r.file_info.path_str: r.result for r in plain.results if r.success}
    assert set(by_path) == expected and ahead.failed == plain.failed


def test_prefetched_bytes_the_function_ignores_are_let_go(tmp_path: Path) -> None:
    many_files(tmp_path, 300)
    batch = FileProcessor(mode="sequential", prefetch=True).process_directory(
        tmp_path, lambda f: f.size_bytes)
    assert batch.successful == 300
    assert not any(r.file_info.prefetched for r in batch.results)


def test_fast_paths_are_the_paths_pathlib_makes(tmp_path: Path) -> None:
    many_files(tmp_path / "a b" / "ré", 30)
    for root in (tmp_path, Path(str(tmp_path) + "/"), Path(os.path.relpath(tmp_path))):
        for info in FileScanner().list_files(str(root)):
            slow = Path(info.path_str)
            fast = info.path
            assert type(fast) is type(slow) and fast == slow and hash(fast) == hash(slow)
            assert str(fast) == str(slow) and fast.parts == slow.parts
            assert fast.parent == slow.parent and fast.name == slow.name
            assert pickle.loads(pickle.dumps(fast)) == slow


def test_files_read_ahead_carry_the_metadata_a_listing_gives(tmp_path: Path) -> None:
    many_files(tmp_path, 300)
    write(tmp_path / "big.bin", b"z" * 10_000)
    os.symlink(tmp_path / "big.bin", tmp_path / "link.bin")
    listed = {f.path_str: f for f in FileScanner().list_files(tmp_path)}
    streamed = {f.path_str: f for f in FileScanner().stream(tmp_path, read_ahead=5000)}
    assert streamed == listed, "size, mtime, extension and relative path as a listing has them"
    assert not streamed[str(tmp_path / "big.bin")].prefetched
    assert streamed[str(tmp_path / "link.bin")].size_bytes == 10_000
