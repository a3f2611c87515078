"""What only a Dask cluster does (two worker processes): the public calls with ``client=``, lazy
frames, workers killed or restarted mid-run, paths the workers cannot see, the scheduler's
address on the command line and in job files. That every runner, a cluster's included, gives
the local results is tested once for all of them in test_runners.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from conftest import write  # noqa: E402
from parallel_file_processor import ParallelProcessor  # noqa: E402
from parallel_file_processor import distributed as pfd  # noqa: E402
from parallel_file_processor.aggregate import aggregate  # noqa: E402
from parallel_file_processor.errors import MissingExtraError  # noqa: E402
from parallel_file_processor.hash import find_duplicates, hash_files  # noqa: E402
from parallel_file_processor.job import balanced_shards  # noqa: E402
from parallel_file_processor.scan import scan  # noqa: E402

# --- functions run on the workers (module level: workers import them) --------------------------


def sleep_on(x: float) -> float:
    time.sleep(x)
    return x


def count_and_sleep(args: tuple[str, int]) -> int:
    log, i = args
    with open(log, "a") as f:
        f.write(f"{i}\n")
    time.sleep(0.15)
    return i


def stamp_time(path: str) -> float:
    now = time.time()
    with open(path, "a") as f:
        f.write(f"{now}\n")
    return now


# --- the public calls -------------------------------------------------------------------------


def make_tree(root: Path, n: int = 60) -> Path:
    for i in range(n):
        # sizes repeat, so same-size candidates end up in different shards
        write(root / f"d{i % 4}" / f"f{i:03}.bin", bytes([i % 9]) * (100 + (i % 6) * 50))
    write(root / "empty.bin", b"")
    return root


def write_csvs(root: Path) -> Path:
    for i in range(7):
        # int in even files, float in odd ones: the merge must promote across shards
        rows = "".join(f"{j},{j * 0.5 if i % 2 else j},k{j % 3}\n" for j in range(25))
        write(root / f"part{i}.csv", "a,b,c\n" + rows)
    write(root / "extra.csv", "a,d\n1,x\n")
    write(root / "broken.csv", b"a,b\n\xff\xfe,1\n")
    write(root / "empty.csv", "")
    return root


def test_every_capability_takes_a_client_and_gives_the_local_result(client, tmp_path) -> None:
    import pandas.testing as pdt
    from parallel_file_processor.extract import extract_zips

    root = make_tree(tmp_path / "t", 30)
    assert hash_files(root, client=client, sort=True) == hash_files(root, sort=True)
    assert find_duplicates(root, client=client).equals(find_duplicates(root))
    assert scan(root / "d0", root / "d1", client=client, sort=True).files == scan(
        root / "d0", root / "d1", sort=True).files
    csv = write_csvs(tmp_path / "csv")
    pdt.assert_frame_equal(aggregate(csv, client=client), aggregate(csv))
    zips = tmp_path / "zips"
    zips.mkdir()
    for i in range(3):
        with zipfile.ZipFile(zips / f"a{i}.zip", "w") as z:
            z.writestr("f.txt", f"archive {i}\n")
    local = extract_zips(zips, tmp_path / "out_local")
    remote = extract_zips(zips, tmp_path / "out_remote", client=client)
    assert [(r.archive, r.status, r.files_extracted) for r in remote] == [
        (r.archive, r.status, r.files_extracted) for r in local]


def test_aggregate_lazy_gives_a_dask_dataframe(client, tmp_path) -> None:
    import dask.dataframe as dd
    import pandas.testing as pdt

    root = write_csvs(tmp_path / "csv")
    local = aggregate(root)
    lazy = aggregate(root, client=client, lazy=True)
    assert isinstance(lazy, dd.DataFrame)
    assert list(lazy.columns) == list(local.columns)
    computed = client.compute(lazy).result().reset_index(drop=True)  # on the cluster
    pdt.assert_frame_equal(computed, local, check_categorical=False)
    assert list(computed["_source_file"].astype(str)) == list(local["_source_file"].astype(str))


def test_balanced_shards_are_balanced_and_complete() -> None:
    sizes = [1_000_000, 10, 10, 900_000, 5, 500_000, 500_000, 7]
    shards = balanced_shards(sizes, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(sizes)))
    weights = sorted(sum(sizes[i] for i in s) for s in shards)
    assert weights[-1] - weights[0] <= max(sizes)
    assert all(s == sorted(s) for s in shards)
    # files of one size (the only duplicate candidates) are spread over shards, not kept together
    assert balanced_shards([150] * 4, 2) == [[0, 2], [1, 3]]


# --- faults -----------------------------------------------------------------------------------


def test_paths_the_workers_cannot_see_give_a_clear_error(client, tmp_path) -> None:
    missing = tmp_path / "not-on-the-workers"
    with pytest.raises(pfd.PathsNotVisibleError, match="shared file system") as err:
        hash_files(missing, client=client)
    assert isinstance(err.value, FileNotFoundError) and str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match="not visible on Dask worker"):
        scan(tmp_path, missing, client=client)
    with pytest.raises(FileNotFoundError, match="not visible on Dask worker"):
        aggregate(missing, client=client)


def test_unreachable_scheduler_fails_fast_with_a_clear_error() -> None:
    started = time.monotonic()
    with pytest.raises(pfd.SchedulerUnreachableError, match="tcp://127.0.0.1:1") as err:
        pfd.get_client("tcp://127.0.0.1:1", timeout=2)
    assert isinstance(err.value, ConnectionError)
    assert time.monotonic() - started < 15


def test_missing_extra_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'parallel-file-processor\[dask\]'"):
        pfd.require_dask()
    with pytest.raises(MissingExtraError):
        pfd.get_client("tcp://127.0.0.1:8786")


def test_importing_the_package_does_not_import_dask() -> None:
    code = ("import sys, parallel_file_processor as p; p.ParallelProcessor; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_worker_killed_mid_run_loses_nothing_and_counts_nothing_twice(client, tmp_path) -> None:
    log = tmp_path / "runs.log"
    items = [(str(log), i) for i in range(30)]
    killed: list[str] = []
    pids = client.run(os.getpid)

    def kill_a_busy_worker(done: int, total: int) -> None:
        if killed:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        if busy:
            killed.append(busy[0])
            os.kill(pids[busy[0]], signal.SIGKILL)  # the nanny starts a new worker

    pp = ParallelProcessor(count_and_sleep, executor=client, batch_size=2)
    pp.on_progress(kill_a_busy_worker)
    batch = pp.process(items)
    assert killed
    assert sorted(r.index for r in batch.results) == list(range(30))
    assert batch.successful == 30 and batch.failed == 0
    assert [r.result for r in batch.results] == list(range(30))
    runs = Counter(int(x) for x in log.read_text().split())
    assert set(runs) == set(range(30))  # every item ran; a rerun chunk may run twice, but
    assert sum(runs.values()) >= 30  # its results were taken once
    client.wait_for_workers(2, timeout=60)



def test_a_cluster_restart_mid_run_reruns_the_cancelled_work(client, tmp_path) -> None:
    restarted: list[int] = []

    def restart_once(done: int, total: int) -> None:
        if not restarted:
            restarted.append(done)
            client.restart()  # cancels every task in flight

    pp = ParallelProcessor(sleep_on, executor=client, batch_size=1)
    pp.on_progress(restart_once)
    batch = pp.process([0.1] * 12)
    assert restarted and restarted[0] < 12
    assert sorted(r.index for r in batch.results) == list(range(12))
    assert batch.successful == 12 and batch.failed == 0

    root = make_tree(tmp_path / "t", 40)
    restarted.clear()
    remote = hash_files(root, client=client, sort=True, progress=restart_once)
    assert restarted and remote == hash_files(root, sort=True)
    client.wait_for_workers(2, timeout=60)

# --- the command line -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def pfp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_hash_dupes_and_scan_with_scheduler_equal_local(client, tmp_path) -> None:
    import json

    root = make_tree(tmp_path / "t", 30)
    address = client.scheduler.address
    for command in (["hash", str(root), "--json"], ["dupes", str(root), "--json"],
                    ["scan", str(root), str(tmp_path / "t" / "d1"), "--sort", "--paths"]):
        local = pfp(*command)
        remote = pfp(*command, "--scheduler", address)
        assert remote.returncode == local.returncode == 0, remote.stderr
        if command[0] == "scan":
            assert remote.stdout == local.stdout and len(remote.stdout.splitlines()) > 30
        else:
            rows = [json.loads(line) for line in remote.stdout.splitlines()]
            assert sorted(map(str, rows)) == sorted(
                str(json.loads(line)) for line in local.stdout.splitlines())
            assert len(rows) > 5


def test_cli_run_on_the_cluster_from_flag_and_from_yaml(client, tmp_path) -> None:
    import shutil

    import pandas as pd

    shutil.copytree(REPO / "examples" / "data", tmp_path / "data")
    job = ("scan:\n  directory: data/\n  extensions: ['.csv']\n"
           "processing:\n  processor: csv_stats\n{extra}"
           "output:\n  results_csv: out/{name}.csv\n  overwrite: true\n")
    write(tmp_path / "local.yaml", job.format(extra="", name="local"))
    write(tmp_path / "flag.yaml", job.format(extra="", name="flag"))
    write(tmp_path / "yaml.yaml", job.format(
        extra=f"  scheduler: {client.scheduler.address}\n", name="yaml"))
    local = pfp("run", str(tmp_path / "local.yaml"))
    flag = pfp("run", str(tmp_path / "flag.yaml"), "--scheduler", client.scheduler.address)
    from_yaml = pfp("run", str(tmp_path / "yaml.yaml"))
    assert local.returncode == flag.returncode == from_yaml.returncode, flag.stderr
    assert "dashboard: http" in flag.stderr and "dashboard: http" in from_yaml.stderr
    expected = pd.read_csv(tmp_path / "out" / "local.csv")
    for name in ("flag", "yaml"):
        got = pd.read_csv(tmp_path / "out" / f"{name}.csv")
        assert len(got) == len(expected) > 0
        assert sorted(got["worker_id"].astype(str).str[:5].unique()) == ["dask:"]
        cols = [c for c in expected.columns if c.startswith("result_")] + ["file_path"]
        pdt_cols = got[cols].sort_values("file_path").reset_index(drop=True)
        assert pdt_cols.equals(expected[cols].sort_values("file_path").reset_index(drop=True))


def test_cli_run_native_hash_job_on_the_cluster(client, tmp_path) -> None:
    import pandas as pd

    make_tree(tmp_path / "data", 25)
    job = ("scan:\n  directory: data/\n"
           "processing:\n  processor: hash\n  options: {{algorithm: sha256}}\n{extra}"
           "output:\n  results_csv: out/{name}.csv\n  overwrite: true\n")
    write(tmp_path / "local.yaml", job.format(extra="", name="local"))
    write(tmp_path / "remote.yaml", job.format(
        extra=f"  scheduler: {client.scheduler.address}\n", name="remote"))
    local = pfp("run", str(tmp_path / "local.yaml"))
    remote = pfp("run", str(tmp_path / "remote.yaml"))
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert "dashboard: http" in remote.stderr
    key = ["file_path", "result_digest"]
    got = pd.read_csv(tmp_path / "out" / "remote.csv")[key].sort_values("file_path")
    expected = pd.read_csv(tmp_path / "out" / "local.csv")[key].sort_values("file_path")
    assert len(got) == 26 and got.reset_index(drop=True).equals(expected.reset_index(drop=True))


def test_checkpoints_and_rate_limits_work_on_a_cluster(client, tmp_path) -> None:
    """The job driver keeps the checkpoint and the rate limit, so a cluster run commits each
    outcome on the client, a re-run makes no calls, and the brake holds across workers."""
    log = tmp_path / "runs.log"
    ckpt = tmp_path / "run.ckpt"
    items = [(str(log), i) for i in range(12)]
    first = ParallelProcessor(count_and_sleep, executor=client, checkpoint=ckpt,
                              rate_limit="20/s").process(items)
    assert first.successful == 12 and [r.result for r in first.results] == list(range(12))
    runs_after_first = len(log.read_text().split())
    again = ParallelProcessor(count_and_sleep, executor=client, checkpoint=ckpt).process(items)
    assert [r.result for r in again.results] == list(range(12))
    assert len(log.read_text().split()) == runs_after_first  # nothing ran again

    stamps = tmp_path / "stamps"
    t0 = time.monotonic()
    ParallelProcessor(stamp_time, executor=client, rate_limit="10/s").process(
        [str(stamps)] * 15)
    assert time.monotonic() - t0 >= 1.2  # 15 calls at 10/s with a burst of 1 take 1.4 s
    times = sorted(float(x) for x in stamps.read_text().split())
    assert len(times) == 15
    for a, b in zip(times, times[10:]):
        assert b - a >= 0.9  # never more than 10 starts in any second, across both workers
