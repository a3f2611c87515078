"""Hashing: digests equal the reference implementations, every bad file is reported, caches,
duplicates and manifests."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from pathlib import Path

import blake3
import crc32c
import pytest
import xxhash
from conftest import run_unprivileged, write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import (
    CacheError,
    find_duplicates,
    hash_files,
    hash_frame,
    verify_manifest,
    write_manifest,
)

REFERENCE = {
    "blake3": lambda d: blake3.blake3(d).hexdigest(),
    "sha256": lambda d: hashlib.sha256(d).hexdigest(),
    "sha1": lambda d: hashlib.sha1(d).hexdigest(),
    "md5": lambda d: hashlib.md5(d).hexdigest(),
    "xxh3_64": lambda d: xxhash.xxh3_64_hexdigest(d),
    "xxh3_128": lambda d: xxhash.xxh3_128_hexdigest(d),
    "crc32c": lambda d: format(crc32c.crc32c(d), "08x"),
}
BUF = 1 << 20  # the core's read buffer


@pytest.mark.parametrize("algorithm", sorted(REFERENCE))
def test_sizes_around_buffer_boundaries(tmp_path: Path, algorithm: str) -> None:
    sizes = [0, 1, BUF - 1, BUF, BUF + 1, 5 * BUF + 3]
    data = {s: os.urandom(s) for s in sizes}
    paths = [write(tmp_path / f"f{s}", data[s]) for s in sizes]
    results = hash_files(paths, algorithm)
    assert [r.path for r in results] == paths, "results come back in input order"
    for r, s in zip(results, sizes):
        assert r.digest == REFERENCE[algorithm](data[s]), (algorithm, s)
        assert r.size == s and r.error is None and not r.changed


@given(blobs=st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
       algorithm=st.sampled_from(sorted(REFERENCE)))
def test_random_content_matches_reference(tmp_path_factory, blobs, algorithm) -> None:
    d = tmp_path_factory.mktemp("h")
    paths = [write(d / f"{i}.bin", b) for i, b in enumerate(blobs)]
    got = [r.digest for r in hash_files(paths, algorithm, workers=2)]
    assert got == [REFERENCE[algorithm](b) for b in blobs]


TOOLS = [("sha256sum", "sha256"), ("sha1sum", "sha1"), ("md5sum", "md5"), ("b3sum", "blake3")]


@pytest.mark.parametrize("tool, algorithm", TOOLS)
def test_digests_equal_the_command_line_tools(tmp_path: Path, tool: str, algorithm: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    files = [write(tmp_path / f"{i}.dat", os.urandom(i * 777)) for i in range(5)]
    out = subprocess.run([tool, *map(str, files)], capture_output=True, text=True, check=True)
    expected = {line.split()[1]: line.split()[0] for line in out.stdout.splitlines()}
    for r in hash_files(files, algorithm):
        assert r.digest == expected[str(r.path)]


def test_xxhsum(tmp_path: Path) -> None:
    if shutil.which("xxhsum") is None:
        pytest.skip("xxhsum not installed")
    f = write(tmp_path / "x.bin", os.urandom(5000))
    out = subprocess.run(["xxhsum", "-H3", str(f)], capture_output=True, text=True, check=True)
    assert hash_files([f], "xxh3_64")[0].digest in out.stdout


def test_directory_with_scanner_filters(tree: Path) -> None:
    res = hash_files(tree, "md5", extensions={".csv"}, exclude=["build"], skip_hidden=True)
    assert {r.relative_path for r in res} == {"a.csv", "B.CSV", "sub/c.csv", "sub/deep/d.csv"}
    for r in res:
        assert r.digest == hashlib.md5(r.path.read_bytes()).hexdigest()
    df = hash_frame(tree, "md5", extensions={".csv"})
    assert set(df.columns) >= {"path", "relative_path", "size", "digest", "error"}
    assert len(df) == 6


def test_bad_inputs_are_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", "ok")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    results = hash_files([good, tmp_path / "vanished.txt", fifo, tmp_path], "sha256")
    assert results[0].digest == hashlib.sha256(b"ok").hexdigest()
    assert results[1].error_type == "FileNotFoundError" and results[1].digest is None
    assert "not a regular file" in (results[2].error or ""), "a FIFO is never read"
    assert results[3].error_type == "IsADirectoryError"
    with pytest.raises(ValueError, match="unknown algorithm"):
        hash_files([good], "rot13")
    with pytest.raises(FileNotFoundError):
        hash_files(tmp_path / "nope")


def test_unreadable_file_as_unprivileged_user(tmp_path: Path) -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pfp-hash-"))
    try:
        os.chmod(base, 0o755)
        ok = write(base / "ok.txt", "fine")
        secret = write(base / "secret.txt", "hidden")
        os.chmod(ok, 0o644)
        os.chmod(secret, 0o000)

        def run() -> list[tuple[str | None, str | None]]:
            return [(r.digest, r.error_type) for r in hash_files([ok, secret], "md5")]

        (d1, e1), (d2, e2) = run_unprivileged(run)
        assert d1 == hashlib.md5(b"fine").hexdigest() and e1 is None
        assert d2 is None and e2 == "PermissionError"
    finally:
        shutil.rmtree(base)


def test_file_growing_while_hashed_is_flagged(tmp_path: Path) -> None:
    path = tmp_path / "growing.log"
    path.write_bytes(b"\0" * (16 * BUF))
    stop = threading.Event()

    def append() -> None:
        with open(path, "ab") as f:
            while not stop.is_set():
                f.write(b"x" * 4096)
                f.flush()

    t = threading.Thread(target=append)
    t.start()
    try:
        flagged = []
        for _ in range(30):
            r = hash_files([path], "sha256")[0]
            if r.changed:
                flagged.append(r)
                break
    finally:
        stop.set()
        t.join()
    assert flagged, "the growth was never seen"
    assert all(r.digest is None and r.error_type == "FileChangedError" for r in flagged), \
        "a file that changed while read gets an error, not a digest"


def test_truncated_while_hashed_is_an_error_never_a_crash(tmp_path: Path) -> None:
    # Large files are hashed through a memory map: a truncation under it must give an error
    # for that file (never SIGBUS), also with faulthandler installed as pytest does.
    code = f"""
