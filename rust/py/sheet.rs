//! Bindings for `crate::sheet`: workbooks in, column buffers out (one copy into `bytes` per
//! buffer, no Python object per cell).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::common::run_job;
use crate::progress::Progress;
use crate::sheet::{self, Column, SheetOptions, SheetSel, Table, Values};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_sheets, m)?)?;
    Ok(())
}

fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // Plain numbers in native (little-endian on every supported target) order.
    // SAFETY: any initialised slice of plain numbers is valid as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

fn column<'py>(py: Python<'py>, c: &Column) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("type", c.values.type_name())?;
    d.set_item("mixed", c.mixed)?;
    d.set_item("validity", c.validity.as_ref().map(|v| PyBytes::new(py, v)))?;
    let values = match &c.values {
        Values::Null => None,
        Values::Int64(v) | Values::Timestamp(v) | Values::Time(v) | Values::Duration(v) => {
            Some(PyBytes::new(py, as_bytes(v)))
        }
        Values::Float64(v) => Some(PyBytes::new(py, as_bytes(v))),
        Values::Bool(v) => Some(PyBytes::new(py, v)),
        Values::Str { data, offsets } => {
            d.set_item("offsets", PyBytes::new(py, as_bytes(offsets)))?;
            Some(PyBytes::new(py, data))
        }
    };
    d.set_item("values", values)?;
    Ok(d)
}

fn table<'py>(py: Python<'py>, t: &Table) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sheet", &t.sheet)?;
    d.set_item("header", &t.header)?;
    d.set_item("rows", t.rows)?;
    let cols = PyList::empty(py);
    for c in &t.columns {
        cols.append(column(py, c)?)?;
    }
    d.set_item("columns", cols)?;
    Ok(d)
}

fn one_char(name: &str, s: Option<&str>) -> PyResult<Option<char>> {
    let Some(s) = s else { return Ok(None) };
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(Some(c)),
        _ => Err(PyValueError::new_err(format!(
            "{name} must be a single character, got {s:?}"
        ))),
    }
}

/// Read workbooks in parallel (rayon, GIL released). One entry per path, in order: a list of
/// sheets (dicts: `sheet`, `header`, `rows`, `columns`; each column a dict with `type`,
/// `values`, `validity`, `offsets` for strings, `mixed`), or a tuple
/// `(error_type, message)` when the workbook could not be read.
#[pyfunction]
#[pyo3(signature = (
    paths, *, sheet_index=0, sheet_name=None, all_sheets=false, header=Some(0), skiprows=0,
    nrows=None, na_values=vec![], keep_default_na=true, decimal=".", thousands=None,
    workers=None, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn read_sheets<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    sheet_index: usize,
    sheet_name: Option<String>,
    all_sheets: bool,
    header: Option<usize>,
    skiprows: usize,
    nrows: Option<usize>,
    na_values: Vec<String>,
    keep_default_na: bool,
    decimal: &str,
    thousands: Option<&str>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyList>> {
    let sheet = if all_sheets {
        SheetSel::All
    } else if let Some(n) = sheet_name {
        SheetSel::Name(n)
    } else {
        SheetSel::Index(sheet_index)
    };
    let opts = SheetOptions {
        sheet,
        header,
        skiprows,
        nrows,
        na_values,
        keep_default_na,
        decimal: one_char("decimal", Some(decimal))?.unwrap_or('.'),
        thousands: one_char("thousands", thousands)?,
    };
    let counters = Arc::new(Progress::new());
    let results = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(workers, || sheet::read_workbooks(&paths, &opts, &counters))
    })?;
    let out = PyList::empty(py);
    for r in results {
        match r {
            Ok(tables) => {
                let sheets = PyList::empty(py);
                for t in &tables {
                    sheets.append(table(py, t)?)?;
                }
                out.append(sheets)?;
            }
            Err(e) => out.append(PyTuple::new(py, [e.error_type, e.message])?)?,
        }
    }
    Ok(out)
}
