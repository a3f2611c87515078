//! Bindings for `crate::hash`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString, PyTuple};

use super::common::{file_errors, output_file, run_job, write_error};
use super::fileinfo::{make_path, untrack};
use super::scan::{scan_error, Options};
use crate::hash::{self, Algorithm, Hashed, Span};
use crate::output::{Cell, Format, RowWriter};
use crate::progress::Progress;
use crate::scan;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HashResult>()?;
    m.add_function(wrap_pyfunction!(hash_paths, m)?)?;
    m.add_function(wrap_pyfunction!(hash_scan, m)?)?;
    m.add_function(wrap_pyfunction!(algorithms, m)?)?;
    m.add_function(wrap_pyfunction!(write_hash_rows, m)?)?;
    m.add_function(wrap_pyfunction!(find_duplicates, m)?)?;
    Ok(())
}

fn opt_str(py: Python<'_>, s: Option<&str>) -> Option<Py<PyAny>> {
    s.map(|s| PyString::new(py, s).into_any().unbind())
}

/// One file's digest (``digest`` None and ``error`` set when it could not be hashed).
///
/// ``path`` is a :class:`pathlib.Path`, built on first access: a million results stay cheap.
/// ``dev``, ``ino`` and ``mtime_ns`` identify the file as it was hashed (what a cache keys on).
#[pyclass(module = "parallel_file_processor._core", name = "HashResult")]
pub struct HashResult {
    fspath: Py<PyAny>,
    path: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    size: u64,
    #[pyo3(get, set)]
    digest: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    error: Option<Py<PyAny>>,
    #[pyo3(get, set)]
    error_type: Option<Py<PyAny>>,
    /// the file changed (size, mtime or ctime) while it was being read: an error, no digest
    #[pyo3(get, set)]
    changed: bool,
    /// served from the cache without reading the file
    #[pyo3(get, set)]
    cached: bool,
    #[pyo3(get, set)]
    relative_path: Option<Py<PyAny>>,
    #[pyo3(get)]
    dev: u64,
    #[pyo3(get)]
    ino: u64,
    #[pyo3(get)]
    mtime_ns: i64,
}

impl HashResult {
    fn from_hashed(py: Python<'_>, h: Hashed, relative: Option<Py<PyAny>>) -> PyResult<Self> {
        let (etype, msg) = match &h.error {
            Some(e) => (Some(e.error_type.as_str()), Some(e.message.as_str())),
            None => (None, None),
        };
        Ok(Self {
            fspath: h.path.as_os_str().into_pyobject(py)?.into_any().unbind(),
            path: None,
            size: h.size,
            digest: opt_str(py, h.digest.as_deref()),
            error: opt_str(py, msg),
            error_type: opt_str(py, etype),
            changed: h.changed,
            cached: false,
            relative_path: relative,
            dev: h.dev,
            ino: h.ino,
            mtime_ns: h.mtime_ns,
        })
    }

    fn key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let none = || py.None();
        let opt = |o: &Option<Py<PyAny>>| o.as_ref().map(|v| v.clone_ref(py)).unwrap_or_else(none);
        PyTuple::new(
            py,
            [
                self.fspath.clone_ref(py),
                self.size.into_pyobject(py)?.into_any().unbind(),
                opt(&self.digest),
                opt(&self.error),
                opt(&self.error_type),
                PyBool::new(py, self.changed).to_owned().into_any().unbind(),
                PyBool::new(py, self.cached).to_owned().into_any().unbind(),
                opt(&self.relative_path),
            ],
        )
    }
}

