"""ZIP extraction: equal to unzip/zipfile on real archives, and every hazard refused alone."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parallel_file_processor import (
    FileProcessor,
    ProcessingMode,
    ResultAggregator,
    extract_zips,
    list_zip,
    zip_frame,
)
from parallel_file_processor.errors import ArchiveError

HAVE_UNZIP = shutil.which("unzip") is not None


# --- helpers ---------------------------------------------------------------------------------


def tree_of(root: Path) -> dict[str, bytes | str]:
    """Every file's bytes (and every link's target) under ``root``, by relative path."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            out[rel] = ("->" + os.readlink(p)) if p.is_symlink() else p.read_bytes()
    return out


def everything_under(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*")}


def raw_zip(entries: list[dict], *, count: int | None = None) -> bytes:
    """A ZIP built byte by byte, so tests can write what zipfile refuses to.

    Entry keys: name (bytes), data (uncompressed), payload (stored bytes; default data),
    method, flags, crc, size, csize, external_attr, offset (central's header offset),
    zip64 (sizes in a zip64 extra field), no_local.
    """
    out = bytearray()
    central = bytearray()
    for e in entries:
        name = e["name"]
        data = e.get("data", b"")
        payload = e.get("payload", data)
        crc = e.get("crc", zlib.crc32(data))
        size = e.get("size", len(data))
        csize = e.get("csize", len(payload))
        method = e.get("method", 0)
        flags = e.get("flags", 0)
        offset = e.get("offset", len(out))
        extra = b""
        size32, csize32 = size, csize
        if e.get("zip64"):
            extra = struct.pack("<HHQQ", 1, 16, size, csize)
            size32 = csize32 = 0xFFFFFFFF
        if not e.get("no_local"):
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, flags, method, 0, 0x21, crc,
                               csize32, size32, len(name), len(extra)) + name + extra + payload
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 45, 45, flags,
                               method, 0, 0x21, crc, csize32, size32, len(name), len(extra), 0,
                               0, 0, e.get("external_attr", 0o644 << 16), offset)
        central += name + extra
    cd_offset = len(out)
    out += central
    n = len(entries) if count is None else count
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def make_zip(path: Path, files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def extract_one(archive: Path, out: Path, **kw):
    [r] = extract_zips([archive], out, **kw)
    return r


def assert_refused(tmp_path: Path, archive: Path, error_type: str, *, contains: str = ""):
    """The archive fails with ``error_type``, and nothing exists anywhere but the archive."""
    before = everything_under(tmp_path)
    out = tmp_path / "out"
    r = extract_one(archive, out)
    assert r.status == "failed", r
    assert r.error_type == error_type, r
    assert contains in r.error, r.error
    after = everything_under(tmp_path)
    assert after - before <= {"out"}, after - before
    assert not any(out.iterdir())
    with pytest.raises(ArchiveError if error_type != "TargetExistsError" else FileExistsError):
        r.raise_for_error()
    return r


# --- normal use ------------------------------------------------------------------------------


def real_archive(tmp_path: Path) -> Path:
    """A wheel-shaped archive of a real installed package (deflated and stored members)."""
    import tqdm

    pkg = Path(tqdm.__file__).parent
    path = tmp_path / "tqdm-x-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for i, f in enumerate(sorted(pkg.rglob("*"))):
            if f.is_file() and "__pycache__" not in f.parts:
                method = zipfile.ZIP_STORED if i % 3 == 0 else zipfile.ZIP_DEFLATED
                z.write(f, f"tqdm/{f.relative_to(pkg).as_posix()}", compress_type=method)
        z.writestr("tqdm-x.dist-info/RECORD", "tqdm/__init__.py,,\n")
    return path


@pytest.mark.skipif(not HAVE_UNZIP, reason="Info-ZIP unzip not installed")
def test_tree_is_byte_identical_to_unzip(tmp_path: Path) -> None:
    archive = real_archive(tmp_path)
    r = extract_one(archive, tmp_path / "ours")
    assert r.status == "extracted" and r.error is None
    ref = tmp_path / "ref"
    subprocess.run(["unzip", "-q", str(archive), "-d", str(ref)], check=True)
    ours = tree_of(r.destination)
    assert ours == tree_of(ref)
    assert r.files_extracted == len(zipfile.ZipFile(archive).namelist())
    assert r.bytes == sum(len(v) for v in ours.values() if isinstance(v, bytes))
    # unzip restores the archive's permission bits and times; so do we.
    for rel in ours:
        a, b = (r.destination / rel).stat(), (ref / rel).stat()
        assert stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode), rel
        assert int(a.st_mtime) == int(b.st_mtime), rel