import faulthandler, os, threading, time
faulthandler.enable()
from parallel_file_processor import hash_files
path = {str(tmp_path / 'shrinking.bin')!r}
seen = set()
for round in range(20):
    with open(path, 'wb') as f:
        f.write(os.urandom(32 << 20))
    t = threading.Thread(target=lambda: (time.sleep(0.002), os.truncate(path, 4096)))
    t.start()
    r = hash_files([path], 'blake3')[0]
    t.join()
    assert (r.digest is None) == (r.error is not None), r
    seen.add(r.error_type)
print('survived', sorted(map(str, seen)))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "survived" in res.stdout, res.stderr
    assert "FileChangedError" in res.stdout, "the truncation was never caught mid-read"


def test_workers_and_progress(tmp_path: Path) -> None:
    files = [write(tmp_path / f"{i}", os.urandom(1000)) for i in range(50)]
    seen: list[tuple[int, int]] = []
    res = hash_files(files, "blake3", workers=1, progress=lambda d, t: seen.append((d, t)))
    assert len(res) == 50
    assert seen and seen[-1] == (50_000, 50_000)


# --- cache ---------------------------------------------------------------------------------


def test_cache_serves_unchanged_files_and_rehashes_changed_ones(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(10):
        write(data / f"{i}.bin", os.urandom(100 + i))
    cache = tmp_path / "hashes.sqlite"
    first = hash_files(data, "sha256", cache=cache)
    assert not any(r.cached for r in first)
    second = hash_files(data, "sha256", cache=cache)
    assert all(r.cached for r in second)
    assert {r.path: r.digest for r in first} == {r.path: r.digest for r in second}
    changed = data / "3.bin"
    changed.write_bytes(b"new content")
    third = {r.path: r for r in hash_files(data, "sha256", cache=cache)}
    assert not third[changed].cached
    assert third[changed].digest == hashlib.sha256(b"new content").hexdigest()
    # Another algorithm does not reuse sha256 digests.
    assert not any(r.cached for r in hash_files(data, "md5", cache=cache))


def test_corrupt_cache_is_a_clear_error_with_a_way_out(tmp_path: Path) -> None:
    f = write(tmp_path / "x", "x")
    cache = tmp_path / "broken.sqlite"
    cache.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="broken.sqlite"):
        hash_files([f], "md5", cache=cache)
    res = hash_files([f], "md5", cache=cache, rebuild_cache=True)
    assert res[0].digest == hashlib.md5(b"x").hexdigest()
    assert sqlite3.connect(cache).execute("select count(*) from digests").fetchone()[0] == 1


