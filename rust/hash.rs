//! Parallel file hashing.
//!
//! Files are hashed in parallel on rayon, each worker reusing one read buffer; a tree is hashed
//! as the walk finds its files, each opened relative to its open directory. Small files are
//! read with one `read()`; files of 4 MiB and more are hashed through a memory map (no copy),
//! guarded so that a file truncated meanwhile gives an error instead of SIGBUS (see
//! `mapped`). A large file hashed with BLAKE3 uses its multi-threaded hasher, so a single huge
//! file also uses every core.
//!
//! Every file is `fstat`ed before and after reading; a different size, mtime or ctime, or a
//! short read, means the file changed while it was read: an error for that file, never a
//! digest of bytes it never held at one moment. Only regular files are opened for reading
//! (opening is non-blocking, so a FIFO is seen for what it is and left alone).

use std::ffi::{CString, OsStr};
use std::fmt::Write as _;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha1::Digest as _;

use crate::error::FileError;
use crate::progress::Progress;
use crate::scan::{self, Batch, ScanError, ScanOptions};
use std::sync::Mutex;

/// Digest algorithms, with the names users pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Blake3,
    Sha256,
    Sha1,
    Md5,
    Xxh3_64,
    Xxh3_128,
    Crc32c,
}

impl Algorithm {
    pub const ALL: [Algorithm; 7] = [
        Algorithm::Blake3,
        Algorithm::Sha256,
        Algorithm::Sha1,
        Algorithm::Md5,
        Algorithm::Xxh3_64,
        Algorithm::Xxh3_128,
        Algorithm::Crc32c,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Blake3 => "blake3",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
            Algorithm::Xxh3_64 => "xxh3_64",
            Algorithm::Xxh3_128 => "xxh3_128",
            Algorithm::Crc32c => "crc32c",
        }
    }

    pub fn parse(name: &str) -> Option<Algorithm> {
        let n = name.trim().to_ascii_lowercase().replace('-', "_");
        Some(match n.as_str() {
            "blake3" | "b3" => Algorithm::Blake3,
            "sha256" | "sha_256" => Algorithm::Sha256,
            "sha1" | "sha_1" => Algorithm::Sha1,
            "md5" => Algorithm::Md5,
            "xxh3" | "xxh3_64" | "xxh64" => Algorithm::Xxh3_64,
            "xxh3_128" | "xxh128" => Algorithm::Xxh3_128,
            "crc32c" => Algorithm::Crc32c,
            _ => return None,
        })
    }

    /// Digest length in hex characters.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Blake3 | Algorithm::Sha256 => 64,
            Algorithm::Sha1 => 40,
            Algorithm::Md5 | Algorithm::Xxh3_128 => 32,
            Algorithm::Xxh3_64 => 16,
            Algorithm::Crc32c => 8,
        }
    }
}

/// A running digest of any algorithm.
pub enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>, bool),
    Crc32c(u32),
}

/// Above this many bytes per read, BLAKE3 hashes the chunk on all rayon threads.
const RAYON_CHUNK: usize = 1 << 20;

impl Hasher {
    pub fn new(algo: Algorithm) -> Self {
        match algo {
            Algorithm::Blake3 => Hasher::Blake3(Box::new(blake3::Hasher::new())),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Xxh3_64 => Hasher::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new()), false),
            Algorithm::Xxh3_128 => Hasher::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new()), true),
            Algorithm::Crc32c => Hasher::Crc32c(0),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Blake3(h) => {
                if data.len() >= RAYON_CHUNK {
                    h.update_rayon(data);
                } else {
                    h.update(data);
                }
            }
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
            Hasher::Xxh3(h, _) => h.update(data),
            Hasher::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
        }
    }

    /// Lowercase hex, as the reference tools print it.
    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Blake3(h) => h.finalize().to_hex().to_string(),
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Xxh3(h, false) => format!("{:016x}", h.digest()),
            Hasher::Xxh3(h, true) => format!("{:032x}", h.digest128()),
            Hasher::Crc32c(c) => format!("{c:08x}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The digest of a byte string (for tests and small inputs).
pub fn hash_bytes(algo: Algorithm, data: &[u8]) -> String {
    let mut h = Hasher::new(algo);
    h.update(data);
    h.finish_hex()
}

/// What hashing one file produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub path: PathBuf,
    pub size: u64,
    pub digest: Option<String>,
    pub error: Option<FileError>,
    /// Size, mtime or ctime differed between the `fstat` before and after reading.
    pub changed: bool,
    pub dev: u64,
    pub ino: u64,
    pub mtime_ns: i64,
}