names = st.lists(st.text("abcXYZ_-.0189 é", min_size=1, max_size=8)
                 .filter(lambda s: s not in (".", "..")), min_size=1, max_size=3
                 ).map("/".join)


@given(files=st.dictionaries(names, st.binary(max_size=3000), min_size=1, max_size=12),
       method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                               zipfile.ZIP_LZMA]))
@settings(max_examples=40)
def test_random_archives_match_zipfile(tmp_path_factory, files, method) -> None:
    # A name that is also a folder of another name is a clash, tested on its own below.
    paths = set(files)
    if any(p.startswith(q + "/") for p in paths for q in paths):
        return
    tmp = tmp_path_factory.mktemp("h")
    archive = make_zip(tmp / "r.zip", files, method)
    r = extract_one(archive, tmp / "out")
    assert r.status == "extracted", r
    assert tree_of(r.destination) == {k: v for k, v in files.items()}
    assert r.files_extracted == len(files)


def test_many_archives_in_parallel_each_in_its_own_folder(tmp_path: Path) -> None:
    src = tmp_path / "zips"
    for i in range(12):
        make_zip(src / f"a{i:02d}.zip", {f"f{j}.txt": f"{i}-{j}".encode() * 50 for j in range(20)})
    seen: list[tuple[int, int]] = []
    results = extract_zips(src, tmp_path / "out", workers=2,
                           progress=lambda done, total: seen.append((done, total)))
    assert [r.archive.name for r in results] == [f"a{i:02d}.zip" for i in range(12)]
    assert all(r.status == "extracted" and r.files_extracted == 20 for r in results)
    assert (tmp_path / "out/a07/f3.txt").read_bytes() == b"7-3" * 50
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"a{i:02d}" for i in range(12)]
    assert seen and seen[-1][0] == seen[-1][1] == sum(r.bytes for r in results)


def test_one_big_archive_with_many_entries(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(1000 + i * 37) for i in range(400)}
    files["big.bin"] = os.urandom(3 << 20)
    archive = make_zip(tmp_path / "big.zip", files)
    r = extract_one(archive, tmp_path / "out", workers=2)
    assert r.status == "extracted"
    assert tree_of(r.destination) == files


def test_zip64_and_bzip2_and_lzma_entries(tmp_path: Path) -> None:
    path = tmp_path / "z64.zip"
    with zipfile.ZipFile(path, "w") as z:
        with z.open("forced64.txt", "w", force_zip64=True) as f:
            f.write(b"zip64 " * 1000)
        z.writestr("b.txt", b"bz" * 5000, compress_type=zipfile.ZIP_BZIP2)
        z.writestr("l.txt", b"lz" * 5000, compress_type=zipfile.ZIP_LZMA)
    r = extract_one(path, tmp_path / "out")
    assert r.status == "extracted", r
    assert (r.destination / "forced64.txt").read_bytes() == b"zip64 " * 1000
    assert (r.destination / "b.txt").read_bytes() == b"bz" * 5000
    assert (r.destination / "l.txt").read_bytes() == b"lz" * 5000


