//! Bindings for `crate::extract`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::common::{io_err, package_err, run_job};
use crate::extract::{self, ExtractError, ExtractOptions, IfExists, Job, Limits, MemberFilter};
use crate::progress::Progress;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(extract_archives, m)?)?;
    m.add_function(wrap_pyfunction!(list_zip, m)?)?;
    m.add("DEFAULT_MAX_TOTAL_SIZE", Limits::default().max_total_bytes)?;
    m.add("DEFAULT_MAX_RATIO", Limits::default().max_ratio)?;
    m.add("DEFAULT_MAX_ENTRIES", Limits::default().max_entries)?;
    Ok(())
}

type ReportRow = (
    OsString,
    OsString,
    u64,
    u64,
    &'static str,
    Option<String>,
    Option<String>,
);

/// Extract `(archive, target)` pairs in parallel (GIL released). One row per job, in order:
/// (archive, target, entries, bytes, status, error_type, message).
#[pyfunction]
#[pyo3(signature = (
    jobs, *, merge=false, if_exists="error", keep_partial=false, members=vec![],
    exclude_members=vec![], max_total_size=None, max_ratio=None, max_entries=None,
    workers=None, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn extract_archives<'py>(
    py: Python<'py>,
    jobs: Vec<(PathBuf, PathBuf)>,
    merge: bool,
    if_exists: &str,
    keep_partial: bool,
    members: Vec<String>,
    exclude_members: Vec<String>,
    max_total_size: Option<u64>,
    max_ratio: Option<f64>,
    max_entries: Option<u64>,
    workers: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Vec<ReportRow>> {
    let if_exists = match if_exists {
        "error" => IfExists::Error,
        "skip" => IfExists::Skip,
        "overwrite" => IfExists::Overwrite,
        other => {
            return Err(PyValueError::new_err(format!(
                "if_exists must be 'error', 'skip' or 'overwrite', not {other:?}"
            )))
        }
    };
    let defaults = Limits::default();
    let limits = Limits {
        max_total_bytes: max_total_size.unwrap_or(defaults.max_total_bytes),
        max_ratio: max_ratio.unwrap_or(defaults.max_ratio),
        max_entries: max_entries.unwrap_or(defaults.max_entries),
    };
    if limits.max_ratio.is_nan() || limits.max_ratio <= 0.0 {
        return Err(PyValueError::new_err("max_ratio must be positive"));
    }
    let members = MemberFilter::new(&members, &exclude_members)
        .map_err(|e| package_err(py, "PatternError", format!("bad member pattern: {e}")))?;
    let opts = ExtractOptions {
        limits,
        if_exists,
        keep_partial,
        merge,
        members,
    };
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|(archive, target)| Job { archive, target })
        .collect();
    let counters = Arc::new(Progress::new());
    let (reports, cleaned) = run_job(py, &counters, progress.as_ref(), || {
        crate::pool::with_workers(workers, || {
            extract::extract_all_cleaning(&jobs, &opts, &counters)
        })
    })?;
    report_leftovers(py, &cleaned)?;
    Ok(reports
        .into_iter()
        .map(|r| {
            let (etype, msg) = match r.error {
                Some(e) => (Some(e.error_type), Some(e.message)),
                None => (None, None),
            };
            (
                r.archive.into_os_string(),
                r.target.into_os_string(),
                r.entries,
                r.bytes,
                r.status.name(),
                etype,
                msg,
            )
        })
        .collect())
}

/// Say on the package's logger (a warning: shown on stderr when logging is not set up) what was
/// cleaned up after killed runs.
fn report_leftovers(py: Python<'_>, cleaned: &[extract::Leftover]) -> PyResult<()> {
    if cleaned.is_empty() {
        return Ok(());
    }
    let log = py
        .import("logging")?
        .call_method1("getLogger", ("parallel_file_processor.extract",))?;
    for l in cleaned {
        let msg = match &l.restored_to {
            Some(to) => format!(
                "put back {}, which an overwrite killed midway (process {}) had set aside as {}",
                to.display(),
                l.pid,
                l.path.display()
            ),
            None => format!(
                "removed {}, left by an extraction that was killed (process {})",
                l.path.display(),
                l.pid
            ),
        };
        log.call_method1("warning", (msg,))?;
    }
    Ok(())
}

type EntryRow = (
    String,
    Option<String>,
    bool,
    bool,
    u64,
    u64,
    String,
    u32,
    Option<i64>,
    Option<u32>,
    bool,
);

/// The entries of one archive from its central directory: (name, name_error, is_dir,
/// is_symlink, size, compressed_size, method, crc32, mtime, mode, encrypted).
#[pyfunction]
fn list_zip(py: Python<'_>, path: PathBuf) -> PyResult<Vec<EntryRow>> {
    let listed = py.detach(|| extract::list_entries(&path));
    match listed {
        Ok(entries) => Ok(entries
            .into_iter()
            .map(|e| {
                (
                    e.name,
                    e.name_error,
                    e.is_dir,
                    e.is_symlink,
                    e.size,
                    e.compressed_size,
                    e.method,
                    e.crc32,
                    e.mtime,
                    e.mode,
                    e.encrypted,
                )
            })
            .collect()),
        Err(ExtractError::Io { path, err }) => Err(io_err(&path, &err)),
        Err(e) => Err(package_err(
            py,
            e.error_type(),
            format!("{}: {e}", path.display()),
        )),
    }
}
