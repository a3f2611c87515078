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


def run_unprivileged(fn, *args, uid: int = 65534, gid: int = 65534):
    """Run ``fn(*args)`` in a forked child that dropped root, and return its result.

    CI runs as root, where permission bits block nothing. A forked child keeps the interpreter
    and the already-loaded native module (no need to read root-only install paths), switches to
    ``nobody`` and reports back through a pipe; exceptions are re-raised here.
    """
    import pickle

    if os.geteuid() != 0:
        return fn(*args)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            payload = pickle.dumps(("ok", fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            payload = pickle.dumps(("err", exc))
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "err":
        raise value
    return value


@pytest.fixture
def open_tmp():
    """A temporary folder other users can enter (pytest's tmp_path is private to root), for
    tests that run part of themselves unprivileged."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="pfp-open-"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        for d, dirs, _ in os.walk(base):
            for name in dirs:
                os.chmod(os.path.join(d, name), 0o755)
        shutil.rmtree(base, ignore_errors=True)
