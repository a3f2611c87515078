"""The scanner: seed API, filters against a plain-Python reference, and every hazard."""

from __future__ import annotations

import fnmatch
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import parallel_file_processor as pfp
import pytest
from conftest import run_unprivileged, write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import FileInfo, FileScanner, scan, scan_frame


def rels(files) -> set[str]:
    return {f.relative_path for f in files}


# --- the seed API, as written -------------------------------------------------------------


def test_seed_scanner_api(tree: Path) -> None:
    scanner = FileScanner(["*.csv"], ["*_backup*"], {".csv"}, 0, None, True)
    gen = scanner.scan(tree)
    assert hasattr(gen, "__next__"), "scan() is a generator, as in the seed"
    found = list(gen)
    assert all(isinstance(f, FileInfo) for f in found)
    assert rels(found) == {"a.csv", ".hidden.csv", "sub/c.csv", "sub/deep/d.csv"}
    assert scanner.count(tree) == 4
    assert rels(scanner.list_files(tree)) == rels(found)
    c = next(f for f in found if f.relative_path == "sub/c.csv")
    assert c.path == tree / "sub" / "c.csv"
    assert c.size_bytes == 300 and c.extension == ".csv"
    assert c.modified_time == pytest.approx(c.path.stat().st_mtime, abs=1e-3)


def test_fileinfo_from_path_matches_scanner(tree: Path) -> None:
    p = tree / "sub" / "c.csv"
    info = FileInfo.from_path(p, tree)
    scanned = next(f for f in FileScanner().list_files(tree) if f.path == p)
    assert info.size_bytes == scanned.size_bytes == 300
    assert info.relative_path == scanned.relative_path == "sub/c.csv"
    assert info.extension == ".csv"
    assert FileInfo.from_path(p).relative_path is None
    assert info.read_bytes() == b"x" * 300 and info.read_text() == "x" * 300


def test_missing_root_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        FileScanner().list_files(tmp_path / "nope")


def test_root_that_is_a_file_raises_value_error(tree: Path) -> None:
    with pytest.raises(ValueError, match="Not a directory"):
        FileScanner().list_files(tree / "a.csv")
    with pytest.raises(NotADirectoryError):
        scan(tree / "a.csv")
    with pytest.raises(pfp.RootNotADirectoryError):
        scan_frame(tree / "a.csv")


def test_bad_glob_is_a_pattern_error(tree: Path) -> None:
    with pytest.raises(pfp.PatternError, match=r"\["):
        FileScanner(["[abc"]).list_files(tree)


# --- filters ------------------------------------------------------------------------------


def test_extensions_case_insensitive_and_without_dot(tree: Path) -> None:
    a = rels(FileScanner(extensions={"csv"}).list_files(tree))
    b = rels(FileScanner(extensions={".CSV"}).list_files(tree))
    assert a == b and "B.CSV" in a and "notes.txt" not in a


def test_path_globs_match_relative_paths(tree: Path) -> None:
    assert rels(scan(tree, include=["sub/*.csv"])) == {"sub/c.csv"}
    assert rels(scan(tree, include=["sub/**/*.csv"])) == {"sub/c.csv", "sub/deep/d.csv"}
    assert rels(scan(tree, include=["**/d.csv"])) == {"sub/deep/d.csv"}


def test_excluded_directories_are_not_descended(tree: Path) -> None:
    found = rels(scan(tree, exclude=["sub"]))
    assert not any(r.startswith("sub/") for r in found)
    assert "build/x_backup.csv" in found


def test_hidden_depth_recursion_size_and_sort(tree: Path) -> None:
    assert ".hidden.csv" in rels(scan(tree))
    assert ".hidden.csv" not in rels(scan(tree, skip_hidden=True))
    assert rels(scan(tree, recursive=False)) == {"a.csv", "B.CSV", "notes.txt", ".hidden.csv"}
    assert "sub/c.csv" in rels(scan(tree, max_depth=2))
    assert "sub/deep/d.csv" not in rels(scan(tree, max_depth=2))
    assert rels(scan(tree, min_size=100, max_size=250)) == {"B.CSV"}
    paths = [f.path for f in scan(tree, sort=True)]
    assert paths == sorted(paths, key=lambda p: os.fsencode(p))


