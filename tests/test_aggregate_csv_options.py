"""CSV as Europe writes it, on the native (Arrow) path: what pandas.read_csv gives with the same
options (``sep=";"``, ``decimal=","``, ``thousands=``, cp1252 / latin-1, a BOM, CRLF, and
``sep=None`` sniffing the delimiter per file)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import write
from hypothesis import given
from hypothesis import strategies as st
from parallel_file_processor import aggregate


def ours(path: Path, **kw) -> pd.DataFrame:
    df = aggregate([path], source_column=None, **kw)
    assert not df.attrs["report"].failed, df.attrs["report"].failed
    return df


def same_as_pandas(path: Path, **kw) -> pd.DataFrame:
    expected = pd.read_csv(path, **({"engine": "python"} if kw.get("sep", ",") is None else {}),
                           **kw)
    expected.columns = [str(c) for c in expected.columns]  # header=None: ours are "0", "1"...
    got = ours(path, **kw)
    pd.testing.assert_frame_equal(got, expected)
    return got


@pytest.fixture
def native_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a file is handed to pandas' parser: these options must be read by Arrow."""
    import pandas

    def refuse(*args, **kwargs):
        raise AssertionError("pandas.read_csv was called: the native path was not taken")

    monkeypatch.setattr(pandas, "read_csv", refuse)


def test_semicolon_and_decimal_comma(tmp_path: Path) -> None:
    path = write(tmp_path / "de.csv", "Artikel;Preis;Menge;Notiz\nÄpfel;1,25;3;frisch\n"
                 "Birnen;0,5;;\nKäse;12,0;1;NA\n")
    df = same_as_pandas(path, sep=";", decimal=",")
    assert df["Preis"].tolist() == [1.25, 0.5, 12.0] and str(df["Menge"].dtype) == "float64"


def test_native_path_is_taken(tmp_path: Path, native_only: None) -> None:
    write(tmp_path / "a.csv", "x;y\n1.234,5;a\n2,5;b\n")
    write(tmp_path / "b.csv", "x,y\n3,c\n")
    df = aggregate(tmp_path / "a.csv", sep=";", decimal=",", thousands=".")
    assert df["x"].tolist() == [1234.5, 2.5]
    assert aggregate(tmp_path, sep=None)["y"].tolist() == ["a", "b", "c"]
    latin = write(tmp_path / "l.csv", "n;v\ncaf\xe9;1,5\n".encode("latin-1"))
    assert aggregate([latin], sep=";", decimal=",", encoding="latin-1")["n"].tolist() == ["café"]


def test_thousands_separators(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "id;amount;count;text;flag\n"
                 "1;1.234,56;1.000;a.b;True\n2;-12.345.678,9;2.000.000;x;false\n"
                 "3;7;3;1.2;TRUE\n4;;;;\n")
    df = same_as_pandas(path, sep=";", decimal=",", thousands=".")
    assert df["amount"].tolist()[:3] == [1234.56, -12345678.9, 7.0]
    assert df["count"].tolist()[:3] == [1000, 2000000, 3]
    us = write(tmp_path / "us.csv", "amount,n\n\"1,234.5\",\"1,000\"\n\"12.25\",7\n")
    got = same_as_pandas(us, thousands=",")
    assert got["amount"].tolist() == [1234.5, 12.25] and got["n"].tolist() == [1000, 7]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_windows_encodings(tmp_path: Path, encoding: str) -> None:
    text = "Name;Stadt;Betrag\nJosé;Zürich;1,5\nFrançois;Malmö;2\n"
    if encoding == "cp1252":
        text += "Euro;€uropa;3,25\n"
    path = write(tmp_path / f"{encoding}.csv", text.encode(encoding))
    df = same_as_pandas(path, sep=";", decimal=",", encoding=encoding)
    assert df["Stadt"].iloc[1] == "Malmö"


