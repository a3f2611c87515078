"""FIFOs, sockets and devices given as archives are refused at once, never waited on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from parallel_file_processor import extract_zips, list_zip, zip_frame
from parallel_file_processor.errors import ArchiveError

# Every call here would block for ever if the path were opened for reading the usual way: each
# is first run in a subprocess with a timeout, and only then in this process.


def good_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ok.txt", b"fine")
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.zip"
    os.mkfifo(p)
    return p


@pytest.fixture
def sock(tmp_path: Path):
    p = tmp_path / "s.zip"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(p))
    yield p
    s.close()


def in_child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter: a call that blocked would hit the timeout."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60)


def test_extract_zips_gives_a_fifo_its_own_error_and_goes_on(tmp_path: Path, fifo: Path,
                                                             sock: Path) -> None:
    good = good_zip(tmp_path / "good.zip")
    code = ("import sys, json\n"
            "from parallel_file_processor import extract_zips\n"
            "rs = extract_zips(sys.argv[1:-1], sys.argv[-1])\n"
            "print(json.dumps([[r.status, r.error_type, r.error] for r in rs]))\n")
    t0 = time.monotonic()
    p = in_child(code, str(fifo), str(good), str(sock), "/dev/zero", str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 30
    import json

    rows = json.loads(p.stdout)
    assert [r[0] for r in rows] == ["failed", "extracted", "failed", "failed"]
    assert rows[0][1] == "ArchiveError" and "a FIFO" in rows[0][2]
    assert rows[2][1] == "ArchiveError" and "a socket" in rows[2][2]
    assert rows[3][1] == "ArchiveError" and "a device" in rows[3][2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good"]


def test_list_zip_and_zip_frame_refuse_a_fifo(tmp_path: Path, fifo: Path) -> None:
    code = ("import sys\n"
            "from parallel_file_processor import list_zip\n"
            "try:\n"
            "    list_zip(sys.argv[1])\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    p = in_child(code, str(fifo))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ArchiveError") and str(fifo) in p.stdout and "FIFO" in p.stdout
    # In this process too, now that it is known not to block.
    with pytest.raises(ArchiveError, match="FIFO"):
        list_zip(fifo)
    df = zip_frame([good_zip(tmp_path / "g.zip"), fifo])
    assert list(df["name"]) == ["ok.txt"]
    assert df.attrs["errors"][0][0] == fifo and df.attrs["errors"][0][1] == "ArchiveError"
    [r] = extract_zips([fifo], tmp_path / "out")
    assert r.error_type == "ArchiveError" and "FIFO" in (r.error or "")
    with pytest.raises(ArchiveError, match=str(fifo)):
        r.raise_for_error()


def pfp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True, timeout=60)


def test_cli_unzip_and_zipls_on_a_fifo_fail_at_once(tmp_path: Path, fifo: Path) -> None:
    p = pfp("unzip", str(fifo), "-o", str(tmp_path / "out"))
    assert p.returncode == 1, (p.stdout, p.stderr)
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {fifo}: ArchiveError: not a regular file (a FIFO): not read"]
    assert "0 extracted" in p.stderr and "1 failed" in p.stderr
    p = pfp("zipls", str(fifo))
    assert p.returncode == 1, (p.stdout, p.stderr)
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {fifo}: ArchiveError: ")
    assert errors[0].endswith("not a regular file (a FIFO): not read")
    # With a good archive beside it, the good one is still listed and extracted.
    good = good_zip(tmp_path / "good.zip")
    p = pfp("zipls", str(good), str(fifo), "--csv")
    assert p.returncode == 1 and "ok.txt" in p.stdout
    p = pfp("unzip", str(good), str(fifo), "-o", str(tmp_path / "out2"))
    assert p.returncode == 1 and (tmp_path / "out2" / "good" / "ok.txt").read_bytes() == b"fine"
