"""The seed's ProgressTracker (drawn by tqdm) and the progress= adapter."""

from __future__ import annotations

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
