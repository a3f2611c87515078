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


# --- no fork of a multi-threaded process ---------------------------------------------------------
# A child forked from a process with threads may wait forever on a lock another thread held
# (Python 3.12+ warns, but clears the warning when a filter makes it an error, so
# ``filterwarnings = error`` cannot catch it). Every fork in the test process is checked instead,
# on every Python: a test that forks while threads run fails.

#: ``-W`` for a subprocess: show that warning wherever it comes from (by default it is hidden
#: outside ``__main__``)
FORK_WARNINGS_SHOWN = "always:This process:DeprecationWarning"
_forks_with_threads: list[int] = []
_plain_fork = os.fork


def _checked_fork() -> int:
    from parallel_file_processor.runners.processes import threads_running

    threads = threads_running()
    pid = _plain_fork()
    if pid and threads > 1:
        _forks_with_threads.append(threads)
    return pid


os.fork = _checked_fork


@pytest.fixture(autouse=True)
def _no_fork_with_threads():
    _forks_with_threads.clear()
    yield
    if _forks_with_threads:
        pytest.fail(f"this test forked a process running {max(_forks_with_threads)} threads: "
                    "the child may deadlock; use forkserver or spawn, or a fresh interpreter",
                    pytrace=False)


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


#: Capabilities that let root ignore file modes. Dropping them (and keeping uid 0) makes
#: permission bits apply to root as to any user, like ``setpriv --reuid=65534`` does, while the
#: interpreter stays usable: pyenv's live under /root, which ``nobody`` may not enter.
_DAC_CAPABILITIES = "-dac_override,-dac_read_search,-fowner"


def unprivileged_prefix() -> list[str]:
    """A command prefix under which file permission bits apply (empty when they already do).

    CI runs as root, where permission bits block nothing; the prefix runs the command with
    root's file-mode capabilities dropped (``setpriv --bounding-set``). Skips the test when
    that is not possible here.
    """
    import shutil
    import subprocess

    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to drop root's file-mode capabilities")
    prefix = ["setpriv", f"--bounding-set={_DAC_CAPABILITIES}"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot drop capabilities here: {probe.stderr.strip()}")
    return prefix


_CHILD = """
import pickle, sys
sys.path.insert(0, sys.argv[1])  # the tests folder: functions of test modules import by name
with open(sys.argv[2], "rb") as f:
    fn, args = pickle.load(f)
try:
    out = ("ok", fn(*args))
except BaseException as exc:
    out = ("err", exc)
import cloudpickle
with open(sys.argv[3], "wb") as f:
    cloudpickle.dump(out, f)
"""


def run_unprivileged(fn, *args):
    """Run ``fn(*args)`` in a fresh interpreter where file permission bits apply, and return
    its result (exceptions are re-raised here).

    A subprocess, not a fork: the test process has threads (the native pool, progress bars),
    and forking a multi-threaded process can deadlock the child. ``fn`` travels with
    cloudpickle, so a test's local function works.
    """
    import pickle
    import subprocess
    import sys
    import tempfile

    import cloudpickle

    prefix = unprivileged_prefix()
    if not prefix:
        return fn(*args)
    with tempfile.TemporaryDirectory(prefix="pfp-unprivileged-") as tmp:
        job, result = Path(tmp) / "job.pickle", Path(tmp) / "result.pickle"
        job.write_bytes(cloudpickle.dumps((fn, args)))
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", _CHILD, str(Path(__file__).parent), str(job),
             str(result)],
            capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0 or not result.exists():
            raise RuntimeError(f"the unprivileged check failed to run:\n{proc.stderr[-3000:]}")
        status, value = pickle.loads(result.read_bytes())
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


@pytest.fixture
def full_dir(tmp_path: Path):
    """A folder on a file system with no space left (a 64 KiB tmpfs, filled), for outputs
    that must fail to be written. Skips where mounting is not permitted."""
    import subprocess

    mount = tmp_path / "full"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {res.stderr.strip()}")
    try:
        with open(mount / "filler", "wb", buffering=0) as f:
            try:
                while f.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# --- a Dask cluster -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def client():
    """A Dask cluster of two worker processes on this machine, started once for the session.

    Not the default client: every call must use the client it is given. Tests that kill or
    restart workers wait for both to be back before they end."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    c = distributed.Client(cluster, set_as_default=False)
    c.wait_for_workers(2, timeout=60)
    yield c
    c.close()
    cluster.close()
