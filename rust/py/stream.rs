//! `ScanStream`: files as the walk finds them, for consumers that start before it ends.
//!
//! The walk runs on its own thread pool (its threads block when the consumer is behind, and
//! the consumer may need the default pool itself); what each directory held crosses a bounded
//! channel. With read-ahead, the walker threads also read each file's bytes right after
//! listing it, within a byte budget that FileInfo objects give back when their bytes are
//! handed over (or dropped), so `read_bytes()` in the user's function returns at once.

use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::common::{file_errors, POLL_INTERVAL};
use super::fileinfo::{attach, Maker};
use super::scan::{scan_error, Options};
use crate::error::FileError;
use crate::prefetch::{read_at, read_one, Budget};
use crate::progress::Progress;
use crate::scan::{self, Batch, Entry, ScanError, Summary};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ScanStream>()?;
    Ok(())
}

/// What crosses the channel: a directory's findings, with the bytes read ahead (one per file,
/// in order, when reading ahead).
struct Found {
    batch: Batch,
    data: Vec<Option<Vec<u8>>>,
}

/// Read-ahead settings: files up to `max_file` bytes, at most `budget` bytes held at once;
/// `fill_meta`: the walk does not stat files, the read-ahead's `fstat` gives their metadata.
struct ReadAhead {
    max_file: u64,
    budget: Arc<Budget>,
    fill_meta: bool,
}

/// Send a directory's findings, reading its files first when reading ahead. A file whose
/// bytes do not fit in the budget is sent without them (its consumer reads it when asked):
/// the walk never waits for bytes to be handed over, so a consumer that keeps files unread
/// (`list(stream)`) cannot stall it, and memory stays bounded either way.
fn deliver(
    tx: &SyncSender<Found>,
    mut batch: Batch,
    dir: Option<BorrowedFd<'_>>,
    ahead: Option<&ReadAhead>,
) -> bool {
    let Some(ra) = ahead else {
        return tx
            .send(Found {
                batch,
                data: Vec::new(),
            })
            .is_ok();
    };
    let mut data = Vec::with_capacity(batch.files.len());
    for entry in &mut batch.files {
        data.push(read_ahead(entry, dir, ra));
    }
    tx.send(Found { batch, data }).is_ok()
}

/// One file's bytes, if they fit in the budget (None: the consumer reads it when asked).
/// When the walk left the stat to us (`fill_meta`), the entry gets its size and times from the
/// `fstat` of the open file, or from a stat of its own when the file is not read.
fn read_ahead(entry: &mut Entry, dir: Option<BorrowedFd<'_>>, ra: &ReadAhead) -> Option<Vec<u8>> {
    let name = entry.path.file_name().unwrap_or_default().to_owned();
    let known = !ra.fill_meta || entry.link;
    if entry.kind != scan::Kind::File || (known && entry.size > ra.max_file) {
        if !known {
            fill(entry, dir, &name);
        }
        return None;
    }
    // Files of unknown size take the whole per-file allowance until read.
    let want = if known {
        entry.size
    } else {
        ra.max_file.min(1 << 20)
    };
    if !ra.budget.acquire_now(want) {
        if !known {
            fill(entry, dir, &name);
        }
        return None;
    }
    let (meta, got) = match dir {
        Some(d) => read_at(d, &name, &entry.path, ra.max_file),
        None => (None, read_one(&entry.path, ra.max_file)),
    };
    ra.budget.release(want);
    if !known {
        match meta {
            Some(m) => {
                entry.size = m.size;
                entry.mtime_ns = m.mtime_ns;
                entry.dev = m.dev;
                entry.ino = m.ino;
            }
            None => fill(entry, dir, &name),
        }
    }
    let bytes = got.ok()?;
    // Count what was read, not what the scan saw; it may exceed the budget by this one file.
    ra.budget.take(bytes.len() as u64);
    Some(bytes)
}

