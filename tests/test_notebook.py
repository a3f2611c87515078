"""The seed's examples in a notebook, as a Jupyter user runs them: cells executed one after
another by a real IPython kernel (functions defined in cells live in the kernel's
``__main__``), twice, including process mode, which must not need the main module."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_seed_examples import EXAMPLE_1, EXAMPLE_4, IMPORTS, monthly_csvs

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def run_notebook(cells: list[str], cwd: Path) -> list[str]:
    """Execute the cells in a fresh kernel; the text each cell printed."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    printed = []
    for cell in nb.cells:
        printed.append("".join(o.get("text", "") for o in cell.outputs
                               if o.get("output_type") == "stream" and o.get("name") == "stdout"))
    return printed


def test_the_seeds_examples_run_in_a_notebook(tmp_path: Path) -> None:
    monthly_csvs(tmp_path / "data" / "raw", n=3, rows=40)
    # Example 1 split over cells as a notebook user writes it: imports, then the rest.
    body = EXAMPLE_1.replace(IMPORTS, "")
    cells = [IMPORTS, body, EXAMPLE_4, EXAMPLE_4, "print(len(result.results), result.failed)"]
    printed = run_notebook(cells, tmp_path)
    assert "Summary:" in printed[1] and (tmp_path / "data/results/csv_stats.csv").exists()
    for out in printed[2:4]:
        assert out.count("Completed 1000/1000 items") == 1, out
    assert printed[4].strip() == "1000 0"


def test_shared_state_in_a_notebook_is_the_users(tmp_path: Path) -> None:
    cells = [
        "from parallel_file_processor import ParallelProcessor\n"
        "seen = []\n"
        "def remember(x):\n"
        "    seen.append(x)\n"
        "    return x * 2\n",
        "r = ParallelProcessor(remember, mode='thread_pool').process(range(500))\n"
        "print(r.successful, len(seen), sorted(seen) == list(range(500)))",
    ]
    printed = run_notebook(cells, tmp_path)
    assert printed[1].strip() == "500 500 True"