def test_mtimes_and_permissions_kept_without_setuid(tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("tool.sh", date_time=(2001, 2, 3, 4, 5, 6))
        info.external_attr = (stat.S_IFREG | 0o4755) << 16
        z.writestr(info, b"#!/bin/sh\n")
        ro = zipfile.ZipInfo("readonly.txt", date_time=(2010, 1, 1, 0, 0, 0))
        ro.external_attr = (stat.S_IFREG | 0o444) << 16
        z.writestr(ro, b"r")
    r = extract_one(path, tmp_path / "out")
    st_tool = (r.destination / "tool.sh").stat()
    assert stat.S_IMODE(st_tool.st_mode) == 0o755  # setuid dropped, the rest kept
    assert stat.S_IMODE((r.destination / "readonly.txt").stat().st_mode) == 0o444
    assert st_tool.st_mtime == time.mktime((2001, 2, 3, 4, 5, 6, 0, 0, -1))


def test_subset_by_glob(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "s.zip", {"a.csv": b"1", "sub/b.csv": b"2", "sub/c.txt": b"3",
                                            "docs/readme.md": b"4"})
    r = extract_one(archive, tmp_path / "out", members=["*.csv"], exclude_members=["sub/b.*"])
    assert tree_of(r.destination) == {"a.csv": b"1"}
    r2 = extract_one(archive, tmp_path / "out2", members=["sub/*"])
    assert tree_of(r2.destination) == {"sub/b.csv": b"2", "sub/c.txt": b"3"}


def test_layouts_flat_template_and_callable(tmp_path: Path) -> None:
    a = make_zip(tmp_path / "in" / "x" / "a.zip", {"one.txt": b"1"})
    b = make_zip(tmp_path / "in" / "y" / "b.zip", {"two.txt": b"2"})
    flat = extract_zips([a, b], tmp_path / "flat", layout="flat")
    assert all(r.ok for r in flat)
    assert tree_of(tmp_path / "flat") == {"one.txt": b"1", "two.txt": b"2"}
    extract_zips([a, b], tmp_path / "tpl", layout="{parent}/{stem}")
    assert tree_of(tmp_path / "tpl") == {"x/a/one.txt": b"1", "y/b/two.txt": b"2"}
    extract_zips([a], tmp_path / "fn", layout=lambda p: f"from-{p.stem}")
    assert tree_of(tmp_path / "fn") == {"from-a/one.txt": b"1"}
    with pytest.raises(ValueError, match="not inside"):
        extract_zips([a], tmp_path / "esc", layout="../{stem}")


def test_existing_output_error_skip_overwrite(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"new.txt": b"new"})
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "old.txt").write_text("old")
    r = extract_one(archive, out)
    assert r.status == "failed" and r.error_type == "TargetExistsError"
    assert tree_of(out) == {"a/old.txt": b"old"}  # never silently mixed
    assert extract_one(archive, out, if_exists="skip").status == "skipped"
    assert tree_of(out) == {"a/old.txt": b"old"}
    assert extract_one(archive, out, if_exists="overwrite").status == "extracted"
    assert tree_of(out) == {"a/new.txt": b"new"}
    with pytest.raises(ValueError):
        extract_one(archive, out, if_exists="merge")