/// Stat a file the walk did not stat (reading ahead does it otherwise).
fn fill(entry: &mut Entry, dir: Option<BorrowedFd<'_>>, name: &std::ffi::OsStr) {
    let got = match dir {
        Some(d) => scan::stat_at(d, name),
        None => std::fs::metadata(&entry.path).map(|m| {
            use std::os::unix::fs::MetadataExt;
            (
                m.len(),
                m.mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(m.mtime_nsec()),
                m.dev(),
                m.ino(),
            )
        }),
    };
    if let Ok((size, mtime_ns, dev, ino)) = got {
        entry.size = size;
        entry.mtime_ns = mtime_ns;
        entry.dev = dev;
        entry.ino = ino;
    }
}

/// Files as the walk finds them: each `next()` gives a list of FileInfo (as soon as any are
/// found, up to `batch_size`), while the walk goes on in native threads with the GIL released.
/// Memory stays bounded: the walk waits when the consumer is behind. After the last batch,
/// `errors`, `special` and `entries_seen` hold the rest of what the scan found.
///
/// `read_ahead=N` also reads every regular file of at most N bytes as it is found, holding at
/// most `read_budget` bytes not yet handed over.
#[pyclass(module = "parallel_file_processor._core")]
pub struct ScanStream {
    rx: Mutex<Option<Receiver<Found>>>,
    handle: Mutex<Option<JoinHandle<Result<Summary, ScanError>>>>,
    progress: Arc<Progress>,
    starts: Vec<usize>,
    batch_size: usize,
    budget: Option<Arc<Budget>>,
    errors: Vec<FileError>,
    special: Vec<Entry>,
    summary: Summary,
}

enum Got {
    Files(Vec<(Entry, Option<Vec<u8>>)>),
    Nothing,
    End,
}

