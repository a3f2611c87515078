//! Bindings for `crate::scan`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyFileNotFoundError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::common::{
    file_errors, io_err, output_file, package_err, run_job, run_streaming, write_error,
};
use super::fileinfo::{FileInfo, Maker};
use crate::output::{Format, RowWriter, COLUMNS};
use crate::progress::Progress;
use crate::scan::{self, Entry, ScanError, ScanOptions, ScanOutput, Summary};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan_files, m)?)?;
    m.add_function(wrap_pyfunction!(scan_write, m)?)?;
    Ok(())
}

/// `ScanOptions` read from the Python `options.ScanOptions` dataclass (or any object with the
/// same attributes): the one way scan options cross into Rust.
pub struct Options(pub ScanOptions);

impl<'a, 'py> FromPyObject<'a, 'py> for Options {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let get = |name: &str| obj.getattr(name);
        let strings = |name: &str| -> PyResult<Vec<String>> {
            get(name)?
                .try_iter()?
                .map(|s| s?.extract::<String>())
                .collect()
        };
        Ok(Options(ScanOptions {
            include: strings("include")?,
            exclude: strings("exclude")?,
            extensions: strings("extensions")?,
            min_size: get("min_size")?.extract()?,
            max_size: get("max_size")?.extract()?,
            recursive: get("recursive")?.extract()?,
            max_depth: get("max_depth")?.extract()?,
            skip_hidden: get("skip_hidden")?.extract()?,
            follow_symlinks: get("follow_symlinks")?.extract()?,
            same_file_system: get("same_file_system")?.extract()?,
            modified_after_ns: secs_to_ns(get("modified_after")?.extract()?)?,
            modified_before_ns: secs_to_ns(get("modified_before")?.extract()?)?,
            include_special: get("include_special")?.extract()?,
            sort: get("sort")?.extract()?,
            with_metadata: get("with_metadata")?.extract()?,
            threads: get("threads")?.extract()?,
        }))
    }
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
    let mut dev = Vec::with_capacity(n);
    let mut ino = Vec::with_capacity(n);
    for e in files {
        path.push(e.path.as_os_str().as_bytes());
        rel.push(e.relative(roots).as_os_str().as_bytes());
        ext.push(e.extension().as_bytes());
        size.push(e.size as i64);
        mtime.push(e.mtime_ns);
        dev.push(e.dev);
        ino.push(e.ino);
    }
    let d = PyDict::new(py);
    d.set_item("n", n)?;
    d.set_item("path", path.into_py(py)?)?;
    d.set_item("relative_path", rel.into_py(py)?)?;
    d.set_item("extension", ext.into_py(py)?)?;
    d.set_item("size_bytes", PyBytes::new(py, as_bytes(&size)))?;
    d.set_item("mtime_ns", PyBytes::new(py, as_bytes(&mtime)))?;
    d.set_item("dev", PyBytes::new(py, as_bytes(&dev)))?;
    d.set_item("ino", PyBytes::new(py, as_bytes(&ino)))?;
    Ok(d)
}

/// Listing rows as plain lists: path, relative path, size, mtime_ns, dev, ino.
type Rows = (
    Vec<OsString>,
    Vec<OsString>,
    Vec<u64>,
    Vec<i64>,
    Vec<u64>,
    Vec<u64>,
);

fn rows(roots: &[PathBuf], files: Vec<Entry>) -> Rows {
    let n = files.len();
    let mut out: Rows = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in files {
        out.1.push(e.relative(roots).as_os_str().to_owned());
        out.2.push(e.size);
        out.3.push(e.mtime_ns);
        out.4.push(e.dev);
        out.5.push(e.ino);
        out.0.push(e.path.into_os_string());
    }
    out
}

/// Special files and errors as the Python layer takes them.
fn extras<'py>(
    py: Python<'py>,
    d: &Bound<'py, PyDict>,
    special: &[Entry],
    errors: Vec<crate::error::FileError>,
    summary: Summary,
) -> PyResult<()> {
    let special: Vec<(OsString, &'static str)> = special
        .iter()
        .map(|e| (e.path.as_os_str().to_owned(), e.kind.as_str()))
        .collect();
    d.set_item("special", special)?;
    d.set_item("errors", file_errors(errors))?;
    d.set_item("entries_seen", summary.entries_seen)?;
    d.set_item("cancelled", summary.cancelled)?;
    let _ = py;
    Ok(())
}

/// The objects of every directory, in order, with their number known up front (a list is made
/// at its final size).
struct Drain<I> {
    parts: I,
    left: usize,
}

impl<I: Iterator> Iterator for Drain<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let got = self.parts.next();
        if got.is_some() {
            self.left -= 1;
        }
        got
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Drain<I> {}

/// FileInfo objects, special files, errors and totals of a scan.
type Listed<'py> = (
    Bound<'py, PyList>,
    Vec<Entry>,
    Vec<crate::error::FileError>,
    Summary,
);

