//! Bindings for `crate::hash`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::common::{file_errors, run_job};
use super::scan::{options, scan_error};
use crate::hash::{self, Algorithm, Hashed, Span};
use crate::progress::Progress;
use crate::scan;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(hash_paths, m)?)?;
    m.add_function(wrap_pyfunction!(hash_tree, m)?)?;
    m.add_function(wrap_pyfunction!(algorithms, m)?)?;
    Ok(())
}

type Row = (
    OsString,
    u64,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    u64,
    u64,
    i64,
);

fn rows(out: Vec<Hashed>) -> Vec<Row> {
    out.into_iter()
        .map(|h| {
            let (etype, msg) = match h.error {
                Some(e) => (Some(e.error_type), Some(e.message)),
                None => (None, None),
            };
            (
                h.path.into_os_string(),
                h.size,
                h.digest,
                etype,
                msg,
                h.changed,
                h.dev,
                h.ino,
                h.mtime_ns,
            )
        })
        .collect()
}

fn algorithm(name: &str) -> PyResult<Algorithm> {
    Algorithm::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        PyValueError::new_err(format!(
            "unknown algorithm {name:?}; choose one of {}",
            names.join(", ")
        ))
    })
}

fn span(head_tail: Option<u64>) -> Span {
    match head_tail {
        Some(n) => Span::HeadTail(n.max(1)),
        None => Span::Whole,
    }
}

/// The algorithm names this build supports.
#[pyfunction]
fn algorithms() -> Vec<&'static str> {
    Algorithm::ALL.iter().map(|a| a.name()).collect()
}

/// Hash the given files in parallel (GIL released). Rows of (path, size, digest, error_type,
/// message, changed, dev, ino, mtime_ns), in input order.
#[pyfunction]
#[pyo3(signature = (paths, algorithm, *, sizes=None, head_tail=None, workers=None, progress=None))]
fn hash_paths<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    algorithm: &str,
    sizes: Option<Vec<u64>>,
    head_tail: Option<u64>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Vec<Row>> {
    let algo = self::algorithm(algorithm)?;
    if let Some(s) = &sizes {
        if s.len() != paths.len() {
            return Err(PyValueError::new_err("sizes must match paths"));
        }
    }
    let counters = Arc::new(Progress::new());
    let out = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(workers, || {
            hash::hash_files(&paths, sizes.as_deref(), algo, span(head_tail), &counters)
        })
    })?;
    Ok(rows(out))
}

/// Scan `roots` with the scanner's filters and hash every file found, in one native job.
/// Returns a dict: `rows` (as `hash_paths`), `errors` (scan errors), `relative` (relative paths).
#[pyfunction]
#[pyo3(signature = (
    roots, algorithm, *, include=vec![], exclude=vec![], extensions=vec![], min_size=None,
    max_size=None, recursive=true, max_depth=None, skip_hidden=false, follow_symlinks=false,
    same_file_system=false, modified_after=None, modified_before=None, sort=false,
    head_tail=None, workers=None, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn hash_tree<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
    algorithm: &str,
    include: Vec<String>,
    exclude: Vec<String>,
    extensions: Vec<String>,
    min_size: Option<u64>,
    max_size: Option<u64>,
    recursive: bool,
    max_depth: Option<usize>,
    skip_hidden: bool,
    follow_symlinks: bool,
    same_file_system: bool,
    modified_after: Option<f64>,
    modified_before: Option<f64>,
    sort: bool,
    head_tail: Option<u64>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let algo = self::algorithm(algorithm)?;
    let opts = options(
        include,
        exclude,
        extensions,
        min_size,
        max_size,
        recursive,
        max_depth,
        skip_hidden,
        follow_symlinks,
        same_file_system,
        modified_after,
        modified_before,
        false,
        sort,
        workers,
    )?;
    let counters = Arc::new(Progress::new());
    let out = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(workers, || {
            let scanned = scan::scan(&roots, &opts, &Progress::new())?;
            let rel: Vec<OsString> = scanned
                .files
                .iter()
                .map(|e| e.relative(&roots).as_os_str().to_owned())
                .collect();
            let sizes: Vec<u64> = scanned.files.iter().map(|e| e.size).collect();
            let paths: Vec<PathBuf> = scanned.files.into_iter().map(|e| e.path).collect();
            let hashed = hash::hash_files(&paths, Some(&sizes), algo, span(head_tail), &counters);
            Ok::<_, scan::ScanError>((hashed, rel, scanned.errors))
        })
    })?;
    let (hashed, rel, errors) = out.map_err(|e| scan_error(py, e))?;
    let d = PyDict::new(py);
    d.set_item("rows", rows(hashed))?;
    d.set_item("relative", rel)?;
    d.set_item("errors", file_errors(errors))?;
    Ok(d)
}
