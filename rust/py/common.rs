//! What every binding shares: running a core job off the GIL while the calling thread polls
//! progress and Ctrl-C, and turning Rust errors into specific Python exceptions.

use std::io;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyNotADirectoryError, PyOSError, PyPermissionError,
    PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::error::FileError;
use crate::progress::{Progress, Snapshot};

/// How often the calling thread wakes to report progress and check for Ctrl-C.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Run `job` on a scoped thread with the GIL released, and from the calling thread, every
/// `POLL_INTERVAL`: call `callback(items_done, items_total, bytes_done, bytes_total)` when the
/// counters moved, and run `check_signals` so Ctrl-C raises `KeyboardInterrupt`.
///
/// On Ctrl-C or a callback error the cancel flag is set, the job is awaited (workers stop at their
/// next check, well under the 200 ms budget) and the Python error is returned. The callback is
/// only ever called on this thread, never from a worker.
pub fn run_job<T, F>(
    py: Python<'_>,
    progress: &Arc<Progress>,
    callback: Option<&Bound<'_, PyAny>>,
    job: F,
) -> PyResult<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let mut last: Option<Snapshot> = None;
    let report = |py: Python<'_>, last: &mut Option<Snapshot>| -> PyResult<()> {
        if let Some(cb) = callback {
            let snap = progress.snapshot();
            if *last != Some(snap) {
                *last = Some(snap);
                let args = PyTuple::new(
                    py,
                    [
                        snap.items_done,
                        snap.items_total,
                        snap.bytes_done,
                        snap.bytes_total,
                    ],
                )?;
                cb.call1(args)?;
            }
        }
        Ok(())
    };

    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<()>(1);
        let handle = scope.spawn(move || {
            let out = job();
            let _ = tx.send(());
            out
        });
        let mut pending: Option<PyErr> = None;
        let mut rx = Some(rx);
        loop {
            // The receiver is moved into the detached closure and back: it is Send, not Sync.
            let (back, waited) = py.detach(move || {
                let rx = rx.take().expect("receiver present");
                let waited = rx.recv_timeout(POLL_INTERVAL);
                (rx, waited)
            });
            rx = Some(back);
            match waited {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if pending.is_some() {
                continue;
            }
            let polled = py.check_signals().and_then(|()| report(py, &mut last));
            if let Err(err) = polled {
                progress.cancel();
                pending = Some(err);
            }
        }
        let joined = py.detach(|| handle.join());
        if let Some(err) = pending {
            return Err(err);
        }
        let value = joined.map_err(|_| PyRuntimeError::new_err("native worker panicked"))?;
        report(py, &mut last)?;
        Ok(value)
    })
}

/// Like [`run_job`], for a job that hands results over while it runs: the job gets a bounded
/// sender, and every message it sends is passed to `on_message` on the calling thread, with
/// the GIL, as soon as it arrives (while the job goes on without it). The job waits when the
/// calling thread is behind. Ctrl-C, a callback error or an `on_message` error cancel it.
pub fn run_streaming<T, M, F, H>(
    py: Python<'_>,
    progress: &Arc<Progress>,
    callback: Option<&Bound<'_, PyAny>>,
    capacity: usize,
    job: F,
    mut on_message: H,
) -> PyResult<T>
where
    F: FnOnce(&std::sync::mpsc::SyncSender<M>) -> T + Send,
    T: Send,
    M: Send,
    H: FnMut(Python<'_>, M) -> PyResult<()>,
{
    let mut last: Option<Snapshot> = None;
    let report = |last: &mut Option<Snapshot>| -> PyResult<()> {
        if let Some(cb) = callback {
            let snap = progress.snapshot();
            if *last != Some(snap) {
                *last = Some(snap);
                cb.call1((
                    snap.items_done,
                    snap.items_total,
                    snap.bytes_done,
                    snap.bytes_total,
                ))?;
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<M>(capacity.max(1));
        let handle = scope.spawn(move || job(&tx));
        let mut pending: Option<PyErr> = None;
        let mut rx = Some(rx);
        let mut reported = std::time::Instant::now();
        loop {
            let (back, got) = py.detach(move || {
                let rx = rx.take().expect("receiver present");
                let got = rx.recv_timeout(POLL_INTERVAL);
                (rx, got)
            });
            match got {
                Ok(message) => {
                    if pending.is_none() {
                        let mut handled = on_message(py, message);
                        // Take what else is there, a bounded number, then look at Ctrl-C.
                        for _ in 0..64 {
                            if handled.is_err() {
                                break;
                            }
                            match back.try_recv() {
                                Ok(m) => handled = on_message(py, m),
                                Err(_) => break,
                            }
                        }
                        if let Err(err) = handled {
                            progress.cancel();
                            pending = Some(err);
                        }
                    }
                    rx = Some(back);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    rx = Some(back);
                    break;
                }
                Err(RecvTimeoutError::Timeout) => rx = Some(back),
            }
            if pending.is_some() {
                continue;
            }
            let mut polled = py.check_signals();
            if polled.is_ok() && reported.elapsed() >= POLL_INTERVAL {
                reported = std::time::Instant::now();
                polled = report(&mut last);
            }
            if let Err(err) = polled {
                progress.cancel();
                pending = Some(err);
            }
        }
        drop(rx);
        let joined = py.detach(|| handle.join());
        if let Some(err) = pending {
            return Err(err);
        }
        let value = joined.map_err(|_| PyRuntimeError::new_err("native worker panicked"))?;
        report(&mut last)?;
        Ok(value)
    })
}

/// A Python exception for an I/O error, chosen by its kind, naming the path.
pub fn io_err(path: &std::path::Path, err: &io::Error) -> PyErr {
    let msg = format!("{}: {}", path.display(), err);
    match err.kind() {
        io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => PyValueError::new_err(msg),
        _ => match err.raw_os_error() {
            Some(libc::EISDIR) => PyIsADirectoryError::new_err(msg),
            Some(libc::ENOTDIR) => PyNotADirectoryError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
    }
}

/// An instance of one of the package's own exception classes (`parallel_file_processor.errors`).
pub fn package_err(py: Python<'_>, class: &str, msg: String) -> PyErr {
    let made = py
        .import("parallel_file_processor.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call1((msg.clone(),)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => PyRuntimeError::new_err(msg),
    }
}

/// Per-file failures as `(path, error_type, message)` tuples; the Python layer wraps them.
pub fn file_errors(errors: Vec<FileError>) -> Vec<(std::ffi::OsString, String, String)> {
    errors
        .into_iter()
        .map(|e| (e.path.into_os_string(), e.error_type, e.message))
        .collect()
}

/// A `File` writing to the caller's descriptor `fd` (a duplicate: closing it never closes the
/// caller's stdout).
pub fn output_file(fd: i32) -> PyResult<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup of a descriptor the caller owns; the result is ours.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(pyo3::exceptions::PyOSError::new_err(format!(
            "cannot write to descriptor {fd}: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: `dup` is a fresh descriptor owned by this File.
    Ok(unsafe { std::fs::File::from_raw_fd(dup) })
}

/// The error of a failed write to the caller's descriptor, as Python raises it
/// (BrokenPipeError for a closed pipe, OSError with ENOSPC for a full disk). It names no
/// file: the caller knows what the descriptor is (the CLI names standard output).
pub fn write_error(e: &std::io::Error) -> PyErr {
    let code = e.raw_os_error().unwrap_or(0);
    let msg = std::io::Error::from_raw_os_error(code).to_string();
    let msg = msg.split(" (os error").next().unwrap_or(&msg).to_owned();
    pyo3::exceptions::PyOSError::new_err((code, msg))
}