def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufeffa;b\r\n1,5;x\r\n2;\"y\r\nz\"\r\n".encode())
    df = same_as_pandas(path, sep=";", decimal=",")
    assert list(df.columns) == ["a", "b"] and df["a"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize("sep", [";", ",", "\t", "|"])
def test_sep_none_sniffs_each_file(tmp_path: Path, sep: str) -> None:
    rows = [["id", "name", "value"], ["1", "ab", "2.5"], ["2", "cd", "3"], ["3", "e f", "4"]]
    path = write(tmp_path / "s.csv", "\n".join(sep.join(r) for r in rows) + "\n")
    same_as_pandas(path, sep=None)


def test_sep_none_per_file_in_one_folder(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "id;v\n1;x\n")
    write(tmp_path / "b.csv", "id,v\n2,y\n")
    write(tmp_path / "c.csv", "id\tv\n3\tz\n")
    df = aggregate(tmp_path, sep=None)
    assert df["id"].tolist() == [1, 2, 3] and df["v"].tolist() == ["x", "y", "z"]
    # one column: pandas' Sniffer would split "single" at its "s"; here it stays whole
    write(tmp_path / "d.csv", "single\n1\n2\n")
    assert aggregate(tmp_path / "d.csv", sep=None)["single"].tolist() == [1, 2]
    write(tmp_path / "e.csv", 'a;b,c\n"x;y",1\n2;"z,w"\n')
    undecided = aggregate(tmp_path / "e.csv", sep=None)
    if undecided.attrs["report"].failed:  # the Sniffer may or may not decide on this one
        [err] = undecided.attrs["report"].failed
        assert "delimiter" in err.message and err.path.name == "e.csv"


def test_header_and_names_as_pandas(tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", "report\nx;x;;y\n1;2;3;4\n")
    same_as_pandas(path, sep=";", header=1)
    same_as_pandas(path, sep=";", skiprows=1)
    same_as_pandas(path, sep=";", skiprows=2, header=None)


def test_other_options_still_fall_back_to_pandas(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "# exported\nx;y\n1,5;2\n")
    df = ours(path, sep=";", decimal=",", comment="#")
    assert df["x"].tolist() == [1.5]


words = st.text(alphabet="abcdeäöüß XYZ", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s.lower() not in ("nan", "na", "null", "none", "true", "false"))


@st.composite
def european_tables(draw):
    n = draw(st.integers(1, 15))
    kinds = draw(st.lists(st.sampled_from(["int", "float", "text", "big"]), min_size=1,
                          max_size=5))
    cols: dict[str, list] = {}
    for i, kind in enumerate(kinds):
        if kind == "int":
            values = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n))
        elif kind == "float":
            values = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(
                lambda f: round(f, 3)), min_size=n, max_size=n))
        elif kind == "big":
            values = draw(st.lists(st.integers(-10**9, 10**9), min_size=n, max_size=n))
        else:
            values = draw(st.lists(words, min_size=n, max_size=n))
        if draw(st.booleans()):
            gaps = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            values = [None if g else v for v, g in zip(values, gaps)]
        cols[f"c{i}_{kind}"] = values
    return cols


def thousands_text(v, kind: str) -> str:
    """A number as a German spreadsheet exports it: 1.234.567,5."""
    if v is None:
        return ""
    if kind == "text":
        return v
    whole, _, frac = f"{abs(v):.3f}".partition(".") if isinstance(v, float) else (
        str(abs(v)), "", "")
    groups = f"{int(whole):,}".replace(",", ".")
    sign = "-" if v < 0 else ""
    return f"{sign}{groups},{frac}" if frac else f"{sign}{groups}"


@given(cols=european_tables(), encoding=st.sampled_from(["utf-8", "cp1252", "latin-1"]),
       crlf=st.booleans())
def test_generated_european_files_equal_pandas(tmp_path_factory, cols, encoding, crlf) -> None:
    d = tmp_path_factory.mktemp("eu")
    names = list(cols)
    n = len(cols[names[0]])
    nl = "\r\n" if crlf else "\n"
    lines = [";".join(names)] + [
        ";".join(thousands_text(cols[c][i], c.split("_")[1]) for c in names) for i in range(n)]
    path = d / "eu.csv"
    path.write_bytes((nl.join(lines) + nl).encode(encoding))
    opts = {"sep": ";", "decimal": ",", "thousands": ".", "encoding": encoding}
    expected = pd.read_csv(path, **opts)
    got = ours(path, **opts)
    pd.testing.assert_frame_equal(got, expected)
    # and written by pandas itself, without thousands separators
    frame = pd.read_csv(io.StringIO(path.read_bytes().decode(encoding)), **{
        k: v for k, v in opts.items() if k != "encoding"})
    plain = d / "plain.csv"
    frame.to_csv(plain, sep=";", decimal=",", index=False, encoding=encoding)
    same_as_pandas(plain, sep=";", decimal=",", encoding=encoding)
    if len(names) > 1:  # one column: pandas' Sniffer picks a letter of the name
        same_as_pandas(plain, sep=None, decimal=",", encoding=encoding)


def test_missing_value_markers(tmp_path: Path) -> None:
    path = write(tmp_path / "na.csv", "a;b;c\n-999;x;None\n1;-999.0;<NA>\n-999.0;NA;3\n")
    same_as_pandas(path, sep=";", na_values=["-999"])
    same_as_pandas(path, sep=";", na_values=[-999], keep_default_na=False)
    same_as_pandas(path, sep=";")