def test_flat_layout_clash_with_existing_names(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"data.txt": b"new"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.txt").write_text("old")
    assert extract_one(archive, out, layout="flat").error_type == "TargetExistsError"
    assert (out / "data.txt").read_text() == "old"
    assert extract_one(archive, out, layout="flat", if_exists="overwrite").ok
    assert (out / "data.txt").read_text() == "new"


def test_flat_layout_archives_sharing_a_name_never_half_merge(tmp_path: Path) -> None:
    a = make_zip(tmp_path / "a.zip", {"shared.txt": b"from a", "only-a.txt": b"a"})
    b = make_zip(tmp_path / "b.zip", {"only-b.txt": b"b", "shared.txt": b"from b"})
    out = tmp_path / "out"
    first, second = extract_zips([a, b], out, layout="flat")
    assert first.ok and second.error_type == "TargetExistsError"
    assert tree_of(out) == {"shared.txt": b"from a", "only-a.txt": b"a"}  # nothing of b
    out2 = tmp_path / "out2"
    results = extract_zips([a, b], out2, layout="flat", if_exists="overwrite")
    assert all(r.ok for r in results)
    assert tree_of(out2) == {"shared.txt": b"from b", "only-a.txt": b"a", "only-b.txt": b"b"}


def test_seed_extract_all_zips_example(tmp_path: Path) -> None:
    archives = tmp_path / "data" / "archives"
    make_zip(archives / "a.zip", {"1.txt": b"1", "2.txt": b"2"})
    make_zip(archives / "b.zip", {"3.txt": b"3"})
    (archives / "broken.zip").write_bytes(b"PK\x05\x06 garbage")
    processor = FileProcessor(mode=ProcessingMode.THREAD_POOL)
    result = processor.extract_all_zips(directory=archives,
                                        output_directory=tmp_path / "data" / "extracted")
    assert (result.successful, result.failed) == (2, 1)
    assert "ArchiveError" in result.errors[0]
    df = ResultAggregator(result).to_dataframe()
    assert df["result_files_extracted"].sum() == 3
    good = sorted(result.successful_results(), key=lambda d: d["source"])
    assert good[0]["destination"] == str(tmp_path / "data" / "extracted" / "a")


def test_listing_without_extracting(tmp_path: Path) -> None:
    path = tmp_path / "l.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("d/", date_time=(2020, 1, 1, 0, 0, 0)), b"")
        z.writestr(zipfile.ZipInfo("d/x.txt", date_time=(2020, 5, 6, 7, 8, 10)), b"abc" * 100,
                   compress_type=zipfile.ZIP_DEFLATED)
    entries = list_zip(path)
    assert [e.name for e in entries] == ["d/", "d/x.txt"]
    x = entries[1]
    assert (x.size, x.method, x.crc32, x.is_dir) == (300, "deflate", zlib.crc32(b"abc" * 100),
                                                      False)
    assert x.compressed_size == zipfile.ZipFile(path).getinfo("d/x.txt").compress_size
    assert x.mtime is not None and x.mtime.timetuple()[:6] == (2020, 5, 6, 7, 8, 10)
    assert entries[0].is_dir
    assert not (tmp_path / "d").exists()
    (tmp_path / "bad.zip").write_bytes(b"nope")
    df = zip_frame([path, tmp_path / "bad.zip"])
    assert list(df["name"]) == ["d/", "d/x.txt"]
    assert df.attrs["errors"][0][1] == "ArchiveError"
    with pytest.raises(ArchiveError):
        list_zip(tmp_path / "bad.zip")


def test_cp437_names_decode_losslessly_and_bad_utf8_is_clear(tmp_path: Path) -> None:
    cp = raw_zip([{"name": b"caf\x82.txt", "data": b"x"}])  # no UTF-8 flag: CP437
    (tmp_path / "cp.zip").write_bytes(cp)
    r = extract_one(tmp_path / "cp.zip", tmp_path / "out")
    assert r.ok and tree_of(r.destination) == {"café.txt": b"x"}
    bad = raw_zip([{"name": b"ok.txt", "data": b"1"},
                   {"name": b"bad\xff\xfe.txt", "data": b"2", "flags": 0x800}])
    (tmp_path / "bad.zip").write_bytes(bad)
    listed = list_zip(tmp_path / "bad.zip")  # CPython's zipfile cannot even open this one
    assert listed[0].name_error is None and "UTF-8" in (listed[1].name_error or "")
    r = extract_one(tmp_path / "bad.zip", tmp_path / "out")
    assert r.error_type == "UnsafeArchiveError" and "UTF-8" in (r.error or "")


# --- hazards ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    b"../evil.txt", b"a/../../evil.txt", b"/tmp/evil.txt", b"C:/evil.txt", b"C:\\evil.txt",
    b"\\\\server\\share\\evil.txt", b"a\\..\\..\\evil.txt", b"a/\x00/evil.txt", b"",
    b".", b"..", b"a/./b.txt", b"a//b.txt",
])
def test_traversal_names_are_refused_not_rewritten(tmp_path: Path, name: bytes) -> None:
    (tmp_path / "t.zip").write_bytes(raw_zip([{"name": b"fine.txt", "data": b"ok"},
                                              {"name": name, "data": b"evil"}]))
    assert_refused(tmp_path, tmp_path / "t.zip", "UnsafeArchiveError", contains="unsafe")
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"evil"