/// How much of each file to hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Whole,
    /// The first and last `n` bytes (and the size): the cheap pre-filter for duplicates.
    HeadTail(u64),
}

#[derive(Clone, Copy)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl From<&Metadata> for Stamp {
    fn from(m: &Metadata) -> Self {
        Stamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

const BUF_SIZE: usize = 1 << 20;

/// Where a file to hash is: a path, or a name in an open directory (no path resolution).
#[derive(Clone, Copy)]
pub enum Place<'a> {
    Path(&'a Path),
    At(BorrowedFd<'a>, &'a OsStr),
}

fn open_regular(place: Place<'_>, path: &Path) -> Result<(File, Metadata), FileError> {
    let file = match place {
        Place::Path(p) => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(p)
            .map_err(|e| FileError::from_io(path, &e))?,
        Place::At(dir, name) => {
            let c = CString::new(name.as_bytes())
                .map_err(|_| FileError::new(path, "ValueError", "name contains a NUL byte"))?;
            let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
            // SAFETY: `c` is NUL-terminated and `dir` an open directory descriptor.
            let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags) };
            if fd < 0 {
                return Err(FileError::from_io(path, &io::Error::last_os_error()));
            }
            // SAFETY: `fd` was just opened and is owned by nobody else.
            unsafe { File::from_raw_fd(fd) }
        }
    };
    let meta = file.metadata().map_err(|e| FileError::from_io(path, &e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            return Err(FileError::new(path, "IsADirectoryError", "is a directory"));
        } else {
            "not a regular file (FIFO, socket or device): not read"
        };
        return Err(FileError::new(path, "ValueError", what));
    }
    Ok((file, meta))
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// In a tree, files at least this large are hashed beside each other after their folder's
/// small files (one at a time per folder otherwise).
const LARGE: u64 = 1 << 20;

/// Files at least this large are hashed through a memory map (no copy; see `mapped`).
const MAP_MIN: u64 = 4 << 20;
/// A mapped file is fed to the hasher in pieces this large (progress and Ctrl-C between).
const MAP_PIECE: usize = 64 << 20;

/// Hash one file with a caller-provided buffer (reused across files by a worker).
pub fn hash_file(
    path: &Path,
    algo: Algorithm,
    span: Span,
    buf: &mut Vec<u8>,
    progress: &Progress,
) -> Hashed {
    hash_place(Place::Path(path), path, algo, span, buf, progress)
}

/// Hash one file, found at `place` (its path is `path`, for results and errors).
///
/// A file that changed while it was read (its size, mtime or ctime differ between the `fstat`
/// before and after, or it came up short) gets an error, not a digest: the bytes hashed were
/// not the file's contents at any one moment.
pub fn hash_place(
    place: Place<'_>,
    path: &Path,
    algo: Algorithm,
    span: Span,
    buf: &mut Vec<u8>,
    progress: &Progress,
) -> Hashed {
    hash_unless_large(place, path, algo, span, buf, progress, u64::MAX)
        .expect("no size is above u64::MAX")
}

