#!/usr/bin/env python3
"""Write small seed archives for the fuzz targets: one of each shape the checks care about."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def archive(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """(name, data, method, host, unix mode) per entry."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data, method, host, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            info.compress_type = method
            info.create_system = host
            info.external_attr = mode << 16
            z.writestr(info, data)
    return buf.getvalue()


def main(root: Path) -> None:
    arch, names = root / "archive", root / "names"
    arch.mkdir(parents=True, exist_ok=True)
    names.mkdir(parents=True, exist_ok=True)
    S, D, B, L = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA
    text = b"the quick brown fox jumps over the lazy dog\n" * 40
    seeds = {
        "plain": [("d/", b"", S, 3, 0o40755), ("d/a.txt", text, D, 3, 0o100644),
                  ("b.bin", bytes(range(256)) * 8, S, 3, 0o100600)],
        "methods": [("bz.txt", text, B, 3, 0o100644), ("lz.txt", text, L, 3, 0o100644)],
        "windows": [("report\\2024\\jan.csv", b"a,b\n1,2\n", D, 0, 0),
                    ("report\\empty\\", b"", S, 0, 0), ("top.txt", b"x", S, 0, 0)],
        "links": [("real/data.txt", b"d", S, 3, 0o100644), ("link", b"real/data.txt", S, 3,
                  0o120777), ("real/up", b"..", S, 3, 0o120777)],
        "escape": [("a/l", b"../..", S, 3, 0o120777), ("..\\x", b"e", S, 0, 0)],
        "clash": [("a", b"file", S, 3, 0o100644), ("a/b", b"2", S, 3, 0o100644)],
        "zeros": [("z.bin", bytes(3 << 20), D, 3, 0o100644)],
    }
    for name, entries in seeds.items():
        (arch / f"{name}.zip").write_bytes(archive(entries))
    seven = shutil.which("7z") or shutil.which("7za")
    if seven:  # xz and PPMd entries, as 7-Zip writes them
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "t.txt").write_bytes(text)
            for method in ("xz", "PPMd"):
                out = arch / f"{method.lower()}.zip"
                out.unlink(missing_ok=True)
                subprocess.run([seven, "a", "-tzip", f"-mm={method}", str(out), "t.txt"],
                               cwd=tmp, check=True, capture_output=True)
    # names: a flags byte (1 UTF-8, 2 Windows host, 4 no '/' in the archive), then the bytes
    for i, (flags, raw) in enumerate([(2, b"a\\b\\c.txt"), (0, b"a/b/"), (3, "é\\x".encode()),
                                      (6, b"..\\x"), (0, b"\x95\\.txt"), (2, b"C:\\x"),
                                      (4, b"\\\\srv\\s\\x"), (1, b"\xff\xfe")]):
        (names / f"seed{i}").write_bytes(bytes([flags]) + raw)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus"))
