//! Bindings for `crate::prefetch`.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::common::run_job;
use crate::prefetch;
use crate::progress::Progress;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_files, m)?)?;
    Ok(())
}

/// Read the files in parallel with the GIL released. Returns one entry per path: the bytes, or
/// `None` when the file was not read ahead (too large, not a regular file, or an error: the
/// caller reads it itself and gets the real exception).
#[pyfunction]
#[pyo3(signature = (paths, *, max_file_bytes = 64 << 20, workers = None))]
fn read_files<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    max_file_bytes: u64,
    workers: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    let progress = Arc::new(Progress::new());
    let out = run_job(py, &progress, None, || {
        crate::pool::with_workers(workers, || {
            prefetch::read_files(&paths, max_file_bytes, &progress)
        })
    })?;
    let items: Vec<Option<Bound<'py, PyBytes>>> = out
        .into_iter()
        .map(|r| r.ok().map(|b| PyBytes::new(py, &b)))
        .collect();
    PyList::new(py, items)
}
