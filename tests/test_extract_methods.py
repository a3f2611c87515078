"""xz (method 95) and PPMd (method 98) entries, as WinZip's .zipx and 7-Zip write them:
byte-identical to libarchive's bsdtar, and under the same zip-bomb limits."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from parallel_file_processor import extract_zips, list_zip

SEVEN_ZIP = shutil.which("7z") or shutil.which("7za") or shutil.which("7zz")
BSDTAR = shutil.which("bsdtar")

needs_7z = pytest.mark.skipif(
    SEVEN_ZIP is None, reason="7z not installed (Debian: p7zip-full), needed to write xz/PPMd zips")
needs_bsdtar = pytest.mark.skipif(
    BSDTAR is None, reason="bsdtar not installed (Debian: libarchive-tools), the reference reader")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sample_files(root: Path) -> Path:
    """Text that compresses a few times over, some random bytes, an empty file, folders."""
    rng = random.Random(7)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9)))
             for _ in range(400)]
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "words.txt").write_text(" ".join(rng.choice(words) for _ in range(120_000)))
    (root / "docs" / "deep" / "noise.bin").write_bytes(rng.randbytes(300_000))
    (root / "docs" / "deep" / "empty.txt").write_bytes(b"")
    (root / "small.csv").write_text("a,b\n1,2\n")
    return root


def seven_zip(archive: Path, src: Path, method: str, *extra: str) -> Path:
    assert SEVEN_ZIP is not None
    subprocess.run([SEVEN_ZIP, "a", "-tzip", f"-mm={method}", *extra, str(archive), "."],
                   cwd=src, check=True, capture_output=True)
    return archive


@needs_7z
@needs_bsdtar
@pytest.mark.parametrize(("method", "name", "code"), [("PPMd", "ppmd", 98), ("xz", "xz", 95)])
def test_entries_match_bsdtar(tmp_path: Path, method: str, name: str, code: int) -> None:
    src = sample_files(tmp_path / "src")
    archive = seven_zip(tmp_path / f"{name}.zip", src, method)
    with zipfile.ZipFile(archive) as z:
        # 7-Zip stores what does not compress (the noise, the empty file).
        assert z.getinfo("docs/words.txt").compress_type == code
    ref = tmp_path / "ref"
    ref.mkdir()
    assert BSDTAR is not None
    subprocess.run([BSDTAR, "-xf", str(archive), "-C", str(ref)], check=True)
    [r] = extract_zips([archive], tmp_path / "out")
    assert r.status == "extracted", r
    ours = tree(r.destination)
    assert ours == tree(ref) == tree(src)
    assert r.bytes == sum(len(v) for v in ours.values())
    listed = {e.name: e for e in list_zip(archive)}
    assert listed["docs/words.txt"].method == name
    assert listed["docs/words.txt"].size == len(ours["docs/words.txt"])


@needs_7z
@pytest.mark.parametrize("method", ["PPMd", "xz"])
def test_ratio_and_total_limits_hold_for_the_new_methods(tmp_path: Path, method: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "zeros.bin").write_bytes(bytes(16 << 20))
    archive = seven_zip(tmp_path / "z.zip", src, method, "-mx=9")
    [r] = extract_zips([archive], tmp_path / "out")
    assert r.error_type == "ZipBombError" and "ratio" in (r.error or ""), r
    assert not any((tmp_path / "out").iterdir())
    [r] = extract_zips([archive], tmp_path / "out2", max_ratio=1e6, max_total_size=1 << 20)
    assert r.error_type == "ZipBombError" and "max_total_size" in (r.error or ""), r
    [r] = extract_zips([archive], tmp_path / "out3", max_ratio=1e6)
    assert r.ok and (r.destination / "zeros.bin").stat().st_size == 16 << 20


def lie_about_size(archive: Path, name: bytes, new_size: int) -> None:
    """Rewrite the declared uncompressed size of one entry, in both headers."""
    data = bytearray(archive.read_bytes())
    i = 0
    while (i := data.find(name, i + 1)) > 0:
        if data[i - 46:i - 42] == b"PK\x01\x02":
            struct.pack_into("<I", data, i - 46 + 24, new_size)
        elif data[i - 30:i - 26] == b"PK\x03\x04":
            struct.pack_into("<I", data, i - 30 + 22, new_size)
    archive.write_bytes(bytes(data))


@needs_7z
@pytest.mark.parametrize("method", ["PPMd", "xz"])
def test_an_entry_larger_than_declared_is_refused(tmp_path: Path, method: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "liar.bin").write_bytes(os.urandom(200_000))
    archive = seven_zip(tmp_path / "l.zip", src, method)
    lie_about_size(archive, b"liar.bin", 1000)
    [r] = extract_zips([archive], tmp_path / "out")
    assert r.error_type == "ZipBombError" and "declared size" in (r.error or ""), r
    assert not any((tmp_path / "out").iterdir())


@needs_7z
@pytest.mark.parametrize("method", ["PPMd", "xz"])
def test_corrupt_data_is_an_archive_error(tmp_path: Path, method: str) -> None:
    src = sample_files(tmp_path / "src")
    archive = seven_zip(tmp_path / "c.zip", src, method)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo("docs/words.txt")
    start = info.header_offset + 30 + len(info.filename.encode()) + 40
    for k in range(start, start + 64):
        data[k] ^= 0x5A
    archive.write_bytes(bytes(data))
    [r] = extract_zips([archive], tmp_path / "out")
    assert r.status == "failed" and r.error_type in ("ArchiveError", "ZipBombError"), r
    assert "words.txt" in (r.error or "")
    assert not any((tmp_path / "out").iterdir())