def test_a_dot_dot_name_is_not_collapsed_like_zipfile_does(tmp_path: Path) -> None:
    (tmp_path / "t.zip").write_bytes(raw_zip([{"name": b"a/../../x", "data": b"evil"}]))
    assert_refused(tmp_path, tmp_path / "t.zip", "UnsafeArchiveError")
    assert not (tmp_path / "out" / "t" / "a" / "x").exists()


def test_existing_link_in_target_cannot_redirect_output(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "sub").symlink_to("../../elsewhere")
    archive = make_zip(tmp_path / "a.zip", {"sub/x.txt": b"payload"})
    assert extract_one(archive, out).error_type == "TargetExistsError"
    assert extract_one(archive, out, if_exists="overwrite").ok
    assert not any(elsewhere.iterdir())
    assert (out / "a" / "sub").is_dir() and not (out / "a" / "sub").is_symlink()
    # The flat layout into a folder holding a link of the same name: replaced, not followed.
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "sub").symlink_to("../elsewhere")
    assert extract_one(archive, flat, layout="flat").error_type == "TargetExistsError"
    assert extract_one(archive, flat, layout="flat", if_exists="overwrite").ok
    assert not any(elsewhere.iterdir())
    assert (flat / "sub" / "x.txt").read_bytes() == b"payload"


def link_entry(name: bytes, target: bytes) -> dict:
    return {"name": name, "data": target, "external_attr": (stat.S_IFLNK | 0o777) << 16}


def test_symlink_entries_inside_are_created_not_followed(tmp_path: Path) -> None:
    (tmp_path / "l.zip").write_bytes(raw_zip([
        {"name": b"real/data.txt", "data": b"d"},
        link_entry(b"link", b"real/data.txt"),
        link_entry(b"real/up", b".."),
    ]))
    r = extract_one(tmp_path / "l.zip", tmp_path / "out")
    assert r.ok, r
    assert os.readlink(r.destination / "link") == "real/data.txt"
    assert (r.destination / "link").read_bytes() == b"d"


@pytest.mark.parametrize("entries", [
    [link_entry(b"up", b"../../etc")],
    [link_entry(b"abs", b"/etc/passwd")],
    [link_entry(b"a/b/l2", b"../../.."), link_entry(b"l1", b"a/b/l2/..")],  # escapes via a chain
    [link_entry(b"sub", b"dir"), {"name": b"sub/x.txt", "data": b"through the link"}],
    [link_entry(b"loop", b"loop/x")],
])
def test_symlink_hazards(tmp_path: Path, entries: list[dict]) -> None:
    (tmp_path / "l.zip").write_bytes(raw_zip(entries))
    assert_refused(tmp_path, tmp_path / "l.zip", "UnsafeArchiveError")


def test_duplicate_names_and_file_folder_clash(tmp_path: Path) -> None:
    (tmp_path / "dup.zip").write_bytes(raw_zip([{"name": b"x.txt", "data": b"1"},
                                                {"name": b"x.txt", "data": b"2"}]))
    assert_refused(tmp_path, tmp_path / "dup.zip", "UnsafeArchiveError", contains="duplicate")
    shutil.rmtree(tmp_path / "out")
    (tmp_path / "clash.zip").write_bytes(raw_zip([{"name": b"a", "data": b"file"},
                                                  {"name": b"a/b.txt", "data": b"2"}]))
    assert_refused(tmp_path, tmp_path / "clash.zip", "UnsafeArchiveError",
                   contains="both a file and a folder")