#[pymethods]
impl ScanStream {
    #[new]
    #[pyo3(signature = (roots, options, *, batch_size = 1024, read_ahead = None,
                        read_budget = 256 << 20))]
    fn new(
        py: Python<'_>,
        roots: Vec<PathBuf>,
        options: Options,
        batch_size: usize,
        read_ahead: Option<u64>,
        read_budget: u64,
    ) -> PyResult<Self> {
        let mut opts = options.0;
        // Fail now, in the caller, on a missing root or a bad pattern.
        scan::check(&roots, &opts).map_err(|e| scan_error(py, e))?;
        let progress = Arc::new(Progress::new());
        let threads = opts.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        opts.threads = Some(threads);
        // Reading a file fstat()s it anyway: the walk need not stat it first, unless a size or
        // time filter decides on it.
        let fill_meta = read_ahead.is_some() && opts.with_metadata && !opts.filters_need_stat();
        if fill_meta {
            opts.with_metadata = false;
        }
        let ahead = read_ahead.map(|max_file| ReadAhead {
            max_file,
            budget: Arc::new(Budget::new(read_budget.max(1))),
            fill_meta,
        });
        let budget = ahead.as_ref().map(|a| a.budget.clone());
        let (tx, rx) = sync_channel::<Found>(threads * 16);
        let walk_roots = roots.clone();
        let walk_progress = progress.clone();
        let handle = std::thread::Builder::new()
            .name("pfp-scan".into())
            .spawn(move || {
                let p = walk_progress.clone();
                scan::scan_with(&walk_roots, &opts, &walk_progress, &|b, dir| {
                    if !deliver(&tx, b, dir, ahead.as_ref()) {
                        p.cancel(); // nobody is reading any more
                    }
                })
            })
            .map_err(|e| PyOSError::new_err(format!("cannot start the scan: {e}")))?;
        let starts = roots.iter().map(|r| scan::rel_start(r)).collect();
        Ok(Self {
            rx: Mutex::new(Some(rx)),
            handle: Mutex::new(Some(handle)),
            progress,
            starts,
            batch_size: batch_size.max(1),
            budget,
            errors: Vec::new(),
            special: Vec::new(),
            summary: Summary::default(),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        loop {
            match self.receive(py, POLL_INTERVAL)? {
                Got::Files(files) => return self.objects(py, files).map(Some),
                Got::Nothing => continue,
                Got::End => return Ok(None),
            }
        }
    }

    /// What the walk found within ``timeout`` seconds (None: wait for something), as a list
    /// of FileInfo (empty when nothing came in time); None once the walk is over and
    /// everything was handed out. Lets a consumer keep working while the walk is slower.
    #[pyo3(signature = (timeout = None))]
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(timeout) = timeout else {
            return self.__next__(py);
        };
        let wait = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        match self.receive(py, wait)? {
            Got::Files(files) => self.objects(py, files).map(Some),
            Got::Nothing => Ok(Some(PyList::empty(py))),
            Got::End => Ok(None),
        }
    }

    /// Stop the walk (also done when the stream is dropped).
    fn close(&mut self, py: Python<'_>) {
        self.stop(py);
    }

    /// ``(path, error_type, message)`` of what could not be read, so far.
    #[getter]
    fn errors(&self) -> Vec<(OsString, String, String)> {
        file_errors(self.errors.clone())
    }

    /// ``(path, kind)`` of FIFOs, sockets and devices left out, so far.
    #[getter]
    fn special(&self) -> Vec<(OsString, &'static str)> {
        self.special
            .iter()
            .map(|e| (e.path.as_os_str().to_owned(), e.kind.as_str()))
            .collect()
    }

    #[getter]
    fn entries_seen(&self) -> u64 {
        self.summary
            .entries_seen
            .max(self.progress.snapshot().items_done)
    }

    /// Whether the walk has finished (every batch handed out).
    #[getter]
    fn done(&self) -> bool {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    /// Bytes read ahead and not handed over yet (0 without read-ahead).
    #[getter]
    fn read_ahead_bytes(&self) -> u64 {
        self.budget.as_ref().map_or(0, |b| b.in_use())
    }
}

impl ScanStream {
    /// Wait up to `wait` (GIL released, Ctrl-C noticed) for findings, then take whatever else
    /// is already there, up to `batch_size` files.
    fn receive(&mut self, py: Python<'_>, wait: Duration) -> PyResult<Got> {
        let taken = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(rx) = taken else {
            return Ok(Got::End);
        };
        // The receiver moves into the waiting closure and back (it is not Sync).
        let (rx, got) = py.detach(move || {
            let got = if wait.is_zero() {
                rx.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                rx.recv_timeout(wait)
            };
            (rx, got)
        });
        match got {
            Ok(found) => {
                let mut files = Vec::new();
                self.absorb(found, &mut files);
                while files.len() < self.batch_size {
                    match rx.try_recv() {
                        Ok(found) => self.absorb(found, &mut files),
                        Err(_) => break,
                    }
                }
                *self.rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
                Ok(if files.is_empty() {
                    Got::Nothing
                } else {
                    Got::Files(files)
                })
            }
            Err(RecvTimeoutError::Timeout) => {
                *self.rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(rx);
                if let Err(e) = py.check_signals() {
                    self.stop(py);
                    return Err(e);
                }
                Ok(Got::Nothing)
            }
            Err(RecvTimeoutError::Disconnected) => {
                drop(rx);
                let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(h) = handle {
                    match py.detach(|| h.join()) {
                        Ok(Ok(summary)) => self.summary = summary,
                        Ok(Err(e)) => return Err(scan_error(py, e)),
                        Err(_) => return Err(PyRuntimeError::new_err("the scan panicked")),
                    }
                }
                Ok(Got::End)
            }
        }
    }

    fn absorb(&mut self, found: Found, files: &mut Vec<(Entry, Option<Vec<u8>>)>) {
        let Found { batch, data } = found;
        self.special.extend(batch.special);
        self.errors.extend(batch.errors);
        if data.is_empty() {
            files.extend(batch.files.into_iter().map(|e| (e, None)));
        } else {
            files.extend(batch.files.into_iter().zip(data));
        }
    }

    fn objects<'py>(
        &self,
        py: Python<'py>,
        files: Vec<(Entry, Option<Vec<u8>>)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut maker = Maker::new(py);
        let list = PyList::empty(py);
        for (e, data) in files {
            let info = maker.make(&e, self.starts[e.root as usize])?;
            if let (Some(bytes), Some(budget)) = (data, &self.budget) {
                attach(&info, &bytes, budget);
            }
            list.append(info)?;
        }
        Ok(list)
    }

    fn stop(&mut self, py: Python<'_>) {
        self.progress.cancel();
        // Dropping the receiver unblocks a walker waiting to send; then it sees the cancel.
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = py.detach(|| h.join());
        }
    }
}

impl Drop for ScanStream {
    fn drop(&mut self) {
        self.progress.cancel();
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.join();
        }
    }
}
