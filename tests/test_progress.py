"""The seed's ProgressTracker (drawn by tqdm) and the progress= adapter."""

from __future__ import annotations

import re
from typing import Any

import pytest
from parallel_file_processor.progress import ProgressTracker, Reporter


def test_tracker_draws_with_tqdm_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    tracker = ProgressTracker(0, "Processing CSVs")
    tracker.start()
    for done in range(1, 5):
        tracker.update(done, 4)
    tracker.finish()
    err = capsys.readouterr().err
    assert "Processing CSVs" in err and "4/4" in err
    assert tracker.completed == 4


def test_tracker_respects_tqdm_disable() -> None:
    # tqdm reads TQDM_* when it is imported, so this runs in a fresh interpreter.
    import os
    import subprocess
    import sys

    code = ("from parallel_file_processor import ProgressTracker\n"
            "with ProgressTracker(2, 'quiet') as t:\n    t.update(2, 2)\n")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and "quiet" not in quiet.stderr
    env.pop("TQDM_DISABLE")
    loud = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "quiet" in loud.stderr


def test_reporter_forwards_to_a_callable_and_native_form() -> None:
    calls: list[tuple[int, int]] = []
    with Reporter(lambda d, t: calls.append((d, t)), desc="x") as rep:
        assert rep.active
        native = rep.native()
        assert native is not None
        native(3, 10, 300, 1000)
        rep.update(5, 10)
    assert calls == [(3, 10), (5, 10)]
    bytes_calls: list[tuple[int, int]] = []
    rep = Reporter(lambda d, t: bytes_calls.append((d, t)), desc="x", by_bytes=True)
    rep.native()(1, 2, 300, 1000)  # type: ignore[misc]
    assert bytes_calls == [(300, 1000)]


def test_reporter_off_and_bad_values() -> None:
    assert Reporter(None, desc="x").native() is None
    assert Reporter(False, desc="x").native() is None
    with pytest.raises(TypeError):
        Reporter("yes", desc="x")  # type: ignore[arg-type]


# --- one bar on a terminal ------------------------------------------------------------------------


def run_in_terminal(args: list[str], columns: int = 100) -> str:
    """Run a command with stderr on a pseudo-terminal of ``columns`` columns (stdout
    discarded); what it drew there, raw."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    proc = subprocess.Popen([sys.executable, "-m", "parallel_file_processor", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                            env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the command is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def screen(raw: str, columns: int) -> list[str]:
    """The lines a terminal shows after ``raw``: carriage returns overwrite, long lines wrap."""
    import re

    lines, row, col = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|.", raw, re.S):
        if token.startswith("\x1b["):
            if token.endswith("A"):  # cursor up (tqdm moves between bars with it)
                row = max(0, row - int(token[2:-1] or 1))
            continue
        if token == "\r":
            col = 0
            continue
        if token == "\n" or col >= columns:
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
            if token == "\n":
                continue
        line = lines[row]
        lines[row] = line[:col].ljust(col) + token + line[col + 1:]
        col += 1
    return [line.rstrip() for line in lines if line.strip()]


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("bars")
    for d in range(40):
        (root / f"d{d}").mkdir()
        for i in range(100):
            (root / f"d{d}" / f"f{i}.txt").write_text("x" * i)
    return root


@pytest.mark.parametrize("command, label, done", [
    (["process", "--func", "parallel_file_processor.jobs:file_info"], "Processing",
     "4000/4000"),
    (["process", "--func", "parallel_file_processor.jobs:file_info", "--mode", "process_pool"],
     "Processing", "4000/4000"),
    (["hash"], "Hashing (blake3)", "193k/193k"),
])
def test_one_bar_on_a_terminal(many_files: Any, command: list[str], label: str,
                               done: str) -> None:
    raw = run_in_terminal([command[0], str(many_files), *command[1:], "--progress"], 80)
    shown = screen(raw, 80)
    bars = [line for line in shown if line.startswith(label)]
    assert len(bars) == 1, shown
    assert "100%|" in bars[0] and done in bars[0], bars[0]
    # No empty frame before the first progress (the stray "0item [00:00, ?item/s]" line).
    first = raw.lstrip("\r").split("\r")[0]
    assert not re.match(rf"{re.escape(label)}: 0(\.00)?[a-zA-Z]* \[", first), first


def test_reporter_draws_nothing_until_there_is_progress(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    with Reporter(True, desc="Walking", unit="item") as rep:
        assert rep.active and capsys.readouterr().err == ""
        rep.update(5, 0)      # the walk is still going: a count, no total yet
        rep.update(9, 12)     # the walk ended: the same bar gains its total
        rep.update(12, 12)
    err = capsys.readouterr().err
    frames = [f for f in err.replace("\n", "\r").split("\r") if f.strip()]
    assert frames[0].startswith("Walking: 5item [")
    assert frames[-1].startswith("Walking: 100%") and "12/12" in frames[-1]
    assert not any(f.startswith("Walking: 0item") for f in frames)


def test_tracker_with_unknown_total_draws_at_the_first_update(
        capsys: pytest.CaptureFixture[str]) -> None:
    tracker = ProgressTracker(0, "Processing CSVs")
    tracker.start()
    assert capsys.readouterr().err == ""
    tracker.update(1, 3)
    tracker.update(3, 3)
    tracker.finish()
    frames = [f for f in capsys.readouterr().err.replace("\n", "\r").split("\r") if f.strip()]
    assert all("/3" in f for f in frames), frames