#[pymethods]
impl HashResult {
    #[new]
    #[pyo3(signature = (path, size, digest, error = None, error_type = None, changed = false,
                        cached = false, relative_path = None, dev = 0, ino = 0, mtime_ns = 0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        size: u64,
        digest: Option<Py<PyAny>>,
        error: Option<Py<PyAny>>,
        error_type: Option<Py<PyAny>>,
        changed: bool,
        cached: bool,
        relative_path: Option<Py<PyAny>>,
        dev: u64,
        ino: u64,
        mtime_ns: i64,
    ) -> PyResult<Self> {
        let fspath = py.import("os")?.getattr("fspath")?.call1((path,))?;
        let is_path = path.is_instance(&py.import("pathlib")?.getattr("PurePath")?)?;
        Ok(Self {
            fspath: fspath.unbind(),
            path: is_path.then(|| path.clone().unbind()),
            size,
            digest,
            error,
            error_type,
            changed,
            cached,
            relative_path,
            dev,
            ino,
            mtime_ns,
        })
    }

    #[getter]
    fn path(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(p) = &self.path {
            return Ok(p.clone_ref(py));
        }
        let p = make_path(py, self.fspath.bind(py))?.unbind();
        self.path = Some(p.clone_ref(py));
        Ok(p)
    }

    #[setter]
    fn set_path(&mut self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.fspath = py
            .import("os")?
            .getattr("fspath")?
            .call1((value,))?
            .unbind();
        self.path = None;
        Ok(())
    }

    /// The path as a string, without building a :class:`pathlib.Path`.
    #[getter]
    fn path_str(&self, py: Python<'_>) -> Py<PyAny> {
        self.fspath.clone_ref(py)
    }

    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, ["path", "size", "digest", "error"])
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Ok(other) = other.cast::<HashResult>() else {
            return Ok(py.NotImplemented());
        };
        let same = self.key(py)?.eq(other.borrow().key(py)?)?;
        Ok(PyBool::new(py, same).to_owned().into_any().unbind())
    }

    fn __repr__(&mut self, py: Python<'_>) -> PyResult<String> {
        let path = self.path(py)?;
        let show = |o: &Option<Py<PyAny>>| -> PyResult<String> {
            Ok(match o {
                Some(v) => v.bind(py).repr()?.to_string(),
                None => "None".to_owned(),
            })
        };
        Ok(format!(
            "HashResult(path={}, size={}, digest={}, error={}, changed={}, cached={})",
            path.bind(py).repr()?,
            self.size,
            show(&self.digest)?,
            show(&self.error)?,
            if self.changed { "True" } else { "False" },
            if self.cached { "True" } else { "False" },
        ))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.borrow();
        let key = this.key(py)?;
        let mut args: Vec<Py<PyAny>> = key.iter().map(|v| v.unbind()).collect();
        args.push(this.dev.into_pyobject(py)?.into_any().unbind());
        args.push(this.ino.into_pyobject(py)?.into_any().unbind());
        args.push(this.mtime_ns.into_pyobject(py)?.into_any().unbind());
        PyTuple::new(
            py,
            [
                slf.get_type().into_any().unbind(),
                PyTuple::new(py, args)?.into_any().unbind(),
            ],
        )
    }
}

/// HashResult objects for hashed files, relative paths taken from their roots.
fn results<'py>(
    py: Python<'py>,
    files: Vec<(Option<usize>, Hashed)>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (rel_start, h) in files {
        let relative = match rel_start {
            Some(start) => Some(
                OsStr::from_bytes(
                    h.path
                        .as_os_str()
                        .as_bytes()
                        .get(start..)
                        .unwrap_or_default(),
                )
                .into_pyobject(py)?
                .into_any()
                .unbind(),
            ),
            None => None,
        };
        let made = Bound::new(py, HashResult::from_hashed(py, h, relative)?)?;
        untrack(made.as_any());
        list.append(made)?;
    }
    Ok(list)
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
/// With ``results=True``, a list of HashResult instead (no relative paths).
#[pyfunction]
#[pyo3(signature = (paths, algorithm, *, sizes=None, head_tail=None, workers=None, progress=None,
                    results=false))]
#[allow(clippy::too_many_arguments)]
fn hash_paths<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    algorithm: &str,
    sizes: Option<Vec<u64>>,
    head_tail: Option<u64>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    results: bool,
) -> PyResult<Bound<'py, PyAny>> {
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
    if results {
        return Ok(self::results(py, out.into_iter().map(|h| (None, h)).collect())?.into_any());
    }
    Ok(rows(out).into_pyobject(py)?.into_any())
}

/// Scan `roots` with `options` (an `options.ScanOptions`) and hash every file as the walk
/// finds it, in one native job. Returns a dict: `files` (HashResult, relative paths set, in
/// the scan's order), `errors` ((path, error_type, message) of what could not be listed).
#[pyfunction]
#[pyo3(signature = (roots, options, algorithm, *, head_tail=None, workers=None, progress=None))]
fn hash_scan<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
    options: Options,
    algorithm: &str,
    head_tail: Option<u64>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let algo = self::algorithm(algorithm)?;
    let mut opts = options.0;
    opts.threads = workers.or(opts.threads);
    let counters = Arc::new(Progress::new());
    let out = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(opts.threads, || {
            hash::hash_tree(&roots, &opts, algo, span(head_tail), &counters)
        })
    })?;
    let out = out.map_err(|e| scan_error(py, e))?;
    let starts: Vec<usize> = roots.iter().map(|r| scan::rel_start(r)).collect();
    let files = out
        .files
        .into_iter()
        .map(|(root, h)| (Some(starts[root as usize]), h))
        .collect();
    let d = PyDict::new(py);
    d.set_item("files", self::results(py, files)?)?;
    d.set_item("errors", file_errors(out.errors))?;
    d.set_item("cancelled", out.cancelled)?;
    Ok(d)
}

fn cell(b: &Option<Vec<u8>>) -> Cell<'_> {
    b.as_deref().map_or(Cell::Null, Cell::Text)
}

/// Bytes of a Python string the way the file system (or `os.fsencode`) holds them.
fn fs_bytes(py: Python<'_>, s: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    match s.cast::<PyString>() {
        Ok(text) => match text.to_str() {
            Ok(t) => Ok(t.as_bytes().to_vec()),
            Err(_) => Ok(s.extract::<OsString>()?.into_vec()),
        },
        Err(_) => Ok(py
            .import("os")?
            .getattr("fsencode")?
            .call1((s,))?
            .extract::<Vec<u8>>()?),
    }
}

