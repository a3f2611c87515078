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


def test_in_a_fresh_interpreter_the_names_stay_functions_whichever_module_loads_first() -> None:
    """``scan`` and ``aggregate`` are functions and submodules; the package imports neither up
    front (``import parallel_file_processor`` loads no capability), and whichever way the
    submodules get imported first, the package's names are the functions."""
    import subprocess
    import sys

    code = r"""
import sys
import parallel_file_processor as pfp
loaded = [m for m in ("parallel_file_processor.scan", "parallel_file_processor.aggregate",
                      "parallel_file_processor.types", "pandas") if m in sys.modules]
assert not loaded, loaded
import parallel_file_processor.aggregate
from parallel_file_processor.scan import FileScanner
from parallel_file_processor import aggregate, scan
import parallel_file_processor.scan as scan_again
assert callable(scan) and scan.__module__ == "parallel_file_processor.scan", scan
assert callable(aggregate) and aggregate.__module__ == "parallel_file_processor.aggregate"
assert pfp.scan is scan and pfp.aggregate is aggregate and scan_again is scan
assert sys.modules["parallel_file_processor.scan"].FileScanner is FileScanner
assert pfp.FileInfo is sys.modules["parallel_file_processor._core"].FileInfo
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