def test_bomb_limits_total_ratio_and_count(tmp_path: Path) -> None:
    zeros = make_zip(tmp_path / "zeros.zip", {"z.bin": bytes(8 << 20)})
    assert_refused(tmp_path, zeros, "ZipBombError", contains="ratio")
    shutil.rmtree(tmp_path / "out")
    assert extract_one(zeros, tmp_path / "out", max_ratio=10_000).ok  # configurable
    many = make_zip(tmp_path / "many.zip", {f"{i}.txt": b"x" for i in range(50)})
    r = extract_one(many, tmp_path / "out2", max_entries=10)
    assert r.error_type == "ZipBombError" and "max_entries" in r.error
    r = extract_one(many, tmp_path / "out3", max_total_size=20)
    assert r.error_type == "ZipBombError" and "max_total_size" in r.error
    assert not (tmp_path / "out2" / "many").exists() and not (tmp_path / "out3" / "many").exists()


def test_sizes_are_checked_while_inflating(tmp_path: Path) -> None:
    data = b"A" * 100_000
    lying = raw_zip([{"name": b"liar.txt", "data": data, "payload": deflate(data), "method": 8,
                      "size": 1000}])
    (tmp_path / "liar.zip").write_bytes(lying)
    assert_refused(tmp_path, tmp_path / "liar.zip", "ZipBombError", contains="declared size")


def test_overlapping_entries_are_refused(tmp_path: Path) -> None:
    data = b"B" * 50_000
    payload = deflate(data)
    entries = [{"name": b"first.txt", "data": data, "payload": payload, "method": 8}]
    # Two more central entries point at the first one's local header (the "better zip bomb").
    for n in (b"second.txt", b"third.txt"):
        entries.append({"name": n, "data": data, "payload": payload, "method": 8,
                        "offset": 0, "no_local": True})
    (tmp_path / "overlap.zip").write_bytes(raw_zip(entries))
    assert_refused(tmp_path, tmp_path / "overlap.zip", "ZipBombError", contains="overlap")


@pytest.mark.parametrize("case", ["crc", "truncated", "count65535", "zip64_absurd", "method",
                                  "encrypted", "empty", "not_zip"])