# --- duplicates ------------------------------------------------------------------------------


def reference_duplicates(root: Path) -> list[set[str]]:
    """Size, then full hash, over distinct inodes (plain Python)."""
    by_key: dict[tuple[int, str], set[tuple[int, int]]] = defaultdict(set)
    names: dict[tuple[int, str], set[str]] = defaultdict(set)
    for d, _, files in os.walk(root):
        for f in files:
            p = Path(d, f)
            st = p.stat()
            if st.st_size == 0:
                continue
            key = (st.st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            by_key[key].add((st.st_dev, st.st_ino))
            names[key].add(str(p))
    return sorted((names[k] for k, inodes in by_key.items() if len(inodes) > 1), key=sorted)


@given(contents=st.lists(st.sampled_from([b"", b"a", b"b" * 40000, b"b" * 39999 + b"c",
                                          b"xyz" * 20000, b"a"]), min_size=1, max_size=12))
def test_duplicates_equal_reference(tmp_path_factory, contents) -> None:
    root = tmp_path_factory.mktemp("dupes")
    for i, c in enumerate(contents):
        write(root / f"d{i % 3}" / f"f{i}", c)
    df = find_duplicates(root, partial_bytes=1024)
    got = sorted((set(g["path"]) for _, g in df.groupby("group")), key=sorted)
    assert got == reference_duplicates(root)
    expected_bytes = sum(len(c) * (n - 1) for c, n in
                         {c: contents.count(c) for c in set(contents) if c}.items())
    assert df.attrs["reclaimable_bytes"] == expected_bytes


def test_hard_links_are_links_not_waste(tmp_path: Path) -> None:
    a = write(tmp_path / "a.bin", b"q" * 5000)
    os.link(a, tmp_path / "a_link.bin")
    write(tmp_path / "copy.bin", b"q" * 5000)
    write(tmp_path / "empty1", b"")
    write(tmp_path / "empty2", b"")
    df = find_duplicates(tmp_path)
    assert df.attrs["reclaimable_bytes"] == 5000, "the link frees nothing, the copy does"
    links = df[df["hardlink_of"].notna()]
    assert len(links) == 1
    assert {Path(links.iloc[0]["path"]).name, Path(links.iloc[0]["hardlink_of"]).name} == {
        "a.bin", "a_link.bin"}
    assert not df["path"].str.contains("empty").any(), "empty files are left out by default"
    with_empty = find_duplicates(tmp_path, include_empty=True)
    assert with_empty["path"].str.contains("empty").sum() == 2


# --- manifests -----------------------------------------------------------------------------


def test_manifest_round_trip_and_reference_tools(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(5):
        write(data / f"sub{i % 2}" / f"file {i}.txt", f"content {i}")
    manifest = write_manifest(data, data / "SHA256SUMS", algorithm="sha256")
    text = manifest.read_text()
    assert "  sub0/file 0.txt\n" in text and "SHA256SUMS" not in text
    res = verify_manifest(manifest)
    assert res.all_ok and res.ok == 5 and res.algorithm == "sha256"
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=data, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    if shutil.which("b3sum"):
        write_manifest(data, data / "sums.b3")
        check = subprocess.run(["b3sum", "-c", "sums.b3"], cwd=data, capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_verify_reports_failed_missing_and_malformed(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write(tmp_path / name, name)
    manifest = write_manifest(tmp_path, tmp_path / "list.md5", algorithm="md5")
    (tmp_path / "b").write_text("changed")
    (tmp_path / "c").unlink()
    with open(manifest, "a") as f:
        f.write("not a manifest line\n")
        f.write("zzzz  name-with-bad-digest\n")
    res = verify_manifest(manifest)
    status = {name: s for name, _, s, _, _ in res.entries}
    assert status == {"a": "OK", "b": "FAILED", "c": "MISSING"}
    assert [n for n, _ in res.malformed] == [4, 5]
    assert not res.all_ok
    df = res.to_dataframe()
    assert list(df["status"]) == ["OK", "FAILED", "MISSING"]


def test_verify_reads_manifests_the_tools_wrote(tmp_path: Path) -> None:
    for i in range(3):
        write(tmp_path / f"f{i}", os.urandom(300))
    names = [f"f{i}" for i in range(3)]
    for tool, name, algo in (("sha256sum", "SHA256SUMS", "sha256"), ("b3sum", "B3SUMS", "blake3"),
                             ("md5sum", "MD5SUMS", "md5")):
        if shutil.which(tool) is None:
            continue
        out = subprocess.run([tool, *names], cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout
        (tmp_path / name).write_text(out)
        res = verify_manifest(tmp_path / name)
        assert res.algorithm == algo and res.all_ok and res.ok == 3
    # BSD style (`sha256sum --tag`).
    if shutil.which("sha256sum"):
        out = subprocess.run(["sha256sum", "--tag", *names], cwd=tmp_path, capture_output=True,
                             text=True, check=True).stdout
        (tmp_path / "tagged.txt").write_text(out)
        res = verify_manifest(tmp_path / "tagged.txt")
        assert res.algorithm == "sha256" and res.all_ok


def test_names_with_newlines_are_escaped_like_coreutils(tmp_path: Path) -> None:
    odd = write(tmp_path / "odd\nname\\x", "odd")
    manifest = write_manifest([odd], tmp_path / "m.sha256", algorithm="sha256")
    assert manifest.read_text().startswith("\\")
    assert verify_manifest(manifest).all_ok
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "m.sha256"], cwd=tmp_path,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout


# --- CLI -----------------------------------------------------------------------------------


def pfp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_cli_hash_dupes_verify(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "a.txt", "same")
    write(data / "b.txt", "same")
    write(data / "c.txt", "different")
    res = pfp("hash", str(data), "--algo", "sha256", "--csv", "--manifest",
              str(tmp_path / "SHA256SUMS"))
    assert res.returncode == 0, res.stderr
    assert hashlib.sha256(b"same").hexdigest() in res.stdout
    dup = pfp("dupes", str(data), "--json")
    assert dup.returncode == 0 and dup.stdout.count('"group": 0') == 2
    ok = pfp("verify", str(tmp_path / "SHA256SUMS"))
    assert ok.returncode == 0 and "3 OK" in ok.stderr
    (data / "c.txt").unlink()
    bad = pfp("verify", str(tmp_path / "SHA256SUMS"))
    assert bad.returncode == 1 and "MISSING" in bad.stdout
    assert pfp("hash", str(tmp_path / "missing")).returncode == 2


def test_native_jobs_work_in_a_forked_child(tmp_path: Path) -> None:
    # multiprocessing's default start method on Linux before Python 3.14 is fork: a child
    # forked after the parent used the native pool must build a pool of its own, and hash and
    # scan. This forks a process whose only other threads are that idle pool (the case under
    # test), in a fresh interpreter: never the test process, whose other threads could hold a
    # lock the child then waits for forever.
    files = [write(tmp_path / f"{i}", str(i)) for i in range(20)]
    code = textwrap.dedent("""
        import multiprocessing, sys, warnings
        from pathlib import Path
        from parallel_file_processor import hash_files, scan

        def child_hash(paths):
            scan(Path(paths[0]).parent)
            return hash_files(paths, "sha256")[0].digest

        if __name__ == "__main__":
            files = sys.argv[1:]
            hash_files(files, "sha256")
            with warnings.catch_warnings():
                # Python 3.12+ warns that this process has threads: the pool's, on purpose.
                warnings.filterwarnings("ignore", "This process", DeprecationWarning)
                with multiprocessing.get_context("fork").Pool(2) as pool:
                    print(pool.map(child_hash, [[f] for f in files], chunksize=5))
    """)
    script = write(tmp_path / "forked.py", code)
    res = subprocess.run([sys.executable, str(script), *map(str, files)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == str([hashlib.sha256(str(i).encode()).hexdigest()
                                      for i in range(20)])


def test_symbolic_links_are_never_copies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "a.bin", b"same content" * 100)
    write(data / "b.bin", b"same content" * 100)
    write(data / "c.bin", b"only one" * 100)
    os.symlink(data / "a.bin", data / "a.link")
    os.symlink(data / "c.bin", data / "c.link")
    df = find_duplicates(data)
    assert sorted(Path(p).name for p in df["path"]) == ["a.bin", "b.bin"]
    assert df.attrs["reclaimable_bytes"] == 1200 and df.attrs["links_skipped"] == 2
    out = pfp("dupes", str(data), "--json")
    assert out.returncode == 0, out.stderr
    assert sorted(Path(json.loads(x)["path"]).name for x in out.stdout.splitlines()) == [
        "a.bin", "b.bin"]


def test_native_duplicate_rows_match_the_frame(tmp_path: Path) -> None:
    from parallel_file_processor.commands._output import write_frame

    data = tmp_path / "data"
    for i in range(30):
        write(data / f"d{i % 4}" / f"f{i}.bin", bytes([i % 5]) * (1000 + i % 5))
    os.link(data / "d0" / "f0.bin", data / "hard.bin")
    df = find_duplicates(data)
    for flag, fmt in (([], "table"), (["--csv"], "csv")):
        expected = io.StringIO()
        write_frame(df, fmt, expected)
        got = pfp("dupes", str(data), *flag)
        assert got.returncode == 0 and got.stdout == expected.getvalue(), got.stderr


def test_unreadable_folders_are_failures_of_hashes_and_manifests(open_tmp: Path) -> None:
    from conftest import unprivileged_prefix

    t = open_tmp / "t"
    write(t / "ok.txt", "fine")
    write(t / "locked" / "inside.txt", "hidden")
    os.chmod(t / "locked", 0o000)
    try:
        def run() -> tuple[list[tuple[str, str | None]], str]:
            from parallel_file_processor import ManifestError, write_manifest

            rows = [(r.path_str, r.error_type) for r in hash_files(t, "sha256")]
            try:
                write_manifest(t, open_tmp / "SUMS", algorithm="sha256")
            except ManifestError as exc:
                return rows, str(exc)
            return rows, "no error"

        rows, manifest_error = run_unprivileged(run)
        assert (str(t / "ok.txt"), None) in rows
        assert (str(t / "locked"), "PermissionError") in rows, "the folder is a failed result"
        assert str(t / "locked") in manifest_error
        cli = subprocess.run(
            [*unprivileged_prefix(), sys.executable, "-m", "parallel_file_processor", "hash",
             str(t), "--manifest", str(open_tmp / "SUMS2")],
            capture_output=True, text=True, timeout=120)
        assert cli.returncode == 1, cli.stderr
        assert str(t / "locked") in cli.stderr and "Traceback" not in cli.stderr
        assert (open_tmp / "SUMS2").read_text().count("\n") == 1, "the readable file is there"
    finally:
        os.chmod(t / "locked", 0o755)


def test_a_killed_cached_run_keeps_what_it_hashed(tmp_path: Path) -> None:
    # The cache commits while hashing: after kill -9, a re-run hashes only what is left.
    data = tmp_path / "data"
    for i in range(6000):
        write(data / f"d{i % 50}" / f"f{i}.bin", os.urandom(64))
    cache = tmp_path / "cache.sqlite"
    code = (f"import os, signal, threading\n"
            f"from parallel_file_processor import hash_files\n"
            f"def cb(done, total):\n"
            f"    if done >= 64 * 4200: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"hash_files({str(data)!r}, cache={str(cache)!r}, progress=cb, workers=1)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert res.returncode == -9, res.stderr
    kept = sqlite3.connect(cache).execute("SELECT count(*) FROM digests").fetchone()[0]
    assert kept >= 4096, "digests were committed while hashing"
    again = hash_files(data, cache=cache)
    assert len(again) == 6000 and sum(r.cached for r in again) == kept
    assert all(r.digest == blake3.blake3((Path(r.path_str)).read_bytes()).hexdigest()
               for r in again)


def test_a_manifest_with_malformed_lines_checks_the_rest(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "alpha")
    b = write(tmp_path / "b.txt", "beta")
    good = [f"{blake3.blake3(p.read_bytes()).hexdigest()}  {p.name}" for p in (a, b)]
    manifest = tmp_path / "CHECKSUMS"
    manifest.write_text("\n".join([good[0], "abc123  c.txt", "not a line at all", good[1]])
                        + "\n")
    res = verify_manifest(manifest)
    assert res.algorithm == "blake3" and res.ok == 2 and res.failed == 0
    assert [n for n, _ in res.malformed] == [2, 3]
    cli = pfp("verify", str(manifest))
    assert cli.returncode == 1, cli.stderr
    assert "CHECKSUMS:2: malformed line" in cli.stderr and "CHECKSUMS:3" in cli.stderr
    assert "a.txt: OK" in cli.stdout and "b.txt: OK" in cli.stdout
