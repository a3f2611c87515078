"""Spreadsheets in ``aggregate``: the rows pandas.read_excel gives, read natively and in parallel.

Workbooks are built here with openpyxl (.xlsx, .xlsm) and pandas' odf writer (.ods). No
maintained library writes .xls any more, so the .xls case reads ``tests/data/sample.xls``, a
small committed workbook made once with xlwt by ``tests/data/make_sample_xls.py``.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import aggregate, aggregate_csv

openpyxl = pytest.importorskip("openpyxl")

DATA = Path(__file__).resolve().parent / "data"


def read_excel(path: Path, **kw) -> pd.DataFrame:
    """pandas' own reading, with text column names (ours are always text)."""
    engine = {".ods": "odf", ".xls": "xlrd"}.get(path.suffix, "openpyxl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' notes on its future default engines
        df = pd.read_excel(path, engine=engine, **kw)
    df.columns = [str(c) for c in df.columns]
    return df


def ours(path: Path, **kw) -> pd.DataFrame:
    df = aggregate([path], source_column=None, **kw)
    assert not df.attrs["report"].failed, df.attrs["report"].failed
    return df


def assert_same(path: Path, **kw) -> None:
    """Our frame equals pandas', except that a column pandas keeps as mixed Python objects
    (numbers and text...) is text here: ``str()`` of each of pandas' values."""
    expected = read_excel(path, **kw)
    got = ours(path, **kw)
    if expected.empty and got.empty and not len(expected.columns):
        assert not len(got.columns)
        return
    mixed = [c for cols in got.attrs["report"].mixed_columns.values() for c in cols]
    for name in mixed:
        assert expected[name].dtype == object, name
        as_text = [None if pd.isna(v) else str(v) for v in expected[name]]
        assert [None if pd.isna(v) else v for v in got[name]] == as_text, name
        expected[name] = got[name]
    pd.testing.assert_frame_equal(got, expected)


def workbook(path: Path, rows: list[list], *, at: tuple[int, int] = (1, 1),
             formats: dict[int, str] | None = None) -> Path:
    """Write ``rows`` from cell ``at`` (row, column; 1-based); ``formats`` sets a column's
    number format."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is None:
                continue
            cell = ws.cell(row=at[0] + i, column=at[1] + j, value=value)
            if formats and j in formats:
                cell.number_format = formats[j]
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


KINDS = [
    ["i", "f", "s", "b", "when", "day", "t", "dur", "numtext", "na_text", "gaps", "bool_gaps",
     "", "i", "empty", "yes_no"],
    [1, 1.5, "a", True, dt.datetime(2024, 1, 2, 3, 4, 5, 250000), dt.date(2023, 5, 6),
     dt.time(1, 2, 3), dt.timedelta(hours=30, minutes=5), "12", "NA", 1, True, 7, 5, None,
     "TRUE"],
    [2, 2.0, None, False, dt.datetime(1999, 12, 31, 23, 59, 59), dt.date(1900, 3, 1),
     dt.time(23, 59, 59), dt.timedelta(seconds=1.5), "3.5", "ok", None, None, 8, 6, None,
     "false"],
    [-3, -0.125, "Dóra", True, dt.datetime(2038, 1, 19, 3, 14, 7), dt.date(2020, 2, 29),
     dt.time(0, 0, 1), dt.timedelta(days=2), " 7 ", "n/a", 3, False, 9, 7, None, "True"],
]


def test_every_kind_of_cell_equals_pandas(tmp_path: Path) -> None:
    path = workbook(tmp_path / "kinds.xlsx", KINDS)
    assert_same(path)
    df = ours(path)
    assert list(df.columns)[12:14] == ["Unnamed: 12", "i.1"]  # blank and duplicate names
    assert str(df["i"].dtype) == "int64" and str(df["gaps"].dtype) == "float64"
    assert str(df["when"].dtype).startswith("datetime64") and df["b"].dtype == bool
    assert df["yes_no"].tolist() == [True, False, True]
    assert df.attrs["report"].mixed_columns == {}


def test_xlsm_and_sheet_layouts(tmp_path: Path) -> None:
    assert_same(workbook(tmp_path / "macro.xlsm", KINDS))
    # data starting at C3: the empty rows and columns before it are kept, as pandas does
    offset = workbook(tmp_path / "offset.xlsx", [["h1", "h2"], [1, 2], [None, None], [3]],
                      at=(3, 3))
    assert_same(offset)  # the header is the empty first row; h1 and 1 share columns
    assert_same(offset, header=2)
    assert list(ours(offset, header=2).columns) == ["Unnamed: 0", "Unnamed: 1", "h1", "h2"]
    # one column with gaps and blank-looking text
    assert_same(workbook(tmp_path / "one.xlsx", [["h"], [1], [None], ["  "], [2], ["x "]]))
    # ragged rows, trailing empty rows, a header-only sheet, an empty sheet
    assert_same(workbook(tmp_path / "ragged.xlsx", [["a", "b"], [1], [2, 3, 4], [None]]))
    assert_same(workbook(tmp_path / "header_only.xlsx", [["a", "b"]]))
    assert_same(workbook(tmp_path / "empty.xlsx", []))
    # the names pandas gives duplicates: a number already taken is skipped
    assert_same(workbook(tmp_path / "dups.xlsx", [["a", "a", "a.1", "", None, "b"],
                                                  [1, 2, 3, 4, 5, 6, 7]]))


def test_dates_near_the_epoch_and_formats(tmp_path: Path) -> None:
    rows = [["d"]] + [[v] for v in (0.5, 1, 59, 60, 61, 45000.123456789)]
    path = workbook(tmp_path / "serials.xlsx", rows, formats={0: "yyyy-mm-dd hh:mm:ss"})
    # times and datetimes mixed: pandas keeps Python objects, this reads their text
    assert_same(path)
    assert list(ours(path).attrs["report"].mixed_columns.values()) == [["d"]]
    only_dates = workbook(tmp_path / "dates.xlsx",
                          [["d"]] + [[v] for v in (1, 59, 60, 61, 45000.5)],
                          formats={0: "yyyy-mm-dd hh:mm:ss"})
    assert_same(only_dates)


def test_options_read_natively(tmp_path: Path) -> None:
    path = workbook(tmp_path / "opts.xlsx", [["title"], ["a", "b"], [1, "-999"], [2, "x"],
                                             [3, "1.234,5"], [-999, None]])
    assert_same(path, skiprows=1)
    assert_same(path, header=1, na_values=["-999"])
    assert_same(path, header=None)
    assert_same(path, header=1, nrows=2)
    assert_same(path, header=1, keep_default_na=False, na_values=["x"])
    assert_same(path, header=1, thousands=".", decimal=",")


def test_pandas_only_options_fall_back_to_pandas(tmp_path: Path) -> None:
    path = workbook(tmp_path / "cols.xlsx", [["a", "b", "c"], [1, 2, 3], [4, 5, 6]])
    df = ours(path, usecols="A:B")
    assert list(df.columns) == ["a", "b"] and df["b"].tolist() == [2, 5]


cell_text = st.sampled_from(["x", "NA", "", "TRUE", "false", "1.5", "12", " ", "a b", "é", "0"])
columns = st.sampled_from(["int", "float", "text", "bool", "datetime", "date", "numeric", "time",
                           "duration"])


@st.composite
def tables(draw):
    kinds = draw(st.lists(columns, min_size=1, max_size=5))
    n = draw(st.integers(0, 12))
    header = draw(st.lists(st.sampled_from(["a", "b", "a", "", "c.1", "c", "x y"]),
                           min_size=len(kinds), max_size=len(kinds)))
    values = {
        "int": st.integers(-(2**40), 2**40),
        "float": st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
        "text": cell_text,
        "bool": st.booleans(),
        "datetime": st.datetimes(dt.datetime(1900, 3, 1), dt.datetime(2200, 1, 1)),
        "date": st.dates(dt.date(1900, 3, 1), dt.date(2200, 1, 1)),
        "numeric": st.sampled_from(["1", "2.5", "-3", "1e3", " 4 ", "NA", ""]),
        "time": st.times(),
        "duration": st.timedeltas(dt.timedelta(0), dt.timedelta(days=1000)),
    }
    cols = []
    for kind in kinds:
        gap = st.none() | values[kind] if draw(st.booleans()) else values[kind]
        cols.append(draw(st.lists(gap, min_size=n, max_size=n)))
    rows = [header] + [[c[i] for c in cols] for i in range(n)]
    return rows, (draw(st.integers(1, 3)), draw(st.integers(1, 3)))


@given(table=tables())
def test_generated_workbooks_equal_pandas(tmp_path_factory, table) -> None:
    rows, at = table
    path = workbook(tmp_path_factory.mktemp("wb") / "gen.xlsx", rows, at=at)
    assert_same(path)
    if at != (1, 1):
        assert_same(path, header=at[0] - 1)


def test_ods(tmp_path: Path) -> None:
    pytest.importorskip("odf")
    frame = pd.DataFrame({
        "when": [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(2021, 6, 30)],
        "i": [1, 2, 3],
        "f": [1.5, None, -2.25],
        "b": [True, False, True],
        "s": ["x", None, "NA"],
    })
    path = tmp_path / "book.ods"
    frame.to_excel(path, index=False, engine="odf")
    assert_same(path)


def test_xls_fixture() -> None:
    pytest.importorskip("xlrd")
    assert_same(DATA / "sample.xls")
    assert_same(DATA / "sample.xls", sheet_name="Totals")


def test_sheet_by_name_index_or_all(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "Jan"
    for row in [["id", "v"], [1, 10], [2, 20]]:
        first.append(row)
    second = wb.create_sheet("Feb")
    for row in [["id", "v", "extra"], [3, 30.5, "x"]]:
        second.append(row)
    wb.create_sheet("Blank")
    path = tmp_path / "months.xlsx"
    wb.save(path)
    assert ours(path)["id"].tolist() == [1, 2]
    assert ours(path, sheet="Feb")["v"].tolist() == [30.5]
    assert ours(path, sheet=1)["extra"].tolist() == ["x"]
    every = aggregate([path], sheet="all")
    assert every["_sheet"].astype(str).tolist() == ["Jan", "Jan", "Feb"]
    assert every["v"].tolist() == [10, 20, 30.5]
    assert every["_source_file"].astype(str).unique().tolist() == [str(path)]
    missing = aggregate([path], sheet="Mar")
    [err] = missing.attrs["report"].failed
    assert err.path == path and "Mar" in err.message and "Jan, Feb, Blank" in err.message


def test_bad_workbooks_are_reported_and_the_rest_merge(tmp_path: Path) -> None:
    workbook(tmp_path / "good.xlsx", [["a"], [1], [2]])
    write(tmp_path / "broken.xlsx", b"PK\x03\x04 not really a zip")
    write(tmp_path / "text.xls", "a,b\n1,2\n")
    errors = tmp_path / "errors.csv"
    df = aggregate(tmp_path, errors_path=errors)
    report = df.attrs["report"]
    assert df["a"].tolist() == [1, 2]
    assert sorted(e.path.name for e in report.failed) == ["broken.xlsx", "text.xls"]
    assert all(e.error_type == "ValueError" and e.message for e in report.failed)
    assert len(pd.read_csv(errors)) == 2


def test_mixed_folder_and_aggregate_csv(tmp_path: Path) -> None:
    workbook(tmp_path / "b.xlsx", [["id", "amount"], [3, 4.5]])
    write(tmp_path / "a.csv", "id,amount\n1,2.5\n2,3\n")
    df = aggregate(tmp_path)
    assert df["id"].tolist() == [1, 2, 3]
    assert df["_source_file"].astype(str).tolist() == ["a.csv", "a.csv", "b.xlsx"]
    # the seed's aggregate_csv reads the CSV files, and the workbooks too when asked to
    assert len(aggregate_csv(tmp_path)) == 2
    assert aggregate_csv(tmp_path, sheet=0)["id"].tolist() == [1, 2, 3]
    assert aggregate_csv(tmp_path, reader="auto")["id"].tolist() == [1, 2, 3]
    assert aggregate_csv(tmp_path / "b.xlsx")["amount"].tolist() == [4.5]
    from parallel_file_processor import FileProcessor

    assert len(FileProcessor().aggregate_csv(tmp_path, sheet="all")) == 3
    only = aggregate(tmp_path, reader="excel")
    assert only["amount"].tolist() == [4.5]


def test_many_workbooks_read_in_one_native_call(tmp_path: Path) -> None:
    for i in range(12):
        workbook(tmp_path / f"w{i:02d}.xlsx", [["n", "sq"]] + [[j, j * j] for j in range(50)])
    seen: list[tuple[int, int]] = []
    df = aggregate(tmp_path, workers=2, progress=lambda done, total: seen.append((done, total)))
    assert len(df) == 600 and seen[-1] == (12, 12)
    assert df.groupby("_source_file", observed=True).size().tolist() == [50] * 12


def pfp(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parallel_file_processor", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_reads_sheets(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["k"])
    wb.active.append([1])
    other = wb.create_sheet("Other")
    other.append(["k"])
    other.append([2])
    wb.save(tmp_path / "in.xlsx")
    res = pfp("aggregate", "in.xlsx", "-o", "out.csv", "--sheet", "all", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["k"].tolist() == [1, 2] and out["_sheet"].tolist() == ["Sheet", "Other"]
    res = pfp("aggregate", "in.xlsx", "-o", "one.csv", "--sheet", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert pd.read_csv(tmp_path / "one.csv")["k"].tolist() == [2]


def test_job_file_options_choose_the_sheets(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["k"])
    wb.active.append([1])
    wb.create_sheet("More").append(["k"])
    wb["More"].append([2])
    wb.save(write(tmp_path / "in" / "x.csv", "k\n0\n").parent / "book.xlsx")
    write(tmp_path / "job.yaml", "scan:\n  directory: in\nprocessing:\n  processor: aggregate\n"
          "  options: {sheet: all}\noutput:\n  combined_output: out/all.csv\n")
    res = pfp("run", "job.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = pd.read_csv(tmp_path / "out" / "all.csv")
    assert sorted(out["k"]) == [0, 1, 2] and out["_sheet"].isna().sum() == 1


def test_seed_yaml_merges_csv_and_xlsx(tmp_path: Path) -> None:
    from test_seed_examples import SEED_YAML

    raw = tmp_path / "data" / "raw"
    lines = ["Region,Amount,Units"] + [f"r{i % 3},{i * 1.5},{i}" for i in range(20)]
    write(raw / "2024-01.csv", "\n".join(lines) + "\n")
    workbook(raw / "2024-02.xlsx", [["Region", "Amount", "Units"]]
             + [[f"r{i % 3}", i * 2.5, i] for i in range(30)])
    workbook(raw / "sub" / "2024-03.xlsx", [["Region", "Amount", "Units", "Note"]]
             + [[f"r{i % 3}", i * 1.0, i, "late"] for i in range(10)])
    write(raw / "~$2024-02.xlsx", b"\x00" * 200)  # Excel's lock file: excluded by the YAML
    write(tmp_path / "config" / "parallel_processing.yaml", SEED_YAML)
    for _ in range(2):
        res = pfp("run", "config/parallel_processing.yaml", cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
        assert "3 of 3 files processed" in res.stdout
    combined = pd.read_csv(tmp_path / "data" / "processed" / "combined.csv")
    assert len(combined) == 60
    assert combined.groupby("_source_file").size().to_dict() == {
        "data/raw/2024-01.csv": 20, "data/raw/2024-02.xlsx": 30, "data/raw/sub/2024-03.xlsx": 10}
    assert combined["Note"].notna().sum() == 10
    results = pd.read_csv(tmp_path / "data" / "results" / "processing_results.csv")
    assert sorted(results["result_rows"]) == [10, 20, 30]


def test_cluster_reads_workbooks_as_a_local_run_does(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    wb = openpyxl.Workbook()
    wb.active.append(["id", "when"])
    wb.active.append([1, dt.datetime(2024, 5, 6, 7, 8, 9)])
    wb.create_sheet("Two").append(["id", "extra"])
    wb["Two"].append([2, "x"])
    wb.save(tmp_path / "book.xlsx")
    write(tmp_path / "a.csv", "id\n3\n")
    write(tmp_path / "broken.xlsx", b"not a workbook")
    out = tmp_path / "all.csv"
    with distributed.LocalCluster(processes=True, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        for _ in range(2):  # the second run finds its output in the folder
            local = aggregate(tmp_path, sheet="all", output_path=out, overwrite=True)
            remote = aggregate(tmp_path, sheet="all", client=client, output_path=out,
                               overwrite=True)
            pd.testing.assert_frame_equal(remote, local)
    assert local["id"].tolist() == [3, 1, 2]
    assert [e.path.name for e in remote.attrs["report"].failed] == ["broken.xlsx"]
    assert remote.attrs["report"].skipped_outputs == ["all.csv"]
