"""Archives made on Windows: backslash separators are read as folders, and stay safe."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parallel_file_processor import extract_zips, list_zip, zip_frame

# --- building archives -----------------------------------------------------------------------


def windows_zip(path: Path, files: dict[str, bytes], *, system: int = 0) -> Path:
    """An archive as PowerShell 5's Compress-Archive writes it: made on MS-DOS (host 0), names
    with backslashes, non-ASCII names flagged UTF-8."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.create_system = system
            info.compress_type = zipfile.ZIP_DEFLATED
            if name.endswith(("/", "\\")):
                info.external_attr = 0x10  # MS-DOS directory attribute
            z.writestr(info, data)
    return path


def legacy_zip(path: Path, names: list[bytes], *, system: int = 0) -> Path:
    """Entries whose names are raw bytes in a legacy code page (no UTF-8 flag)."""
    out, central = bytearray(), bytearray()
    for name in names:
        data = b"x"
        crc = zipfile.crc32(data)  # type: ignore[attr-defined]
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, 1, 1,
                           len(name), 0) + name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (system << 8) | 20, 20, 0, 0,
                               0, 0x21, crc, 1, 1, len(name), 0, 0, 0, 0, 0, offset) + name
    cd = len(out)
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(names), len(names),
                                 len(central), cd, 0)
    path.write_bytes(bytes(out))
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    """Files (bytes) and folders (None) under ``root``."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[p.relative_to(root).as_posix()] = None if p.is_dir() else p.read_bytes()
    return out


def only(archive: Path, out: Path):
    [r] = extract_zips([archive], out)
    return r


# --- the archives people have ----------------------------------------------------------------


def test_a_powershell_archive_extracts_into_folders(tmp_path: Path) -> None:
    archive = windows_zip(tmp_path / "report.zip", {
        "report\\2024\\jan.csv": b"a,b\n1,2\n",
        "report\\2024\\feb.csv": b"a,b\n3,4\n",
        "report\\empty\\": b"",
        "report\\caf\u00e9.txt": b"utf-8 flagged",
        "top.txt": b"top",
    })
    r = only(archive, tmp_path / "out")
    assert r.status == "extracted", r
    assert tree(r.destination) == {
        "report": None, "report/2024": None, "report/empty": None,
        "report/2024/feb.csv": b"a,b\n3,4\n", "report/2024/jan.csv": b"a,b\n1,2\n",
        "report/caf\u00e9.txt": b"utf-8 flagged", "top.txt": b"top",
    }
    assert r.files_extracted == 5
    # Listing reports the names as they are extracted.
    names = [e.name for e in list_zip(archive)]
    assert names == ["report/2024/jan.csv", "report/2024/feb.csv", "report/empty/",
                     "report/caf\u00e9.txt", "top.txt"]
    assert [e.is_dir for e in list_zip(archive)] == [False, False, True, False, False]
    assert list(zip_frame(archive)["name"]) == names


@pytest.mark.parametrize("system", [10, 14])
def test_ntfs_and_vfat_hosts_are_windows_too(tmp_path: Path, system: int) -> None:
    archive = windows_zip(tmp_path / "a.zip", {"d\\x.txt": b"x", "e/y.txt": b"y"},
                          system=system)
    r = only(archive, tmp_path / "out")
    assert r.ok, r
    assert tree(r.destination) == {"d": None, "d/x.txt": b"x", "e": None, "e/y.txt": b"y"}


def test_backslashes_everywhere_are_separators_whatever_the_host(tmp_path: Path) -> None:
    archive = windows_zip(tmp_path / "a.zip", {"d\\x.txt": b"x", "d\\e\\y.txt": b"y"},
                          system=3)
    r = only(archive, tmp_path / "out")
    assert r.ok, r
    assert tree(r.destination) == {"d": None, "d/e": None, "d/x.txt": b"x", "d/e/y.txt": b"y"}


def test_a_unix_archive_mixing_separators_is_still_refused(tmp_path: Path) -> None:
    archive = windows_zip(tmp_path / "a.zip", {"d/x.txt": b"x", "odd\\name.txt": b"y"},
                          system=3)
    r = only(archive, tmp_path / "out")
    assert r.error_type == "UnsafeArchiveError", r
    assert "not made on Windows" in (r.error or "")
    assert not any((tmp_path / "out").iterdir())


def test_shift_jis_names_never_become_folders(tmp_path: Path) -> None:
    # "表.txt" in Shift-JIS is 95 5C 2E 74 78 74: its second byte is 0x5C, a backslash in ASCII.
    hyou = "\u8868.txt".encode("shift_jis")
    assert hyou[1:2] == b"\\"
    archive = legacy_zip(tmp_path / "sjis.zip", [b"ok.txt", hyou, "\u30bd\u30d5\u30c8/"
                                                  "a.txt".encode("shift_jis")])
    r = only(archive, tmp_path / "out")
    assert r.error_type == "UnsafeArchiveError", r
    assert "not UTF-8" in (r.error or "") and "Shift-JIS" in (r.error or "")
    assert not any((tmp_path / "out").iterdir()), "nothing written, no folder made"
    # Listed as stored (CP437), with the backslash still in the name.
    assert [e.name for e in list_zip(archive)][1] == hyou.decode("cp437")


def test_legacy_names_without_backslashes_extract_as_before(tmp_path: Path) -> None:
    archive = legacy_zip(tmp_path / "cp.zip", [b"caf\x82/x.txt", b"plain\\dir\\f.txt"])
    r = only(archive, tmp_path / "out")
    assert r.ok, r
    assert tree(r.destination) == {"caf\u00e9": None, "caf\u00e9/x.txt": b"x", "plain": None,
                                   "plain/dir": None, "plain/dir/f.txt": b"x"}


# --- every refusal keeps its backslash twin --------------------------------------------------


@pytest.mark.parametrize(("name", "why"), [
    ("..\\evil.txt", "'..'"),
    ("a\\..\\..\\evil.txt", "'..'"),
    ("a/..\\..\\evil.txt", "'..'"),
    ("a\\../..\\evil.txt", "'..'"),
    ("a\\.\\b.txt", "'.'"),
    ("C:\\evil.txt", "drive letter"),
    ("c:evil.txt", "drive letter"),
    ("\\evil.txt", "absolute"),
    ("\\\\server\\share\\evil.txt", "absolute"),
    ("a\\\\b.txt", "empty path component"),
])
def test_backslash_traversal_is_refused(tmp_path: Path, name: str, why: str) -> None:
    archive = windows_zip(tmp_path / "t.zip", {"fine.txt": b"ok", name: b"evil"})
    before = set(tmp_path.rglob("*"))
    r = only(archive, tmp_path / "out")
    assert r.error_type == "UnsafeArchiveError", r
    assert why in (r.error or "") and repr(name).strip("'") in (r.error or ""), r.error
    if "\\" in name:
        assert "read with '\\' as a folder separator" in (r.error or "")
    assert set(tmp_path.rglob("*")) - before == {tmp_path / "out"}
    assert not (tmp_path.parent / "evil.txt").exists()


def test_backslash_file_folder_clash_duplicate_and_link_escape(tmp_path: Path) -> None:
    clash = windows_zip(tmp_path / "c.zip", {"a": b"file", "a\\b.txt": b"2"})
    r = only(clash, tmp_path / "o1")
    assert r.error_type == "UnsafeArchiveError" and "both a file and a folder" in (r.error or "")
    dup = windows_zip(tmp_path / "d.zip", {"a\\b.txt": b"1", "a/b.txt": b"2"})
    r = only(dup, tmp_path / "o2")
    assert r.error_type == "UnsafeArchiveError" and "duplicate" in (r.error or "")
    # A link entry escaping via `..\`: NTFS hosts' Unix mode bits are read (as the zip crate
    # and Info-ZIP do), so it is a link, and refused.
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as z:
        info = zipfile.ZipInfo("d\\up")
        info.create_system = 10
        info.external_attr = (0o120777 << 16)
        z.writestr(info, b"../../etc")
    r = only(tmp_path / "l.zip", tmp_path / "o3")
    assert r.error_type == "UnsafeArchiveError" and "link" in (r.error or ""), r
    # On an MS-DOS host those bits mean nothing: a plain file holding the text, no link.
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as z:
        info.create_system = 0
        z.writestr(info, b"../../etc")
    r = only(tmp_path / "f.zip", tmp_path / "o4")
    assert r.ok and not (r.destination / "d" / "up").is_symlink()
    assert (r.destination / "d" / "up").read_bytes() == b"../../etc"
    for o in ("o1", "o2", "o3"):
        assert not any((tmp_path / o).iterdir())


def test_bombs_behind_backslash_names_are_still_bombs(tmp_path: Path) -> None:
    archive = windows_zip(tmp_path / "z.zip", {"d\\zeros.bin": bytes(8 << 20)})
    r = only(archive, tmp_path / "out")
    assert r.error_type == "ZipBombError" and "ratio" in (r.error or ""), r


# --- a plain-Python reference for the rule ---------------------------------------------------


def reference(name: str, system: int, no_slash: bool) -> str | None:
    """The name an entry extracts to (``None``: refused), as the README states the rule.

    ``name`` is ASCII or UTF-8 (zipfile flags it), so backslashes are separators when the
    entry was made on MS-DOS/NTFS/VFAT, or when no name in the archive holds a ``/``.
    """
    if "\\" in name and (system in (0, 10, 14) or no_slash):
        name = name.replace("\\", "/")
    if not name or "\\" in name or name.startswith("/"):
        return None
    if len(name) >= 2 and name[0].isascii() and name[0].isalpha() and name[1] == ":":
        return None
    body = name[:-1] if name.endswith("/") else name
    if any(part in ("", ".", "..") for part in body.split("/")):
        return None
    return name


segment = st.text("ab.\\/:C\u00e9", min_size=1, max_size=10)


@given(name=segment, system=st.sampled_from([0, 3, 10, 14]))
@settings(max_examples=150, deadline=None)
def test_random_names_match_the_reference(tmp_path_factory, name: str, system: int) -> None:
    tmp = tmp_path_factory.mktemp("w")
    archive = windows_zip(tmp / "r.zip", {"fine.txt": b"ok", name: b"data"}, system=system)
    want = reference(name, system, no_slash="/" not in name)
    r = only(archive, tmp / "out")
    if want is None:
        assert r.error_type == "UnsafeArchiveError", (name, r)
        assert not any((tmp / "out").iterdir())
        return
    assert r.ok, (name, want, r)
    got = tree(r.destination)
    if want.endswith("/"):
        assert got.get(want.rstrip("/"), b"") is None, (name, got)
    else:
        assert got[want] == b"data", (name, got)
    assert got["fine.txt"] == b"ok"
    assert [e.name for e in list_zip(archive)] == ["fine.txt", want]
    for p in (tmp / "out").rglob("*"):
        assert "\\" not in p.name
        assert os.path.realpath(p).startswith(os.path.realpath(tmp / "out"))


# --- CLI -------------------------------------------------------------------------------------


def test_cli_extracts_and_lists_windows_names(tmp_path: Path) -> None:
    archive = windows_zip(tmp_path / "w.zip", {"docs\\a.txt": b"a", "docs\\b\\c.txt": b"c"})
    run = [sys.executable, "-m", "parallel_file_processor"]
    p = subprocess.run([*run, "unzip", str(archive), "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out/w/docs/b/c.txt").read_bytes() == b"c"
    p = subprocess.run([*run, "zipls", str(archive), "--csv"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert [line.split(",")[0] for line in p.stdout.splitlines()[1:]] == ["docs/a.txt",
                                                                           "docs/b/c.txt"]