def test_corrupt_archives_fail_fast_and_alone(tmp_path: Path, case: str) -> None:
    good = make_zip(tmp_path / "good.zip", {"ok.txt": b"fine"})
    bad = tmp_path / "bad.zip"
    data = b"C" * 10_000
    expect = "ArchiveError"
    if case == "crc":
        bad.write_bytes(raw_zip([{"name": b"a.txt", "data": b"fine"},
                                 {"name": b"b.txt", "data": data, "crc": 1234}]))
    elif case == "truncated":
        full = zipfile_bytes = make_zip(tmp_path / "full.zip", {"x.bin": os.urandom(50_000)})
        bad.write_bytes(full.read_bytes()[: len(zipfile_bytes.read_bytes()) // 2])
        full.unlink()
    elif case == "count65535":
        bad.write_bytes(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 65535, 65535, 0, 0, 0))
    elif case == "zip64_absurd":
        bad.write_bytes(raw_zip([{"name": b"huge.bin", "data": b"x", "zip64": True,
                                  "size": 1 << 62, "csize": 1}]))
        expect = "ZipBombError"
    elif case == "method":
        bad.write_bytes(raw_zip([{"name": b"m.bin", "data": data, "method": 97}]))
    elif case == "encrypted":
        bad.write_bytes(raw_zip([{"name": b"e.bin", "data": data, "flags": 1}]))
    elif case == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_bytes(os.urandom(3000))
    t0 = time.perf_counter()
    results = extract_zips([bad, good], tmp_path / "out")
    elapsed = time.perf_counter() - t0
    assert results[0].status == "failed" and results[0].error_type == expect, results[0]
    assert results[1].ok
    assert everything_under(tmp_path / "out") == {"good", "good/ok.txt"}
    assert elapsed < 30  # a sanity bound against hangs, not a speed claim


def test_failed_archive_leaves_nothing_unless_asked(tmp_path: Path) -> None:
    entries = [{"name": f"f{i}.txt".encode(), "data": b"x" * 1000} for i in range(30)]
    entries.append({"name": b"zz.txt", "data": b"y" * 10, "crc": 1})
    (tmp_path / "p.zip").write_bytes(raw_zip(entries))
    r = extract_one(tmp_path / "p.zip", tmp_path / "out")
    assert r.error_type == "ArchiveError"
    assert not any((tmp_path / "out").iterdir())
    r = extract_one(tmp_path / "p.zip", tmp_path / "out", keep_partial=True)
    assert r.error_type == "ArchiveError"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["p.partial"]


def test_interrupt_leaves_no_half_written_folder(tmp_path: Path) -> None:
    src = tmp_path / "zips"
    for i in range(6):
        make_zip(src / f"a{i}.zip", {f"f{j}.bin": os.urandom(1 << 20) for j in range(8)},
                 zipfile.ZIP_STORED)
    calls = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        extract_zips(src, out, progress=stop, workers=1)
    assert calls
    leftovers = [p.name for p in out.iterdir()]
    # Archives finished before the stop are whole; nothing partial remains.
    assert not [n for n in leftovers if "partial" in n], leftovers
    for name in leftovers:
        assert len(list((out / name).iterdir())) == 8


def test_ctrl_c_in_a_real_process(tmp_path: Path) -> None:
    src = tmp_path / "zips"
    for i in range(4):
        make_zip(src / f"a{i}.zip", {f"f{j}.bin": bytes(8 << 20) for j in range(8)},
                 zipfile.ZIP_STORED)
    out = tmp_path / "out"
    code = (
        "import sys, time\n"
        "from parallel_file_processor import extract_zips\n"
        "print('go', flush=True)\n"
        "extract_zips(sys.argv[1], sys.argv[2], workers=1,\n"
        "             progress=lambda d, t: time.sleep(0.05))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(src), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.05)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=30)
    if proc.returncode == 0:
        pytest.skip("extraction finished before the signal arrived")
    assert "KeyboardInterrupt" in err
    if out.exists():
        assert not [p for p in out.iterdir() if "partial" in p.name]


# --- CLI -------------------------------------------------------------------------------------


def pfp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True)


def test_cli_unzip_and_zipls(tmp_path: Path) -> None:
    src = tmp_path / "zips"
    make_zip(src / "a.zip", {"x/1.txt": b"one", "2.txt": b"two"})
    (src / "evil.zip").write_bytes(raw_zip([{"name": b"../evil", "data": b"e"}]))
    out = tmp_path / "out"
    p = pfp("unzip", str(src), "--out", str(out), "--csv")
    assert p.returncode == 1, p.stderr
    assert "UnsafeArchiveError" in p.stderr and "1 extracted" in p.stderr
    assert tree_of(out) == {"a/x/1.txt": b"one", "a/2.txt": b"two"}
    assert not (tmp_path / "evil").exists()
    p = pfp("unzip", str(src / "a.zip"), "--out", str(out))
    assert p.returncode == 1 and "TargetExistsError" in p.stdout
    p = pfp("unzip", str(src / "a.zip"), "--out", str(out), "--skip-existing", "--json")
    assert p.returncode == 0 and '"status": "skipped"' in p.stdout
    p = pfp("unzip", str(src / "a.zip"), "--out", str(out), "--overwrite", "-m", "*.txt",
            "--max-total-size", "1M")
    assert p.returncode == 0, p.stderr
    p = pfp("zipls", str(src / "a.zip"), "--csv")
    assert p.returncode == 0
    assert p.stdout.splitlines()[0].startswith("name,size,compressed_size,method,crc32")
    assert "x/1.txt,3," in p.stdout
    assert pfp("unzip", str(src), "--out", str(out), "--max-total-size", "lots").returncode == 2
    assert pfp("unzip", str(src)).returncode == 2  # --out is required
