//! Read-ahead: read many files' bytes in parallel, off the Python thread.
//!
//! The engine hands over the paths of the files its Python workers will need next; rayon reads
//! them while Python runs user code, so `FileInfo.read_bytes()` returns at once. Only regular
//! files are read (FIFOs and devices are opened non-blocking, seen for what they are, and left
//! alone), and a file larger than `max_file_bytes` is skipped, so memory stays bounded.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

fn read_one(path: &Path, max_file_bytes: u64) -> Result<Vec<u8>, Skipped> {
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
    if meta.len() > max_file_bytes {
        return Err(Skipped::TooLarge(meta.len()));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    // `take` keeps a file that grows while being read within the limit.
    file.take(max_file_bytes + 1)
        .read_to_end(&mut buf)
        .map_err(fail)?;
    if buf.len() as u64 > max_file_bytes {
        return Err(Skipped::TooLarge(buf.len() as u64));
    }
    Ok(buf)
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
    use std::os::unix::ffi::OsStrExt;

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
    fn cancelled_reads_nothing() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        let p = Progress::new();
        p.cancel();
        assert_eq!(read_files(&[a], 10, &p), vec![Err(Skipped::Cancelled)]);
    }
}