/// [`hash_place`], except that a file of `large` bytes or more is left alone (None): the
/// caller hashes it where it can run beside others.
fn hash_unless_large(
    place: Place<'_>,
    path: &Path,
    algo: Algorithm,
    span: Span,
    buf: &mut Vec<u8>,
    progress: &Progress,
    large: u64,
) -> Option<Hashed> {
    let mut out = Hashed {
        path: path.to_path_buf(),
        size: 0,
        digest: None,
        error: None,
        changed: false,
        dev: 0,
        ino: 0,
        mtime_ns: 0,
    };
    let (mut file, meta) = match open_regular(place, path) {
        Ok(x) => x,
        Err(e) => {
            out.error = Some(e);
            return Some(out);
        }
    };
    if meta.len() >= large {
        return None;
    }
    let before = Stamp::from(&meta);
    out.size = before.size;
    out.dev = meta.dev();
    out.ino = meta.ino();
    out.mtime_ns = before
        .mtime
        .0
        .saturating_mul(1_000_000_000)
        .saturating_add(before.mtime.1);
    let mut hasher = Hasher::new(algo);
    let mut read_total = 0u64;
    let mut shrank = false;
    let mapped = if span == Span::Whole && before.size >= MAP_MIN {
        crate::mapped::Mapped::new(&file, before.size)
    } else {
        None
    };
    let result: io::Result<()> = if let Some(map) = &mapped {
        (|| {
            for piece in map.bytes().chunks(MAP_PIECE) {
                if progress.is_cancelled() {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
                }
                hasher.update(piece);
                read_total += piece.len() as u64;
                progress.add_bytes(piece.len() as u64);
            }
            shrank = map.faulted();
            Ok(())
        })()
    } else {
        if buf.len() < BUF_SIZE {
            buf.resize(BUF_SIZE, 0);
        }
        (|| {
            match span {
                Span::Whole => loop {
                    if progress.is_cancelled() {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
                    }
                    // Read no further than the size `fstat` gave: a small file then costs one
                    // read, not a second one to see EOF. Growth is caught by the `fstat`
                    // after reading. Files that report size 0 (some pseudo-files) are read
                    // to EOF.
                    let remaining = before.size.saturating_sub(read_total);
                    let want = match remaining {
                        0 if before.size > 0 => break,
                        0 => buf.len(),
                        r => r.min(buf.len() as u64) as usize,
                    };
                    let n = read_full(&mut file, &mut buf[..want])?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    read_total += n as u64;
                    progress.add_bytes(n as u64);
                    if n < want {
                        break;
                    }
                },
                Span::HeadTail(n) => {
                    let n = n as usize;
                    let head = read_full(&mut file, &mut buf[..n.min(BUF_SIZE)])?;
                    hasher.update(&buf[..head]);
                    read_total += head as u64;
                    if before.size > (2 * n) as u64 {
                        file.seek(SeekFrom::Start(before.size - n as u64))?;
                        let tail = read_full(&mut file, &mut buf[..n.min(BUF_SIZE)])?;
                        hasher.update(&buf[..tail]);
                        read_total += tail as u64;
                    } else if before.size > n as u64 {
                        let tail = read_full(&mut file, buf)?;
                        hasher.update(&buf[..tail]);
                        read_total += tail as u64;
                    }
                    hasher.update(&before.size.to_le_bytes());
                    progress.add_bytes(read_total);
                }
            }
            Ok(())
        })()
    };
    drop(mapped);
    if let Err(e) = result {
        out.error = Some(FileError::from_io(path, &e));
        return Some(out);
    }
    let after = file.metadata().map(|m| Stamp::from(&m));
    out.changed = shrank
        || match after {
            Ok(a) => {
                a.size != before.size
                    || a.mtime != before.mtime
                    || a.ctime != before.ctime
                    || (span == Span::Whole && read_total != before.size)
            }
            Err(_) => true,
        };
    if out.changed {
        let now = after.map(|a| a.size).unwrap_or(0);
        let what =
            if shrank || now < before.size || (span == Span::Whole && read_total < before.size) {
                format!(
                    "file shrank while it was read ({} -> {} bytes)",
                    before.size, now
                )
            } else if now > before.size {
                format!(
                    "file grew while it was read ({} -> {} bytes)",
                    before.size, now
                )
            } else {
                "file was modified while it was read".to_owned()
            };
        out.error = Some(FileError::new(path, "FileChangedError", what));
        return Some(out);
    }
    out.digest = Some(hasher.finish_hex());
    Some(out)
}

thread_local! {
    /// Each worker's read buffer, reused for every file it hashes.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Hash many files in parallel (largest first), results in input order. `sizes` (if known
/// from a scan) decide the order; unknown sizes count as 0.
pub fn hash_files(
    paths: &[PathBuf],
    sizes: Option<&[u64]>,
    algo: Algorithm,
    span: Span,
    progress: &Progress,
) -> Vec<Hashed> {
    let sizes_known = sizes.is_some();
    let mut order: Vec<usize> = (0..paths.len()).collect();
    if let Some(sizes) = sizes {
        order.sort_unstable_by(|&a, &b| sizes[b].cmp(&sizes[a]));
        if span == Span::Whole {
            progress.add_total(paths.len() as u64, sizes.iter().sum());
        } else {
            progress.add_total(paths.len() as u64, 0);
        }
    } else {
        progress.add_total(paths.len() as u64, 0);
    }
    let mut done: Vec<(usize, Hashed)> = order
        .par_iter()
        .map(|&i| {
            let h = if progress.is_cancelled() {
                Hashed {
                    path: paths[i].clone(),
                    size: 0,
                    digest: None,
                    error: Some(FileError::new(&paths[i], "Cancelled", "cancelled")),
                    changed: false,
                    dev: 0,
                    ino: 0,
                    mtime_ns: 0,
                }
            } else {
                BUFFER.with(|b| hash_file(&paths[i], algo, span, &mut b.borrow_mut(), progress))
            };
            if !sizes_known && span == Span::Whole {
                progress.add_total(0, h.size);
            }
            progress.add_items(1);
            if h.error.is_some() {
                progress.add_error();
            }
            (i, h)
        })
        .collect();
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, h)| h).collect()
}

