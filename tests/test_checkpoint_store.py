"""The checkpoint log itself: what is written comes back, a torn tail is ignored, a changed
function is noticed, results that cannot be kept are named."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import FileInfo
from parallel_file_processor.checkpoint import (
    Checkpoint,
    function_identity,
    item_key,
    read_info,
)
from parallel_file_processor.errors import CheckpointError
from parallel_file_processor.types import ProcessingResult, Status


def done(i: int, value: object, status: str = Status.OK) -> ProcessingResult:
    ok = status == Status.OK
    return ProcessingResult(FileInfo("", 0, 0.0, ""), ok, value if ok else None,
                            None if ok else "boom", 0.1, None if ok else "ValueError",
                            None, 1, "w", status, i, i)


def double(x: int) -> int:
    return x * 2


def triple(x: int) -> int:
    return x * 3


@given(st.lists(st.tuples(st.integers(), st.one_of(st.integers(), st.text(), st.none())),
                max_size=40))
def test_what_is_recorded_comes_back(tmp_path_factory: pytest.TempPathFactory,
                                     rows: list[tuple[int, object]]) -> None:
    path = tmp_path_factory.mktemp("ck") / "run.ckpt"
    ident = function_identity(double)
    with Checkpoint(path, ident) as ck:
        for start in range(0, len(rows), 7):
            ck.record([(item_key(k), done(k, v)) for k, v in rows[start:start + 7]])
    expected = {item_key(k): v for k, v in rows}
    with Checkpoint(path, ident) as again:
        for key, value in expected.items():
            row = again.lookup(key)
            assert row is not None and row[0] == Status.OK and row[1] == value


def test_a_torn_tail_is_ignored_and_appending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    ident = function_identity(double)
    with Checkpoint(path, ident) as ck:
        ck.record([(item_key(1), done(1, 2))])
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00half a record")  # a kill mid-write
    info = read_info(path)
    assert info.done == 1 and info.torn
    with Checkpoint(path, ident) as ck:
        assert ck.lookup(item_key(1)) is not None
        ck.record([(item_key(2), done(2, 4))])
    info = read_info(path)
    assert info.done == 2 and not info.torn


def test_failed_items_run_again_unless_kept(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    ident = function_identity(double)
    with Checkpoint(path, ident) as ck:
        ck.record([(item_key(1), done(1, None, Status.FAILED)),
                   (item_key(2), done(2, None, Status.CANCELLED))])
    with Checkpoint(path, ident) as ck:
        assert ck.lookup(item_key(1)) is None, "failures run again by default"
        assert ck.lookup(item_key(2)) is None, "a cancelled item never ran"
    with Checkpoint(path, ident, retry_failed=False) as ck:
        row = ck.lookup(item_key(1))
        assert row is not None and row[0] == Status.FAILED and row[3] == "ValueError"


def test_a_changed_function_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "run.ckpt"
    with Checkpoint(path, function_identity(double)) as ck:
        ck.record([(item_key(1), done(1, 2))])
    with Checkpoint(path, function_identity(triple)) as ck:
        assert ck.note is not None and "triple" in ck.note and "double" in ck.note
        assert ck.lookup(item_key(1)) is None
    with Checkpoint(path, function_identity(double)) as ck:
        assert ck.lookup(item_key(1)) is None, "starting over replaced the old outcomes"
    with Checkpoint(path, function_identity(double, version="2")) as ck:
        assert ck.note is not None and "version" in ck.note
    with Checkpoint(path, function_identity(triple), reuse="always") as ck:
        assert ck.note is None


def test_the_identity_follows_the_code_not_its_place() -> None:
    def a(x):  # noqa: ANN001, ANN202
        return x + 1

    def b(x):  # noqa: ANN001, ANN202
        # same work, another name and a comment
        return x + 1

    assert function_identity(a)["code"] == function_identity(b)["code"]
    assert function_identity(a)["qualname"] != function_identity(b)["qualname"]
    assert function_identity(double)["code"] != function_identity(triple)["code"]


def test_results_that_cannot_be_kept_are_named(tmp_path: Path) -> None:
    with Checkpoint(tmp_path / "run.ckpt", function_identity(double)) as ck:
        refused = ck.record([(item_key(1), done(1, threading.Lock())),
                             (item_key(2), done(2, 4))])
        assert refused == [item_key(1)]
    info = read_info(tmp_path / "run.ckpt")
    assert info.done == 1


def test_keys_follow_what_identifies_the_work(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("one")
    first = item_key(FileInfo.from_path(f))
    assert first == item_key(FileInfo.from_path(f))
    f.write_text("changed!")
    assert item_key(FileInfo.from_path(f)) != first, "a changed file is new work"
    assert item_key(1) != item_key("1") and item_key((1, 2)) == item_key((1, 2))
    assert item_key({"id": 7}, key=lambda d: d["id"]) == item_key({"id": 7, "x": 1},
                                                                  key=lambda d: d["id"])
    with pytest.raises(CheckpointError, match="key="):
        item_key(threading.Lock())


def test_not_a_checkpoint_is_refused_clearly(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        Checkpoint(p, function_identity(double))
    with pytest.raises(FileNotFoundError):
        read_info(tmp_path / "missing.ckpt")