/// Scan and make FileInfo objects as the walk hands over each directory (the walk goes on in
/// native threads meanwhile; only the directories not converted yet are held natively), in
/// the order a sequential walk lists them (or by path with `sort`).
fn file_infos<'py>(
    py: Python<'py>,
    roots: &[PathBuf],
    opts: &ScanOptions,
    counters: &Arc<Progress>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Listed<'py>> {
    let starts: Vec<usize> = roots.iter().map(|r| scan::rel_start(r)).collect();
    let mut maker = Maker::new(py);
    let mut parts: Vec<(Vec<u32>, Vec<Bound<'py, FileInfo>>)> = Vec::new();
    let mut special = Vec::new();
    let mut errors = Vec::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let summary = run_streaming(
        py,
        counters,
        progress,
        threads * 16,
        |tx| {
            scan::scan_with(roots, opts, counters, &|b, _| {
                if tx.send(b).is_err() {
                    counters.cancel();
                }
            })
        },
        |_, b: scan::Batch| {
            let mut made = Vec::with_capacity(b.files.len());
            for e in &b.files {
                made.push(maker.make(e, starts[e.root as usize])?);
            }
            special.extend(b.special);
            errors.extend(b.errors);
            parts.push((b.order, made));
            Ok(())
        },
    )?
    .map_err(|e| scan_error(py, e))?;
    parts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // One list of exactly the right size, each directory's objects moved in (and its vector
    // freed) in turn.
    let total = parts.iter().map(|(_, v)| v.len()).sum();
    let all = PyList::new(
        py,
        Drain {
            parts: parts.into_iter().flat_map(|(_, v)| v),
            left: total,
        },
    )?;
    if opts.sort {
        special.sort_unstable_by(|a: &Entry, b: &Entry| a.path.cmp(&b.path));
        errors.sort_by(|a: &crate::error::FileError, b| a.path.cmp(&b.path));
    }
    Ok((all, special, errors, summary))
}

/// Scan `roots` with `options` (an `options.ScanOptions`). Returns a dict: `files` (a list of
/// FileInfo; column buffers with `output="columns"`; lists of path, relative path, size,
/// mtime_ns, dev, ino with `output="rows"`; their number with `output="count"`),
/// `special` ((path, kind) pairs), `errors` ((path, error_type, message) triples),
/// `entries_seen`, `cancelled`.
#[pyfunction]
#[pyo3(signature = (roots, options, *, progress = None, output = "objects"))]
fn scan_files<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
    options: Options,
    progress: Option<Bound<'py, PyAny>>,
    output: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = options.0;
    if !matches!(output, "objects" | "columns" | "rows" | "count") {
        return Err(PyValueError::new_err(format!(
            "output must be 'objects', 'columns', 'rows' or 'count', not {output:?}"
        )));
    }
    let counters = Arc::new(Progress::new());
    let d = PyDict::new(py);
    if output == "objects" {
        let (files, special, errors, summary) =
            file_infos(py, &roots, &opts, &counters, progress.as_ref())?;
        extras(py, &d, &special, errors, summary)?;
        d.set_item("files", files)?;
        return Ok(d);
    }
    let out: Result<ScanOutput, ScanError> = run_job(py, &counters, progress.as_ref(), || {
        scan::scan(&roots, &opts, &counters)
    })?;
    let out = out.map_err(|e| scan_error(py, e))?;
    let summary = Summary {
        entries_seen: out.entries_seen,
        cancelled: out.cancelled,
    };
    extras(py, &d, &out.special, out.errors, summary)?;
    match output {
        "columns" => d.set_item("files", columns(py, &roots, &out.files)?)?,
        "count" => d.set_item("files", out.files.len())?,
        _ => d.set_item("files", rows(&roots, out.files))?,
    }
    Ok(d)
}

/// Scan `roots` and write a row per file to the file descriptor `fd` from native buffers, as
/// they are found (`format`: "paths", "json", "csv" or "table"; the table is written at the
/// end). Returns a dict: `rows`, `special`, `errors`, `entries_seen`, `cancelled`. A write
/// error (a closed pipe, a full disk) stops the scan and is raised as OSError.
#[pyfunction]
#[pyo3(signature = (roots, options, fd, format, *, progress = None))]
fn scan_write<'py>(
    py: Python<'py>,
    roots: Vec<PathBuf>,
    options: Options,
    fd: i32,
    format: &str,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let opts = options.0;
    let fmt = Format::parse(format).ok_or_else(|| {
        PyValueError::new_err(format!(
            "format must be 'paths', 'json', 'csv' or 'table', not {format:?}"
        ))
    })?;
    let file = output_file(fd)?;
    let counters = Arc::new(Progress::new());
    let writer = Mutex::new(RowWriter::new(file, fmt, &COLUMNS));
    let failed: Mutex<Option<std::io::Error>> = Mutex::new(None);
    let kept = Mutex::new((Vec::new(), Vec::new()));
    let result = run_job(py, &counters, progress.as_ref(), || {
        let sink = |b: scan::Batch, _: Option<std::os::fd::BorrowedFd<'_>>| {
            {
                let mut k = kept.lock().unwrap_or_else(|e| e.into_inner());
                k.0.extend(b.special);
                k.1.extend(b.errors);
            }
            if b.files.is_empty() {
                return;
            }
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = w.write_entries(&b.files, &roots) {
                failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
                counters.cancel();
            }
        };
        let summary = scan::scan_with(&roots, &opts, &counters, &sink)?;
        let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.finish() {
            failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
        Ok::<Summary, ScanError>(summary)
    })?;
    let mut summary = result.map_err(|e| scan_error(py, e))?;
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(write_error(&e));
    }
    summary.cancelled = false;
    let (mut special, mut errors) = kept.into_inner().unwrap_or_else(|e| e.into_inner());
    if opts.sort {
        special.sort_unstable_by(|a: &Entry, b: &Entry| a.path.cmp(&b.path));
        errors.sort_by(|a: &crate::error::FileError, b| a.path.cmp(&b.path));
    }
    let d = PyDict::new(py);
    d.set_item(
        "rows",
        writer.into_inner().unwrap_or_else(|e| e.into_inner()).rows,
    )?;
    extras(py, &d, &special, errors, summary)?;
    Ok(d)
}