def test_modified_window(tree: Path) -> None:
    old = tree / "a.csv"
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert "a.csv" not in rels(scan(tree, modified_after=1_500_000_000))
    assert rels(scan(tree, modified_before=1_500_000_000)) == {"a.csv"}
    from datetime import datetime, timezone

    cut = datetime(2010, 1, 1, tzinfo=timezone.utc)
    assert rels(scan(tree, modified_before=cut)) == {"a.csv"}


def test_several_roots_in_one_call(tmp_path: Path) -> None:
    write(tmp_path / "r1" / "x.txt", "1")
    write(tmp_path / "r2" / "y.txt", "2")
    res = scan(tmp_path / "r1", tmp_path / "r2", sort=True)
    assert [f.relative_path for f in res] == ["x.txt", "y.txt"]


def test_single_and_multi_threaded_walks_agree(tmp_path: Path) -> None:
    for d in range(60):
        for f in range(5):
            write(tmp_path / f"d{d % 7}" / f"e{d}" / f"f{f}.dat", b"z" * f)
    one = [f.path for f in scan(tmp_path, sort=True, threads=1)]
    many = [f.path for f in scan(tmp_path, sort=True, threads=4)]
    assert one == many and len(one) == 300


def test_scan_frame_matches_list_files(tree: Path) -> None:
    df = scan_frame(tree, sort=True)
    files = scan(tree, sort=True).files
    assert list(df["path"]) == [str(f.path) for f in files]
    assert list(df["relative_path"]) == [f.relative_path for f in files]
    assert list(df["size_bytes"]) == [f.size_bytes for f in files]
    assert list(df["extension"]) == [f.extension for f in files]
    assert df["modified_time"].tolist() == pytest.approx([f.modified_time for f in files])
    assert str(df["size_bytes"].dtype) == "int64"


def test_progress_callback_reports_entries(tree: Path) -> None:
    seen: list[tuple[int, int]] = []
    res = scan(tree, progress=lambda done, total: seen.append((done, total)))
    assert seen, "the callback is called at least once"
    assert seen[-1][0] == res.entries_seen >= len(res.files)


# --- hazards: never abort, report ---------------------------------------------------------


def test_permission_denied_directory_is_reported_not_fatal(tmp_path: Path) -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pfp-perm-"))
    try:
        os.chmod(base, 0o755)
        write(base / "ok" / "a.txt", "a")
        write(base / "locked" / "secret.txt", "s")
        for d in (base / "ok", base / "locked"):
            os.chmod(d, 0o755)
        os.chmod(base / "ok" / "a.txt", 0o644)
        os.chmod(base / "locked", 0o000)

        def run() -> tuple[set[str], list[tuple[str, str]]]:
            res = scan(base)
            return rels(res), [(str(e.path), e.error_type) for e in res.errors]

        found, errors = run_unprivileged(run)
        assert found == {"ok/a.txt"}
        assert (str(base / "locked"), "PermissionError") in errors
    finally:
        os.chmod(base / "locked", 0o755)
        import shutil

        shutil.rmtree(base)


def test_symlink_loop_is_reported_and_terminates(tree: Path) -> None:
    os.symlink(tree, tree / "sub" / "loop")
    res = scan(tree, follow_symlinks=True)
    assert any(e.error_type == "SymlinkLoopError" for e in res.errors)
    assert "sub/c.csv" in rels(res)
    # Not following: the link to a directory is simply not entered.
    assert not any("loop" in r for r in rels(scan(tree)))


def test_self_referencing_link_is_reported(tree: Path) -> None:
    os.symlink("self.csv", tree / "self.csv")
    res = scan(tree)
    assert any(e.path.name == "self.csv" and e.error_type == "SymlinkLoopError" for e in res.errors)


