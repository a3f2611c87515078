//! Bindings for `crate::scan`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::common::{file_errors, io_err, package_err, run_job};
use crate::progress::Progress;
use crate::scan::{self, Entry, ScanError, ScanOptions, ScanOutput};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan_tree, m)?)?;
    Ok(())
}

pub fn scan_error(py: Python<'_>, err: ScanError) -> PyErr {
    match err {
        ScanError::RootNotFound(p) => {
            PyFileNotFoundError::new_err(format!("Directory not found: {}", p.display()))
        }
        ScanError::NotADirectory(p) => package_err(
            py,
            "RootNotADirectoryError",
            format!("Not a directory: {}", p.display()),
        ),
        ScanError::Root(p, e) => io_err(&p, &e),
        e @ ScanError::Pattern { .. } => package_err(py, "PatternError", e.to_string()),
    }
}

fn secs_to_ns(t: Option<f64>) -> PyResult<Option<i64>> {
    t.map(|s| {
        if s.is_finite() {
            Ok((s * 1e9) as i64)
        } else {
            Err(PyValueError::new_err(
                "modified_after/modified_before must be finite",
            ))
        }
    })
    .transpose()
}

/// Build `ScanOptions` from the keyword arguments every scanning binding accepts.
#[allow(clippy::too_many_arguments)]
pub fn options(
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
    include_special: bool,
    sort: bool,
    threads: Option<usize>,
) -> PyResult<ScanOptions> {
    Ok(ScanOptions {
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
        modified_after_ns: secs_to_ns(modified_after)?,
        modified_before_ns: secs_to_ns(modified_before)?,
        include_special,
        sort,
        with_metadata: true,
        threads,
    })
}

/// A string column as one UTF-8 buffer plus int64 offsets (Arrow's large_string layout), so a
/// DataFrame of millions of rows is built without one Python object per row.
#[derive(Default)]
struct StrColumn {
    data: Vec<u8>,
    offsets: Vec<i64>,
    utf8: bool,
}

impl StrColumn {
    fn with_capacity(n: usize) -> Self {
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0);
        Self {
            data: Vec::with_capacity(n * 48),
            offsets,
            utf8: true,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.utf8 && std::str::from_utf8(bytes).is_err() {
            self.utf8 = false;
        }
        self.data.extend_from_slice(bytes);
        self.offsets.push(self.data.len() as i64);
    }

    fn into_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("data", PyBytes::new(py, &self.data))?;
        d.set_item("offsets", PyBytes::new(py, as_bytes(&self.offsets)))?;
        d.set_item("utf8", self.utf8)?;
        Ok(d)
    }
}

fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // Plain integers in native (little-endian on every supported target) order.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

fn columns<'py>(
    py: Python<'py>,
    roots: &[PathBuf],
    files: &[Entry],
) -> PyResult<Bound<'py, PyDict>> {
    let n = files.len();
    let mut path = StrColumn::with_capacity(n);
    let mut rel = StrColumn::with_capacity(n);
    let mut ext = StrColumn::with_capacity(n);
    let mut size = Vec::with_capacity(n);
    let mut mtime = Vec::with_capacity(n);
    for e in files {
        path.push(e.path.as_os_str().as_bytes());
        rel.push(e.relative(roots).as_os_str().as_bytes());
        ext.push(e.extension().as_bytes());
        size.push(e.size as i64);
        mtime.push(e.mtime_ns);
    }
    let d = PyDict::new(py);
    d.set_item("n", n)?;
    d.set_item("path", path.into_py(py)?)?;
    d.set_item("relative_path", rel.into_py(py)?)?;
    d.set_item("extension", ext.into_py(py)?)?;
    d.set_item("size_bytes", PyBytes::new(py, as_bytes(&size)))?;
    d.set_item("mtime_ns", PyBytes::new(py, as_bytes(&mtime)))?;
    Ok(d)
}

type Rows = (
    Vec<OsString>,
    Vec<OsString>,
    Vec<u64>,
    Vec<f64>,
    Vec<String>,
);

fn rows(roots: &[PathBuf], files: Vec<Entry>) -> Rows {
    let n = files.len();
    let mut out: Rows = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in files {
        out.1.push(e.relative(roots).as_os_str().to_owned());
        out.2.push(e.size);
        out.3.push(e.mtime_ns as f64 / 1e9);
        out.4.push(e.extension());
        out.0.push(e.path.into_os_string());
    }
    out
}

/// Scan `roots` and return a dict: `files` (lists of path, relative path, size, mtime seconds,
/// extension; or buffers when `columnar`), `special` ((path, kind) pairs), `errors`
/// ((path, error_type, message) triples), `entries_seen`.
#[pyfunction]
#[pyo3(signature = (
    roots, *, include=vec![], exclude=vec![], extensions=vec![], min_size=None, max_size=None,
    recursive=true, max_depth=None, skip_hidden=false, follow_symlinks=false,
    same_file_system=false, modified_after=None, modified_before=None, include_special=false,
    sort=false, threads=None, progress=None, columnar=false, with_metadata=true
))]
#[allow(clippy::too_many_arguments)]
fn scan_tree<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
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
    include_special: bool,
    sort: bool,
    threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    columnar: bool,
    with_metadata: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let mut opts = options(
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
        include_special,
        sort,
        threads,
    )?;
    opts.with_metadata = with_metadata;
    let counters = Arc::new(Progress::new());
    let out: Result<ScanOutput, ScanError> = run_job(py, &counters, progress.as_ref(), || {
        scan::scan(&roots, &opts, &counters)
    })?;
    let out = out.map_err(|e| scan_error(py, e))?;
    let d = PyDict::new(py);
    let special: Vec<(OsString, &'static str)> = out
        .special
        .iter()
        .map(|e| (e.path.as_os_str().to_owned(), e.kind.as_str()))
        .collect();
    d.set_item("special", special)?;
    d.set_item("errors", file_errors(out.errors))?;
    d.set_item("entries_seen", out.entries_seen)?;
    d.set_item("cancelled", out.cancelled)?;
    if columnar {
        d.set_item("files", columns(py, &roots, &out.files)?)?;
    } else {
        d.set_item("files", rows(&roots, out.files))?;
    }
    Ok(d)
}
