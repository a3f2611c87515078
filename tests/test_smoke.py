from pathlib import Path

import parallel_file_processor as pfp


def test_native_module_loads_and_scans(tree: Path) -> None:
    files = pfp.FileScanner(extensions={".csv"}).list_files(tree)
    assert {f.relative_path for f in files} == {
        "a.csv", "B.CSV", ".hidden.csv", "sub/c.csv", "sub/deep/d.csv", "build/x_backup.csv"
    }


def test_scan_and_aggregate_stay_functions_after_their_modules_load() -> None:
    import importlib

    import parallel_file_processor as pfp

    importlib.import_module("parallel_file_processor.scan")
    importlib.import_module("parallel_file_processor.aggregate")
    from parallel_file_processor import aggregate, scan

    assert callable(scan) and scan is pfp.scan and scan.__module__.endswith(".scan")
    assert callable(aggregate) and aggregate.__module__.endswith(".aggregate")
