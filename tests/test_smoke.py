from pathlib import Path

import parallel_file_processor as pfp


def test_native_module_loads_and_scans(tree: Path) -> None:
    files = pfp.FileScanner(extensions={".csv"}).list_files(tree)
    assert {f.relative_path for f in files} == {
        "a.csv", "B.CSV", ".hidden.csv", "sub/c.csv", "sub/deep/d.csv", "build/x_backup.csv"
    }
