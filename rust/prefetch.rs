//! Read-ahead: read many files' bytes in parallel, off the Python thread.
//!
//! The engine hands over the paths of the files its Python workers will need next; rayon reads
//! them while Python runs user code, so `FileInfo.read_bytes()` returns at once. Only regular
//! files are read (FIFOs and devices are opened non-blocking, seen for what they are, and left
//! alone), and a file larger than `max_file_bytes` is skipped, so memory stays bounded.

use std::ffi::{CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::error::FileError;
use crate::progress::Progress;

/// Why a file was not read ahead; the Python side then reads it itself (and sees the real error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    TooLarge(u64),
    NotRegular,
    Cancelled,
    Failed(FileError),
}

/// Bytes read ahead and not yet handed over: nothing more is read ahead while the budget is
/// spent, so memory stays bounded whatever the consumer does. One file larger than the whole
/// budget still goes through, alone.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    used: Mutex<u64>,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: Mutex::new(0),
        }
    }

    /// Take `n` bytes if they fit now (or nothing is held); never waits.
    pub fn acquire_now(&self, n: u64) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if *used > 0 && *used + n > self.limit {
            return false;
        }
        *used += n;
        true
    }

    /// Count `n` more bytes as held, whether they fit or not (bytes already read).
    pub fn take(&self, n: u64) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner()) += n;
    }

    pub fn release(&self, n: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        *used = used.saturating_sub(n);
    }

    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What `fstat` said of a file opened for reading ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub size: u64,
    pub mtime_ns: i64,
    pub dev: u64,
    pub ino: u64,
}

/// Read `name` in the open directory `dir` (no path resolution from the root), if it is a
/// regular file of at most `max_file_bytes`: open, fstat, read its size, close. A file that
/// reports size 0 (some pseudo-files) is read to its end. The `fstat` is returned too (when
/// the file could be opened), so a walk that reads ahead need not stat the file itself.
pub fn read_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    max_file_bytes: u64,
) -> (Option<FileMeta>, Result<Vec<u8>, Skipped>) {
    use std::os::unix::fs::MetadataExt;
    let fail = |e: io::Error| Skipped::Failed(FileError::from_io(path, &e));
    let Ok(c) = CString::new(name.as_bytes()) else {
        return (None, Err(Skipped::NotRegular));
    };
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated and `dir` is an open directory descriptor.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
    if fd < 0 {
        return (None, Err(fail(io::Error::last_os_error())));
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return (None, Err(fail(e))),
    };
    let info = FileMeta {
        size: meta.len(),
        mtime_ns: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    if !meta.is_file() {
        return (Some(info), Err(Skipped::NotRegular));
    }
    (
        Some(info),
        read_open(&file, info.size, max_file_bytes, &fail),
    )
}

fn read_open(
    file: &File,
    size: u64,
    max_file_bytes: u64,
    fail: &dyn Fn(io::Error) -> Skipped,
) -> Result<Vec<u8>, Skipped> {
    if size > max_file_bytes {
        return Err(Skipped::TooLarge(size));
    }
    if size == 0 {
        let mut buf = Vec::new();
        file.take(max_file_bytes + 1)
            .read_to_end(&mut buf)
            .map_err(fail)?;
        if buf.len() as u64 > max_file_bytes {
            return Err(Skipped::TooLarge(buf.len() as u64));
        }
        return Ok(buf);
    }
    // Read no further than the size fstat gave: one read for a small file, not a second to
    // see the end (as `open().read()` would after the same fstat).
    let mut buf = vec![0u8; size as usize];
    let mut filled = 0;
    let mut f = file;
    while filled < buf.len() {
        match f.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Read one file whole, if it is a regular file of at most `max_file_bytes`.
pub fn read_one(path: &Path, max_file_bytes: u64) -> Result<Vec<u8>, Skipped> {
    let fail = |e: io::Error| Skipped::Failed(FileError::from_io(path, &e));
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(Skipped::NotRegular);
    }
    read_open(&file, meta.len(), max_file_bytes, &fail)
}

/// Read every path (in input order), at most `max_file_bytes` each, on the current rayon pool.
pub fn read_files(
    paths: &[PathBuf],
    max_file_bytes: u64,
    progress: &Progress,
) -> Vec<Result<Vec<u8>, Skipped>> {
    progress.add_total(paths.len() as u64, 0);
    paths
        .par_iter()
        .map(|p| {
            if progress.is_cancelled() {
                return Err(Skipped::Cancelled);
            }
            let out = read_one(p, max_file_bytes);
            progress.add_items(1);
            if let Ok(b) = &out {
                progress.add_bytes(b.len() as u64);
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn reads_in_order_and_skips_what_it_must() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        std::fs::write(&a, b"alpha").unwrap();
        std::fs::write(&b, vec![7u8; 100]).unwrap();
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let missing = t.path().join("missing");
        let paths = vec![a, b, fifo, missing, t.path().to_path_buf()];
        let p = Progress::new();
        let out = read_files(&paths, 50, &p);
        assert_eq!(out[0].as_deref().unwrap(), b"alpha");
        assert_eq!(out[1], Err(Skipped::TooLarge(100)));
        assert_eq!(
            out[2],
            Err(Skipped::NotRegular),
            "a FIFO is never read (and never blocks)"
        );
        assert!(matches!(&out[3], Err(Skipped::Failed(e)) if e.error_type == "FileNotFoundError"));
        assert_eq!(out[4], Err(Skipped::NotRegular));
        assert_eq!(p.snapshot().items_done, 5);
        assert_eq!(p.snapshot().bytes_done, 5);
    }

    #[test]
    fn budget_lets_one_big_item_through_and_counts_what_is_held() {
        let b = Budget::new(100);
        assert!(b.acquire_now(150), "alone, a big item goes through");
        assert!(!b.acquire_now(10), "nothing more fits while it is held");
        b.release(150);
        assert!(b.acquire_now(60) && b.acquire_now(40) && !b.acquire_now(1));
        b.take(5);
        assert_eq!(b.in_use(), 105);
    }

    #[test]
    fn reads_relative_to_an_open_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a"), b"alpha").unwrap();
        std::fs::write(t.path().join("empty"), b"").unwrap();
        std::fs::write(t.path().join("big"), vec![1u8; 100]).unwrap();
        let dir = File::open(t.path()).unwrap();
        let d = dir.as_fd();
        let read = |n: &str| read_at(d, OsStr::new(n), &t.path().join(n), 50).1;
        assert_eq!(read("a").unwrap(), b"alpha");
        assert_eq!(read("empty").unwrap(), b"");
        assert_eq!(read("big"), Err(Skipped::TooLarge(100)));
        assert!(
            matches!(read("gone"), Err(Skipped::Failed(e)) if e.error_type == "FileNotFoundError")
        );
        std::fs::create_dir(t.path().join("sub")).unwrap();
        assert_eq!(read("sub"), Err(Skipped::NotRegular));
        let (meta, _) = read_at(d, OsStr::new("big"), &t.path().join("big"), 50);
        assert_eq!(
            meta.unwrap().size,
            100,
            "the fstat comes back even when not read"
        );
    }

    #[test]
    fn cancelled_reads_nothing() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let p = Progress::new();
        p.cancel();
        assert_eq!(read_files(&[a], 10, &p), vec![Err(Skipped::Cancelled)]);
    }
}