/// The row format of a table of results (`"table"`, `"json"` lines or `"csv"`).
fn row_format(format: &str) -> PyResult<Format> {
    Format::parse(format)
        .filter(|f| *f != Format::Paths)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "format must be 'json', 'csv' or 'table', not {format:?}"
            ))
        })
}

/// Write HashResult rows (digest, size, path, changed, error) to the descriptor `fd`, formatted
/// natively in batches: `"table"`, `"json"` (lines) or `"csv"`, as `pfp hash` prints them.
#[pyfunction]
#[pyo3(signature = (results, fd, format))]
fn write_hash_rows(
    py: Python<'_>,
    results: &Bound<'_, PyAny>,
    fd: i32,
    format: &str,
) -> PyResult<u64> {
    let mut w = RowWriter::new(
        output_file(fd)?,
        row_format(format)?,
        &["digest", "size", "path", "changed", "error"],
    );
    for item in results.try_iter()? {
        let item = item?;
        let r = item.cast::<HashResult>()?.borrow();
        let bytes = |o: &Option<Py<PyAny>>| -> PyResult<Option<Vec<u8>>> {
            o.as_ref().map(|v| fs_bytes(py, v.bind(py))).transpose()
        };
        let digest = bytes(&r.digest)?;
        let error = bytes(&r.error)?;
        let path = fs_bytes(py, r.fspath.bind(py))?;
        w.row(&[
            cell(&digest),
            Cell::Int(r.size as i64),
            Cell::Text(&path),
            Cell::Bool(r.changed),
            cell(&error),
        ]);
        if w.rows % 4096 == 0 {
            w.flush_rows().map_err(|e| write_error(&e))?;
        }
    }
    w.finish().map_err(|e| write_error(&e))?;
    Ok(w.rows)
}

/// Find duplicate files under `roots` (see `crate::dupes`). Returns a dict: the columns
/// `group`, `size`, `digest`, `path`, `hardlink_of` (lists), `reclaimable`, `errors`,
/// `links_skipped`. With `fd`, the rows are written there natively instead (`format`:
/// "table", "json" or "csv") and the columns are left out.
#[pyfunction]
#[pyo3(signature = (roots, options, algorithm, *, include_empty=false, partial_bytes=4096,
                    workers=None, progress=None, fd=None, format="table"))]
#[allow(clippy::too_many_arguments)]
fn find_duplicates<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
    options: Options,
    algorithm: &str,
    include_empty: bool,
    partial_bytes: u64,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
    fd: Option<i32>,
    format: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let algo = self::algorithm(algorithm)?;
    let mut opts = options.0;
    opts.threads = workers.or(opts.threads);
    let dup = crate::dupes::DupOptions {
        algorithm: algo,
        include_empty,
        partial_bytes,
    };
    let counters = Arc::new(Progress::new());
    let out = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(opts.threads, || {
            crate::dupes::find_duplicates(&roots, &opts, &dup, &counters)
        })
    })?;
    let out = out.map_err(|e| scan_error(py, e))?;
    let d = PyDict::new(py);
    d.set_item("reclaimable", out.reclaimable)?;
    d.set_item("links_skipped", out.links_skipped)?;
    d.set_item("rows", out.rows.len())?;
    d.set_item("groups", out.rows.last().map_or(0, |r| r.group + 1))?;
    d.set_item("errors", file_errors(out.errors))?;
    if let Some(fd) = fd {
        let mut w = RowWriter::new(
            output_file(fd)?,
            row_format(format)?,
            &["group", "size", "digest", "path", "hardlink_of"],
        );
        for r in &out.rows {
            w.row(&[
                Cell::Int(r.group as i64),
                Cell::Int(r.size as i64),
                r.digest
                    .as_deref()
                    .map_or(Cell::Null, |s| Cell::Text(s.as_bytes())),
                Cell::Text(r.path.as_os_str().as_bytes()),
                r.hardlink_of
                    .as_deref()
                    .map_or(Cell::Null, |p| Cell::Text(p.as_os_str().as_bytes())),
            ]);
        }
        w.finish().map_err(|e| write_error(&e))?;
        return Ok(d);
    }
    let n = out.rows.len();
    let mut group = Vec::with_capacity(n);
    let mut size = Vec::with_capacity(n);
    let mut digest = Vec::with_capacity(n);
    let mut path = Vec::with_capacity(n);
    let mut link = Vec::with_capacity(n);
    for r in out.rows {
        group.push(r.group);
        size.push(r.size);
        digest.push(r.digest);
        path.push(r.path.into_os_string());
        link.push(r.hardlink_of.map(|p| p.into_os_string()));
    }
    d.set_item("group", group)?;
    d.set_item("size", size)?;
    d.set_item("digest", digest)?;
    d.set_item("path", path)?;
    d.set_item("hardlink_of", link)?;
    Ok(d)
}
