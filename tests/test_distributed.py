"""The same jobs on a real Dask cluster (two worker processes): results equal the local run."""

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
from parallel_file_processor.types import Status  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
    )
    # not the default client: every call must use the client it is given
    c = distributed.Client(cluster, set_as_default=False)
    c.wait_for_workers(2, timeout=60)
    yield c
    c.close()
    cluster.close()


# --- functions run on the workers (module level: workers import them) --------------------------


def square_or_fail(x: int) -> int:
    if x % 7 == 3:
        raise ValueError(f"bad item {x}")
    return x * x


def record_pid(path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")


def worker_pid(x: int) -> int:
    return os.getpid()


def sleep_on(x: float) -> float:
    time.sleep(x)
    return x


def fail_once(marker_dir: str) -> str:
    marker = Path(marker_dir) / "tried"
    if not marker.exists():
        marker.write_text("1")
        raise OSError("transient")
    return "ok"


def count_and_sleep(args: tuple[str, int]) -> int:
    log, i = args
    with open(log, "a") as f:
        f.write(f"{i}\n")
    time.sleep(0.15)
    return i


def outcome(batch) -> list[tuple]:
    return [(r.index, r.success, r.result, r.error_type, r.error, r.status) for r in batch.results]


# --- the engine -------------------------------------------------------------------------------


@pytest.mark.parametrize("as_executor", [False, True], ids=["client", "get_executor"])
def test_engine_on_the_cluster_equals_the_local_run(client, as_executor) -> None:
    items = list(range(60)) + [5] * 20  # identical inputs must all run (pure=False)
    local = ParallelProcessor(square_or_fail, "sequential").process(items)
    executor = client.get_executor() if as_executor else client
    remote = ParallelProcessor(square_or_fail, executor=executor, batch_size=7).process(items)
    assert outcome(remote) == outcome(local)
    assert remote.successful == local.successful and remote.failed == local.failed > 0
    assert all(r.worker_id and r.worker_id.startswith("dask:") for r in remote.results)
    failed = remote.failed_results()[0]
    assert "ValueError: bad item 3" in failed.traceback


def test_results_stream_and_progress_counts_every_item(client) -> None:
    seen: list[tuple[int, int]] = []
    pp = ParallelProcessor(square_or_fail, executor=client, batch_size=4)
    pp.on_progress(lambda done, total: seen.append((done, total)))
    batch = pp.process(list(range(30)))
    assert seen == [(n, 30) for n in range(1, 31)]  # once per item, as the seed's callback
    ordered = list(ParallelProcessor(square_or_fail, executor=client, batch_size=3)
                   .iter(range(20), ordered=True))
    assert [r.index for r in ordered] == list(range(20))
    assert batch.successful + batch.failed == 30


def test_initializer_runs_once_per_worker(client, tmp_path) -> None:
    log = tmp_path / "init.log"
    batch = ParallelProcessor(worker_pid, executor=client, batch_size=1,
                              initializer=record_pid, initargs=(str(log),)).process(range(40))
    used = {r.result for r in batch.results}
    initialized = Counter(int(line) for line in log.read_text().split())
    assert len(used) == 2  # both workers ran items
    assert set(initialized) == used and set(initialized.values()) == {1}


def test_timeout_marks_the_stuck_item_and_the_rest_completes(client) -> None:
    items = [0.0, 0.0, 3.0, 0.0, 0.0]
    batch = ParallelProcessor(sleep_on, executor=client, batch_size=5, timeout=0.5).process(items)
    assert [r.status for r in batch.results] == [Status.OK, Status.OK, Status.TIMEOUT,
                                                 Status.OK, Status.OK]
    assert batch.results[2].error_type == "TimeoutError"


def test_retries_run_on_the_worker(client, tmp_path) -> None:
    batch = ParallelProcessor(fail_once, executor=client, retries=2, backoff=0.01).process(
        [str(tmp_path)])
    assert batch.results[0].success and batch.results[0].attempts == 2


# --- native jobs ------------------------------------------------------------------------------


def make_tree(root: Path, n: int = 60) -> Path:
    for i in range(n):
        # sizes repeat, so same-size candidates end up in different shards
        write(root / f"d{i % 4}" / f"f{i:03}.bin", bytes([i % 9]) * (100 + (i % 6) * 50))
    write(root / "empty.bin", b"")
    return root


def test_hash_files_equals_local(client, tmp_path) -> None:
    root = make_tree(tmp_path / "t")
    assert hash_files(root, client=client, sort=True) == hash_files(root, sort=True)
    assert hash_files(root, "sha256", client=client, extensions={".bin"}, min_size=200,
                      sort=True) == hash_files(root, "sha256", extensions={".bin"},
                                               min_size=200, sort=True)
    paths = sorted(root.rglob("*.bin"))[:20] + [root / "missing.bin"]
    remote = hash_files(paths, client=client)
    assert remote == hash_files(paths)
    assert remote[-1].error_type == "FileNotFoundError" and remote[-1].digest is None


def test_hash_files_with_cache_is_kept_by_the_client(client, tmp_path) -> None:
    root = make_tree(tmp_path / "t", 20)
    db = tmp_path / "cache.sqlite"
    first = hash_files(root, client=client, cache=db, sort=True)
    again = hash_files(root, client=client, cache=db, sort=True)
    assert [r.digest for r in again] == [r.digest for r in first]
    assert not any(r.cached for r in first) and all(r.cached for r in again)


def test_find_duplicates_finds_copies_across_shards(client, tmp_path) -> None:
    root = make_tree(tmp_path / "t")
    os.link(root / "d0" / "f000.bin", root / "hard.bin")
    local = find_duplicates(root)
    remote = find_duplicates(root, client=client)
    assert remote.equals(local) and len(local) > 10
    assert remote.attrs["reclaimable_bytes"] == local.attrs["reclaimable_bytes"] > 0
    # files of one size (the only duplicate candidates) are spread over shards, not kept together
    assert balanced_shards([150] * 4, 2) == [[0, 2], [1, 3]]


def test_scan_of_several_roots_equals_local(client, tmp_path) -> None:
    roots = [make_tree(tmp_path / f"r{i}", 10 + i) for i in range(3)]
    local = scan(*roots, include=["*.bin"], min_size=1, sort=True)
    remote = scan(*roots, include=["*.bin"], min_size=1, sort=True, client=client)
    assert remote.files == local.files and remote.entries_seen == local.entries_seen
    unsorted = scan(*roots, client=client)
    assert sorted(f.path for f in unsorted) == sorted(f.path for f in scan(*roots))


def write_csvs(root: Path) -> Path:
    for i in range(7):
        # int in even files, float in odd ones: the merge must promote across shards
        rows = "".join(f"{j},{j * 0.5 if i % 2 else j},k{j % 3}\n" for j in range(25))
        write(root / f"part{i}.csv", "a,b,c\n" + rows)
    write(root / "extra.csv", "a,d\n1,x\n")
    write(root / "broken.csv", b"a,b\n\xff\xfe,1\n")
    write(root / "empty.csv", "")
    return root


def test_aggregate_equals_local(client, tmp_path) -> None:
    import pandas.testing as pdt

    root = write_csvs(tmp_path / "csv")
    local = aggregate(root)
    remote = aggregate(root, client=client)
    pdt.assert_frame_equal(remote, local)
    lr, rr = local.attrs["report"], remote.attrs["report"]
    assert [(e.path, e.error_type) for e in rr.failed] == [(e.path, e.error_type)
                                                            for e in lr.failed] != []
    assert rr.rows == lr.rows and rr.empty_files == lr.empty_files == ["empty.csv"]
    assert rr.type_changes == lr.type_changes and rr.missing_columns == lr.missing_columns


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


def test_extract_zips_equals_local(client, tmp_path) -> None:
    extract = pytest.importorskip("parallel_file_processor.extract")
    src = tmp_path / "zips"
    src.mkdir()
    for i in range(6):
        with zipfile.ZipFile(src / f"a{i}.zip", "w") as z:
            for j in range(i + 1):
                z.writestr(f"dir/file{j}.txt", f"archive {i} entry {j}\n" * (j + 1))
    write(src / "corrupt.zip", b"PK\x03\x04 not really a zip")
    local = extract.extract_zips(src, tmp_path / "out_local")
    remote = extract.extract_zips(src, tmp_path / "out_remote", client=client)

    def key(results, out):
        return [(r.archive, r.destination.relative_to(out), r.files_extracted, r.bytes, r.status,
                 r.error_type) for r in results]

    assert key(remote, tmp_path / "out_remote") == key(local, tmp_path / "out_local")
    assert remote[-1].status == "failed" or any(r.status == "failed" for r in remote)
    assert (tmp_path / "out_remote" / "a5" / "dir" / "file5.txt").read_text() == \
        (tmp_path / "out_local" / "a5" / "dir" / "file5.txt").read_text()


def test_balanced_shards_are_balanced_and_complete() -> None:
    sizes = [1_000_000, 10, 10, 900_000, 5, 500_000, 500_000, 7]
    shards = balanced_shards(sizes, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(sizes)))
    weights = sorted(sum(sizes[i] for i in s) for s in shards)
    assert weights[-1] - weights[0] <= max(sizes)
    assert all(s == sorted(s) for s in shards)


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