def test_broken_symlink_is_reported(tree: Path) -> None:
    os.symlink(tree / "missing.csv", tree / "broken.csv")
    os.symlink(tree / "a.csv", tree / "good_link.csv")
    res = scan(tree)
    assert any(e.path == tree / "broken.csv" and e.error_type == "FileNotFoundError"
               for e in res.errors)
    assert "good_link.csv" in rels(res), "links to files are listed, like Path.is_file()"


def test_fifo_is_never_opened_and_reported_by_type(tree: Path) -> None:
    fifo = tree / "pipe.csv"
    os.mkfifo(fifo)
    res = scan(tree, extensions={".csv"})  # would hang forever if the FIFO were opened
    assert fifo not in {f.path for f in res}
    assert (fifo, "fifo") in res.special
    assert fifo in {f.path for f in scan(tree, include_special=True)}


def test_socket_is_reported_by_type(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    sock_path = root / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        res = scan(root)
    assert res.files == [] and (sock_path, "socket") in res.special


def test_non_utf8_names_round_trip(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.csv"
    with open(raw, "wb") as f:
        f.write(b"bytes")
    [info] = scan(tmp_path).files
    assert os.fsencode(info.path) == raw
    assert info.read_bytes() == b"bytes"  # the path opens again
    df = scan_frame(tmp_path)
    assert os.fsencode(df["path"][0]) == raw
    assert open(df["path"][0], "rb").read() == b"bytes"


def test_very_deep_tree_has_no_recursion_or_fd_exhaustion(tmp_path: Path) -> None:
    # 1,500 levels: deeper than Python's recursion limit and than PATH_MAX allows to open by path
    # in one go, so the tree is built with relative chdir steps.
    depth = 1500
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        cur = os.dup(fd)
        for _ in range(depth):
            os.mkdir("d", dir_fd=cur)
            nxt = os.open("d", os.O_RDONLY, dir_fd=cur)
            os.close(cur)
            cur = nxt
        leaf = os.open("leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=cur)
        os.write(leaf, b"deep")
        os.close(leaf)
        os.close(cur)
    finally:
        os.close(fd)
    try:
        res = scan(tmp_path)
        assert len(res.files) == 1
        assert res.files[0].relative_path.count("/") == depth
        assert not res.errors
    finally:
        _remove_deep_chain(tmp_path, depth)


def _remove_deep_chain(base: Path, depth: int) -> None:
    """Delete base/d/d/.../leaf.txt one level at a time (shutil.rmtree recurses, and pytest's
    own clean-up of old temp dirs would hit RecursionError on it)."""
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(depth - 1):
            os.rename("d/d", "d.next", src_dir_fd=fd, dst_dir_fd=fd)
            os.rmdir("d", dir_fd=fd)
            os.rename("d.next", "d", src_dir_fd=fd, dst_dir_fd=fd)
        os.unlink("d/leaf.txt", dir_fd=fd)
        os.rmdir("d", dir_fd=fd)
    finally:
        os.close(fd)


def test_directories_deleted_during_scan_never_abort(tmp_path: Path) -> None:
    for d in range(40):
        for f in range(20):
            write(tmp_path / f"d{d}" / f"sub{f % 4}" / f"f{f}.txt", "x")
    stop = threading.Event()

    def churn() -> None:
        import shutil

        i = 0
        while not stop.is_set():
            victim = tmp_path / f"d{i % 40}"
            shutil.rmtree(victim, ignore_errors=True)
            for f in range(20):
                write(victim / f"sub{f % 4}" / f"f{f}.txt", "x")
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(30):
            res = scan(tmp_path)
            assert all(e.error_type in {"FileNotFoundError", "NotADirectoryError"}
                       for e in res.errors), res.errors
            assert all(f.relative_path.startswith("d") for f in res)
    finally:
        stop.set()
        t.join()


def test_ctrl_c_stops_a_huge_scan(tmp_path: Path) -> None:
    # Scanning /usr forty times takes many seconds; SIGINT must end it promptly.
    code = (
        "import sys, parallel_file_processor as p\n"
        "print('start', flush=True)\n"
        "try:\n"
        "    p.scan(*(['/usr'] * 40), progress=lambda d, t: None)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True); sys.exit(3)\n"
        "print('finished', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start"
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    if "finished" in out:
        pytest.skip("the scan finished before the signal arrived")
    assert proc.returncode == 3 and "interrupted" in out
    assert elapsed < 5, f"took {elapsed:.2f}s to stop"


# --- property: equals a plain-Python reference ----------------------------------------------

NAMES = st.sampled_from(["a", "b", "data", ".h", "x_backup", "Report", "c"])
EXTS = st.sampled_from(["", ".csv", ".CSV", ".txt", ".json", ".tar.gz"])
FILE = st.tuples(st.lists(NAMES, max_size=3), NAMES, EXTS, st.integers(0, 300))
PATTERNS = st.sampled_from(["*", "*.csv", "a*", "*_backup*", "data*", "[ab]*", "?.txt", ".*"])


def reference(root: Path, include, exclude, extensions, min_size, max_size, recursive,
              skip_hidden, max_depth=None) -> set[str]:
    """os.walk + fnmatch: the seed's semantics, with excluded/hidden dirs not entered."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [
            d for d in dirnames
            if recursive
            and not (skip_hidden and d.startswith("."))
            and not any(fnmatch.fnmatchcase(d, p) for p in exclude)
        ]
        for name in filenames:
            if skip_hidden and name.startswith("."):
                continue
            if include and not any(fnmatch.fnmatchcase(name, p) for p in include):
                continue
            if any(fnmatch.fnmatchcase(name, p) for p in exclude):
                continue
            if extensions and Path(name).suffix.lower() not in extensions:
                continue
            size = os.stat(Path(dirpath, name)).st_size
            if size < min_size or (max_size is not None and size > max_size):
                continue
            rel = str(rel_dir / name) if str(rel_dir) != "." else name
            if max_depth is None or rel.count("/") + 1 <= max_depth:
                out.add(rel)
    return out


@given(
    files=st.lists(FILE, min_size=0, max_size=25),
    include=st.lists(PATTERNS, max_size=2),
    exclude=st.lists(PATTERNS.filter(lambda p: p != "*"), max_size=2),
    extensions=st.sets(st.sampled_from([".csv", ".txt", ".gz"]), max_size=2),
    min_size=st.integers(0, 200),
    max_size=st.one_of(st.none(), st.integers(0, 300)),
    recursive=st.booleans(),
    skip_hidden=st.booleans(),
    max_depth=st.one_of(st.none(), st.integers(1, 4)),
)
def test_scanner_equals_python_reference(tmp_path_factory, files, include, exclude, extensions,
                                         min_size, max_size, recursive, skip_hidden,
                                         max_depth) -> None:
    root = tmp_path_factory.mktemp("prop")
    for dirs, name, ext, size in files:
        p = root.joinpath(*[f"{d}_d" for d in dirs], name + ext)
        if not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            p.write_bytes(b"\0" * size)
    expected = reference(root, include, exclude, extensions, min_size, max_size, recursive,
                         skip_hidden, max_depth)
    scanner = FileScanner(include or None, exclude or None, extensions or None, min_size,
                          max_size, recursive, skip_hidden=skip_hidden, max_depth=max_depth)
    assert rels(scanner.list_files(root)) == expected
    assert len(scan_frame(root, include=include or None, exclude=exclude or None,
                          extensions=extensions or None, min_size=min_size, max_size=max_size,
                          recursive=recursive, skip_hidden=skip_hidden,
                          max_depth=max_depth)) == len(expected)


def test_same_file_system_does_not_cross_mount_points() -> None:
    # /dev/shm is a tmpfs mounted inside /dev on Linux: a ready-made mount point.
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat("/dev").st_dev == os.stat(shm).st_dev:
        pytest.skip("no separate /dev/shm mount here")
    import tempfile

    with tempfile.NamedTemporaryFile(dir=shm, prefix="pfp-mount-", suffix=".bin") as f:
        marker = Path(f.name)
        crossing = {x.path for x in scan("/dev", include=["pfp-mount-*"])}
        staying = {x.path for x in scan("/dev", include=["pfp-mount-*"], same_file_system=True)}
    assert marker in crossing
    assert marker not in staying
