"""Type checkers see the package as users import it; importing it stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import parallel_file_processor as pfp
import pytest

PACKAGE = Path(pfp.__file__).parent
SCRIPT = Path(__file__).with_name("typed_user_script.py")


def test_readme_script_passes_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    # A project of the user's own: no config of ours, a cache of its own.
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / "cache"), str(SCRIPT)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_names_what_is_wrong(tmp_path: Path) -> None:
    # The check above is not vacuous: a wrong use of an exported name is an error.
    pytest.importorskip("mypy")
    bad = tmp_path / "bad.py"
    bad.write_text("from parallel_file_processor import hash_files\n"
                   "digest: str = hash_files('data')\n")
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / "cache"), str(bad)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 1 and 'has type "list[HashResult]"' in res.stdout, res.stdout


def _init_tree() -> ast.Module:
    return ast.parse((PACKAGE / "__init__.py").read_text())


def test_every_lazy_name_is_re_exported_for_type_checkers() -> None:
    """The lazy table, ``__all__`` and the ``TYPE_CHECKING`` imports name the same things."""
    typed: dict[str, str] = {}
    eager: set[str] = set()
    for node in _init_tree().body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    assert alias.asname == alias.name, f"{alias.name} needs 'as {alias.name}'"
                    typed[alias.name] = str(imp.module)
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                assert alias.asname == alias.name, f"{alias.name} needs 'as {alias.name}'"
                eager.add(alias.name)
        elif isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "_LAZY":
            assert node.value is not None
            lazy: dict[str, str] = ast.literal_eval(node.value)
    assert {n: m for n, m in lazy.items() if n not in eager} == typed
    assert set(pfp.__all__) == {"__version__", *eager, *lazy}
    for name in pfp.__all__:
        assert getattr(pfp, name) is not None


def test_import_stays_lazy() -> None:
    code = ("import sys, parallel_file_processor\n"
            "heavy = ('pandas', 'pyarrow', 'tqdm', 'asyncio', 'distributed',\n"
            "         'parallel_file_processor.engine', 'parallel_file_processor.hash')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