/// What hashing a tree produced: every file found (in the scan's order, or by path with
/// `sort`), with the root it was found under, and what could not be listed.
#[derive(Debug, Default)]
pub struct TreeHashed {
    pub files: Vec<(u32, Hashed)>,
    pub errors: Vec<FileError>,
    pub cancelled: bool,
}

/// Scan `roots` and hash every matching file as the walk finds it: each directory's files
/// are hashed on the walker threads right after the directory is read, opened relative to it.
/// Nothing waits for the walk to end, and no path is resolved from the root twice.
pub fn hash_tree(
    roots: &[PathBuf],
    opts: &ScanOptions,
    algo: Algorithm,
    span: Span,
    progress: &Progress,
) -> Result<TreeHashed, ScanError> {
    let mut opts = opts.clone();
    // hashing fstat()s every file anyway: the walk stats only what its filters need
    opts.with_metadata = false;
    opts.include_special = false;
    let walk_progress = Progress::new();
    // (the directory's place in the walk, its files hashed with their roots)
    type Done = Vec<(Vec<u32>, Vec<(u32, Hashed)>)>;
    let done: Mutex<Done> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<FileError>> = Mutex::new(Vec::new());
    let sink = |batch: Batch, dir: Option<BorrowedFd<'_>>| {
        if progress.is_cancelled() {
            walk_progress.cancel();
        }
        if !batch.errors.is_empty() {
            for _ in &batch.errors {
                progress.add_error();
            }
            errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(batch.errors);
        }
        if batch.files.is_empty() {
            return;
        }
        progress.add_total(batch.files.len() as u64, 0);
        let hash_one = |e: &scan::Entry, large: u64| {
            let place = match (dir, e.path.file_name()) {
                (Some(d), Some(name)) => Place::At(d, name),
                _ => Place::Path(&e.path),
            };
            let h = BUFFER.with(|b| {
                hash_unless_large(
                    place,
                    &e.path,
                    algo,
                    span,
                    &mut b.borrow_mut(),
                    progress,
                    large,
                )
            })?;
            if span == Span::Whole {
                progress.add_total(0, h.size);
            }
            progress.add_items(1);
            if h.error.is_some() {
                progress.add_error();
            }
            Some((e.root, h))
        };
        // The walk is parallel across directories already: a directory's small files are
        // hashed right here, one after another (small parallel loops cost more in wake-ups
        // than they gain); its large files afterwards, beside each other on the pool.
        let mut hashed: Vec<Option<(u32, Hashed)>> = if batch.files.len() > 64 {
            batch
                .files
                .par_iter()
                .map(|e| hash_one(e, u64::MAX))
                .collect()
        } else {
            batch.files.iter().map(|e| hash_one(e, LARGE)).collect()
        };
        let deferred: Vec<usize> = (0..hashed.len()).filter(|&i| hashed[i].is_none()).collect();
        if !deferred.is_empty() {
            let more: Vec<(usize, Option<(u32, Hashed)>)> = deferred
                .par_iter()
                .map(|&i| (i, hash_one(&batch.files[i], u64::MAX)))
                .collect();
            for (i, h) in more {
                hashed[i] = h;
            }
        }
        let hashed: Vec<(u32, Hashed)> = hashed.into_iter().flatten().collect();
        done.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((batch.order, hashed));
    };
    let summary = scan::scan_with(roots, &opts, &walk_progress, &sink)?;
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    // The order a sequential walk lists them in, whatever thread hashed what first.
    done.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut files: Vec<(u32, Hashed)> = done.into_iter().flat_map(|(_, h)| h).collect();
    let mut errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    if opts.sort {
        files.sort_unstable_by(|a, b| a.1.path.cmp(&b.1.path));
        errors.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(TreeHashed {
        files,
        errors,
        cancelled: summary.cancelled || progress.is_cancelled(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    #[test]
    fn known_vectors() {
        let d = b"hello world";
        assert_eq!(
            hash_bytes(Algorithm::Sha256, d),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            hash_bytes(Algorithm::Md5, d),
            "5eb63bbbe01eeed093cb22bb8f5acdc3"
        );
        assert_eq!(
            hash_bytes(Algorithm::Sha1, d),
            "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"
        );
        assert_eq!(
            hash_bytes(Algorithm::Blake3, d),
            "d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24"
        );
        assert_eq!(hash_bytes(Algorithm::Xxh3_64, d), "d447b1ea40e6988b");
        assert_eq!(
            hash_bytes(Algorithm::Xxh3_128, d),
            "df8d09e93f874900a99b8775cc15b6c7"
        );
        assert_eq!(hash_bytes(Algorithm::Crc32c, d), "c99465aa");
        for a in Algorithm::ALL {
            assert_eq!(hash_bytes(a, d).len(), a.hex_len());
            assert_eq!(Algorithm::parse(a.name()), Some(a));
        }
        assert_eq!(Algorithm::parse("SHA-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("rot13"), None);
    }

    #[test]
    fn files_match_in_memory_digests_across_buffer_boundaries() {
        let t = tempfile::tempdir().unwrap();
        let p = Progress::new();
        let mut buf = Vec::new();
        for size in [0, 1, BUF_SIZE - 1, BUF_SIZE, BUF_SIZE + 1, 3 * BUF_SIZE + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let f = tmp_file(t.path(), &format!("f{size}"), &data);
            for a in Algorithm::ALL {
                let h = hash_file(&f, a, Span::Whole, &mut buf, &p);
                assert_eq!(
                    h.digest.as_deref(),
                    Some(hash_bytes(a, &data).as_str()),
                    "{a:?} {size}"
                );
                assert_eq!(h.size, size as u64);
                assert!(!h.changed);
            }
        }
    }

    #[test]
    fn errors_are_per_file_and_order_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let a = tmp_file(t.path(), "a", b"aaa");
        let big = tmp_file(t.path(), "big", &vec![1u8; 100_000]);
        let missing = t.path().join("missing");
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let paths = vec![
            a.clone(),
            missing.clone(),
            fifo.clone(),
            big.clone(),
            t.path().to_path_buf(),
        ];
        let out = hash_files(
            &paths,
            Some(&[3, 0, 0, 100_000, 0]),
            Algorithm::Sha256,
            Span::Whole,
            &Progress::new(),
        );
        assert_eq!(
            out.iter().map(|h| h.path.clone()).collect::<Vec<_>>(),
            paths
        );
        assert_eq!(
            out[0].digest.as_deref(),
            Some(hash_bytes(Algorithm::Sha256, b"aaa").as_str())
        );
        assert_eq!(
            out[1].error.as_ref().unwrap().error_type,
            "FileNotFoundError"
        );
        assert!(out[2]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("not a regular file"));
        assert!(out[3].digest.is_some());
        assert_eq!(
            out[4].error.as_ref().unwrap().error_type,
            "IsADirectoryError"
        );
    }

    #[test]
    fn head_tail_differs_from_whole_but_is_stable() {
        let t = tempfile::tempdir().unwrap();
        let data = vec![9u8; 50_000];
        let f1 = tmp_file(t.path(), "x", &data);
        let f2 = tmp_file(t.path(), "y", &data);
        let mut buf = Vec::new();
        let p = Progress::new();
        let a = hash_file(&f1, Algorithm::Blake3, Span::HeadTail(4096), &mut buf, &p);
        let b = hash_file(&f2, Algorithm::Blake3, Span::HeadTail(4096), &mut buf, &p);
        assert_eq!(a.digest, b.digest);
        let mut other = data.clone();
        other[49_999] = 1;
        let f3 = tmp_file(t.path(), "z", &other);
        let c = hash_file(&f3, Algorithm::Blake3, Span::HeadTail(4096), &mut buf, &p);
        assert_ne!(a.digest, c.digest, "the tail is part of the partial hash");
    }

    #[test]
    fn a_file_growing_while_hashed_is_flagged() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("growing");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![0u8; 8 * BUF_SIZE]).unwrap();
        f.sync_all().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        let changed = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = f.write_all(b"more");
                }
            });
            let mut buf = Vec::new();
            let mut seen = false;
            for _ in 0..50 {
                let h = hash_file(
                    &path,
                    Algorithm::Sha256,
                    Span::Whole,
                    &mut buf,
                    &Progress::new(),
                );
                if h.changed {
                    let e = h.error.expect("a changed file is an error");
                    assert_eq!(e.error_type, "FileChangedError");
                    assert!(h.digest.is_none());
                    seen = true;
                    break;
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            seen
        });
        assert!(changed);
    }

    #[test]
    fn a_large_file_truncated_while_hashed_is_an_error_not_a_crash() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("shrinking");
        let mut errors = 0;
        for round in 0..6 {
            std::fs::write(&path, vec![round as u8; 64 << 20]).unwrap();
            let h = std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                    f.set_len(1 << 20).unwrap();
                });
                hash_file(
                    &path,
                    Algorithm::Blake3,
                    Span::Whole,
                    &mut Vec::new(),
                    &Progress::new(),
                )
            });
            match (&h.digest, &h.error) {
                (None, Some(e)) => {
                    assert_eq!(e.error_type, "FileChangedError", "{e:?}");
                    errors += 1;
                }
                (Some(_), None) => {} // hashed before the truncation
                other => panic!("{other:?}"),
            }
        }
        assert!(errors > 0, "a truncation during the read was never seen");
    }

    #[test]
    fn large_files_hash_the_same_mapped_as_read() {
        let t = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(9u32 << 20))
            .map(|i| i.wrapping_mul(2654435761) as u8)
            .collect();
        let path = tmp_file(t.path(), "big", &data);
        for algo in Algorithm::ALL {
            let h = hash_file(&path, algo, Span::Whole, &mut Vec::new(), &Progress::new());
            assert_eq!(h.digest.unwrap(), hash_bytes(algo, &data), "{algo:?}");
        }
    }

    #[test]
    fn a_tree_hashes_like_its_files_and_reports_what_it_cannot_list() {
        let t = tempfile::tempdir().unwrap();
        let mut expected = std::collections::BTreeMap::new();
        for i in 0..300u32 {
            let p = t.path().join(format!("d{}/e{}/f{i}.bin", i % 7, i % 3));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let data = vec![i as u8; (i as usize * 37) % 5000];
            std::fs::write(&p, &data).unwrap();
            expected.insert(p, hash_bytes(Algorithm::Sha256, &data));
        }
        let roots = vec![t.path().to_path_buf()];
        let opts = ScanOptions {
            sort: true,
            ..Default::default()
        };
        let out = hash_tree(
            &roots,
            &opts,
            Algorithm::Sha256,
            Span::Whole,
            &Progress::new(),
        )
        .unwrap();
        let got: std::collections::BTreeMap<_, _> = out
            .files
            .iter()
            .map(|(_, h)| (h.path.clone(), h.digest.clone().unwrap()))
            .collect();
        assert_eq!(got, expected);
        let paths: Vec<_> = out.files.iter().map(|(_, h)| h.path.clone()).collect();
        assert!(paths.windows(2).all(|w| w[0] < w[1]), "sorted");
        // unsorted: the same files, the same order every run
        let opts = ScanOptions::default();
        let a = hash_tree(
            &roots,
            &opts,
            Algorithm::Sha256,
            Span::Whole,
            &Progress::new(),
        )
        .unwrap();
        let b = hash_tree(
            &roots,
            &opts,
            Algorithm::Sha256,
            Span::Whole,
            &Progress::new(),
        )
        .unwrap();
        assert_eq!(a.files, b.files);
        assert_eq!(a.files.len(), 300);
        let missing = vec![t.path().join("nope")];
        assert!(matches!(
            hash_tree(
                &missing,
                &opts,
                Algorithm::Sha256,
                Span::Whole,
                &Progress::new()
            ),
            Err(ScanError::RootNotFound(_))
        ));
    }

    #[test]
    fn cancelled_runs_mark_files() {
        let t = tempfile::tempdir().unwrap();
        let a = tmp_file(t.path(), "a", b"x");
        let p = Progress::new();
        p.cancel();
        let out = hash_files(&[a], None, Algorithm::Md5, Span::Whole, &p);
        assert_eq!(out[0].error.as_ref().unwrap().error_type, "Cancelled");
    }
}
