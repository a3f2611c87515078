"""Shared fixtures: real files in tmp_path, never mocks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture]
)
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def write(path: Path, data: bytes | str = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small tree with mixed extensions, sizes, hidden entries and nesting."""
    root = tmp_path / "tree"
    write(root / "a.csv", b"x" * 10)
    write(root / "B.CSV", b"x" * 200)
    write(root / "notes.txt", b"hello")
    write(root / ".hidden.csv", b"h")
    write(root / "sub" / "c.csv", b"x" * 300)
    write(root / "sub" / "deep" / "d.csv", b"d")
    write(root / "sub" / "deep" / "e.json", b"{}")
    write(root / "build" / "x_backup.csv", b"b")
    return root
