//! Filtered directory scanning: a parallel walker over `openat`/`readdir`/`fstatat`.
//!
//! Speed comes from deciding as much as possible from the directory entry alone: the name is
//! matched against one compiled `GlobSet`, the extension against a small set, and the type comes
//! from `d_type`; `stat` runs only for entries that passed those tests and only when a size or
//! time filter or the caller needs it, relative to the open directory. Every directory is a
//! task on a work-stealing rayon pool, so lopsided trees keep every thread busy, and what each
//! directory held can be handed to a consumer at once ([`scan_with`]) instead of after the walk.
//!
//! Errors on single entries (permission denied, vanished, broken links, loops) never abort a
//! scan: they are collected in [`ScanOutput::errors`]. Only a missing or non-directory root and
//! a bad glob are fatal.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::FileError;
use crate::progress::Progress;

/// What to scan for. `Default` is: recursive, everything, metadata on, unsorted.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Globs a file must match (any of them). Empty means every file. A pattern without `/`
    /// (and without `**`) matches the file name; otherwise the path relative to the root.
    pub include: Vec<String>,
    /// Globs that drop a file, or a whole directory (not descended into), same rules as above.
    pub exclude: Vec<String>,
    /// Extensions to keep (`".csv"` or `"csv"`), compared case-insensitively. Empty: all.
    pub extensions: Vec<String>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    /// Only descend below the root when true.
    pub recursive: bool,
    /// Deepest level listed: 1 is the root's own entries (fd's `--max-depth`).
    pub max_depth: Option<usize>,
    /// Drop names starting with `.` (and do not descend into such directories).
    pub skip_hidden: bool,
    /// Follow symbolic links to directories. Loops are reported, never followed twice.
    pub follow_symlinks: bool,
    /// Do not cross into other file systems (mount points).
    pub same_file_system: bool,
    /// Keep files modified at or after this time (nanoseconds since the epoch).
    pub modified_after_ns: Option<i64>,
    /// Keep files modified strictly before this time (nanoseconds since the epoch).
    pub modified_before_ns: Option<i64>,
    /// List FIFOs, sockets and devices as files too (they are never opened either way).
    pub include_special: bool,
    /// Sort the output by path (deterministic; off by default for speed).
    pub sort: bool,
    /// Fill size, mtime, device and inode of each file (one `stat` per matching file).
    pub with_metadata: bool,
    /// Walk subtrees on this many threads (None: rayon's pool; Some(1): one thread).
    pub threads: Option<usize>,
}

impl ScanOptions {
    /// Whether a size or time filter decides on files (they must be stat'ed while walking).
    pub fn filters_need_stat(&self) -> bool {
        self.min_size.is_some()
            || self.max_size.is_some()
            || self.modified_after_ns.is_some()
            || self.modified_before_ns.is_some()
    }
}

/// `(size, mtime_ns, dev, ino)` of `name` in the open directory `dir`, following a final link
/// (a listed link stands for its target).
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<(u64, i64, u64, u64)> {
    let st = Stat::at(dir.as_raw_fd(), name, true)?;
    Ok((st.size, st.mtime_ns, st.dev, st.ino))
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: Vec::new(),
            extensions: Vec::new(),
            min_size: None,
            max_size: None,
            recursive: true,
            max_depth: None,
            skip_hidden: false,
            follow_symlinks: false,
            same_file_system: false,
            modified_after_ns: None,
            modified_before_ns: None,
            include_special: false,
            sort: false,
            with_metadata: true,
            threads: None,
        }
    }
}

/// The type of a listed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Fifo,
    Socket,
    BlockDevice,
    CharDevice,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Fifo => "fifo",
            Kind::Socket => "socket",
            Kind::BlockDevice => "block_device",
            Kind::CharDevice => "char_device",
        }
    }

    fn of_dtype(d_type: u8) -> Option<Kind> {
        match d_type {
            libc::DT_REG => Some(Kind::File),
            libc::DT_FIFO => Some(Kind::Fifo),
            libc::DT_SOCK => Some(Kind::Socket),
            libc::DT_BLK => Some(Kind::BlockDevice),
            libc::DT_CHR => Some(Kind::CharDevice),
            _ => None,
        }
    }
}

/// One listed file. `size`, `mtime_ns`, `dev`, `ino` are 0 unless metadata was requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    /// Index of the root (in the `roots` given to [`scan`]) this entry was found under.
    pub root: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub kind: Kind,
    /// Listed through a symbolic link (size, times and inode are its target's).
    pub link: bool,
}

impl Entry {
    /// The path relative to its root.
    pub fn relative<'a>(&'a self, roots: &[PathBuf]) -> &'a Path {
        let root = &roots[self.root as usize];
        let bytes = self.path.as_os_str().as_bytes();
        if bytes.starts_with(root.as_os_str().as_bytes()) {
            let start = rel_start(root).min(bytes.len());
            return Path::new(OsStr::from_bytes(&bytes[start..]));
        }
        &self.path
    }

    /// The suffix as the file system holds it (`.GZ`), from the last dot (Python's rule).
    pub fn suffix(&self) -> Option<&[u8]> {
        suffix(self.path.file_name().unwrap_or_default())
    }

    /// The extension the way Python's `PurePath.suffix.lower()` gives it (`".gz"`, or `""`).
    pub fn extension(&self) -> String {
        suffix(self.path.file_name().unwrap_or_default())
            .map(|s| String::from_utf8_lossy(s).to_lowercase())
            .unwrap_or_default()
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanOutput {
    pub files: Vec<Entry>,
    /// FIFOs, sockets and devices that matched the name filters but were not listed.
    pub special: Vec<Entry>,
    pub errors: Vec<FileError>,
    /// Directory entries looked at, matched or not.
    pub entries_seen: u64,
    pub cancelled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("directory not found: {}", .0.display())]
    RootNotFound(PathBuf),
    #[error("not a directory: {}", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot read {}: {}", .0.display(), .1)]
    Root(PathBuf, io::Error),
    #[error("invalid glob pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

/// `name`'s suffix as Python's `PurePath.suffix` defines it: from the last dot, unless the dot
/// starts the name or ends it.
fn suffix(name: &OsStr) -> Option<&[u8]> {
    let b = name.as_bytes();
    let i = b.iter().rposition(|&c| c == b'.')?;
    if i == 0 || i + 1 == b.len() {
        return None;
    }
    Some(&b[i..])
}

/// Glob matching split by what a pattern looks at: names, or paths relative to the root.
#[derive(Debug, Default)]
struct Patterns {
    names: Option<GlobSet>,
    paths: Option<GlobSet>,
}

impl Patterns {
    fn new(patterns: &[String]) -> Result<Self, ScanError> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let (mut n_names, mut n_paths) = (0, 0);
        for p in patterns {
            let is_path = p.contains('/') || p.contains("**");
            let pat = p.strip_prefix("./").unwrap_or(p);
            let glob = GlobBuilder::new(pat)
                .literal_separator(is_path)
                .backslash_escape(true)
                .empty_alternates(true)
                .build()
                .map_err(|e| ScanError::Pattern {
                    pattern: p.clone(),
                    message: e.kind().to_string(),
                })?;
            if is_path {
                paths.add(glob);
                n_paths += 1;
            } else {
                names.add(glob);
                n_names += 1;
            }
        }
        let build = |b: GlobSetBuilder, n: usize| -> Result<Option<GlobSet>, ScanError> {
            if n == 0 {
                return Ok(None);
            }
            b.build().map(Some).map_err(|e| ScanError::Pattern {
                pattern: patterns.join(", "),
                message: e.to_string(),
            })
        };
        Ok(Self {
            names: build(names, n_names)?,
            paths: build(paths, n_paths)?,
        })
    }

    fn is_empty(&self) -> bool {
        self.names.is_none() && self.paths.is_none()
    }

    fn matches(&self, name: &OsStr, rel: impl FnOnce() -> PathBuf) -> bool {
        if let Some(n) = &self.names {
            if n.is_match(name) {
                return true;
            }
        }
        if let Some(p) = &self.paths {
            return p.is_match(rel());
        }
        false
    }
}

/// The compiled filters, shared read-only by every walker.
struct Filter<'a> {
    opts: &'a ScanOptions,
    include: Patterns,
    exclude: Patterns,
    /// Lowercased extensions with their dot.
    extensions: Vec<Vec<u8>>,
    needs_stat: bool,
}

impl<'a> Filter<'a> {
    fn new(opts: &'a ScanOptions) -> Result<Self, ScanError> {
        // "*" alone keeps everything: skip the glob test entirely.
        let include: Vec<String> = if opts.include.iter().any(|p| p == "*" || p == "**") {
            Vec::new()
        } else {
            opts.include.clone()
        };
        let extensions = opts
            .extensions
            .iter()
            .map(|e| {
                let e = e.to_lowercase();
                let e = if e.starts_with('.') {
                    e
                } else {
                    format!(".{e}")
                };
                e.into_bytes()
            })
            .collect();
        let needs_stat = opts.with_metadata
            || opts.min_size.is_some()
            || opts.max_size.is_some()
            || opts.modified_after_ns.is_some()
            || opts.modified_before_ns.is_some();
        Ok(Self {
            opts,
            include: Patterns::new(&include)?,
            exclude: Patterns::new(&opts.exclude)?,
            extensions,
            needs_stat,
        })
    }

    fn hidden(&self, name: &OsStr) -> bool {
        self.opts.skip_hidden && name.as_bytes().first() == Some(&b'.')
    }

    /// Whether a directory below the root is walked into.
    fn descend(&self, name: &OsStr, rel: &Path) -> bool {
        !self.hidden(name)
            && (self.exclude.is_empty() || !self.exclude.matches(name, || rel.to_path_buf()))
    }

    /// Name-only tests for a file: hidden, include, exclude, extension. No system call.
    fn name_passes(&self, name: &OsStr, rel: &dyn Fn() -> PathBuf) -> bool {
        if self.hidden(name) {
            return false;
        }
        if !self.extensions.is_empty() {
            let Some(sfx) = suffix(name) else {
                return false;
            };
            if !self.extensions.iter().any(|e| e.eq_ignore_ascii_case(sfx)) {
                return false;
            }
        }
        if !self.include.is_empty() && !self.include.matches(name, rel) {
            return false;
        }
        if !self.exclude.is_empty() && self.exclude.matches(name, rel) {
            return false;
        }
        true
    }

    fn meta_passes(&self, size: u64, mtime_ns: i64) -> bool {
        let o = self.opts;
        o.min_size.is_none_or(|m| size >= m)
            && o.max_size.is_none_or(|m| size <= m)
            && o.modified_after_ns.is_none_or(|t| mtime_ns >= t)
            && o.modified_before_ns.is_none_or(|t| mtime_ns < t)
    }
}

/// Where a [`Batch`] goes: called from the walker threads with the batch and, while it is still
/// open, the directory its files are in (to open them relative to it, without resolving their
/// paths again). It may block: that is the backpressure.
pub type Sink<'a> = dyn Fn(Batch, Option<BorrowedFd<'_>>) + Sync + 'a;

/// What one directory contributed: handed to the sink as soon as the directory is read.
#[derive(Debug, Default)]
pub struct Batch {
    pub files: Vec<Entry>,
    /// FIFOs, sockets and devices that matched the name filters but were not listed.
    pub special: Vec<Entry>,
    pub errors: Vec<FileError>,
    /// Directory entries looked at, matched or not.
    pub seen: u64,
    /// Where the directory comes in a sequential walk (root, then the position of each
    /// directory among its parent's entries): sorting batches by it gives a repeatable order.
    pub order: Vec<u32>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.special.is_empty() && self.errors.is_empty()
    }

    fn append(&mut self, other: Batch) {
        self.files.extend(other.files);
        self.special.extend(other.special);
        self.errors.extend(other.errors);
        self.seen += other.seen;
    }
}

/// Totals of a streamed scan (the files themselves went to the sink).
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub entries_seen: u64,
    pub cancelled: bool,
}

/// Scan `roots` for files matching `opts`. Counts entries seen in `progress.items_done` and
/// stops early (with `cancelled` set) once `progress` is cancelled.
pub fn scan(
    roots: &[PathBuf],
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanOutput, ScanError> {
    let batches = Mutex::new(Vec::new());
    let summary = scan_with(
        roots,
        opts,
        progress,
        &|b: Batch, _: Option<BorrowedFd<'_>>| {
            batches.lock().unwrap_or_else(|e| e.into_inner()).push(b)
        },
    )?;
    let mut batches = batches.into_inner().unwrap_or_else(|e| e.into_inner());
    // Unsorted output still comes in the same order every run: the order a sequential walk
    // would list it in (directories in the order their parents list them).
    batches.sort_unstable_by(|a, b| a.order.cmp(&b.order));
    let mut all = Batch::default();
    for b in batches {
        all.append(b);
    }
    if opts.sort {
        sort_batch(&mut all);
    }
    Ok(ScanOutput {
        files: all.files,
        special: all.special,
        errors: all.errors,
        entries_seen: summary.entries_seen,
        cancelled: summary.cancelled,
    })
}

fn sort_batch(b: &mut Batch) {
    b.files.sort_unstable_by(|x, y| x.path.cmp(&y.path));
    b.special.sort_unstable_by(|x, y| x.path.cmp(&y.path));
    b.errors.sort_by(|x, y| x.path.cmp(&y.path));
}

/// Check the roots and the patterns without walking (a streaming caller reports these at once).
pub fn check(roots: &[PathBuf], opts: &ScanOptions) -> Result<(), ScanError> {
    Filter::new(opts)?;
    for root in roots {
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(ScanError::NotADirectory(root.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ScanError::RootNotFound(root.clone()))
            }
            Err(e) => return Err(ScanError::Root(root.clone(), e)),
        }
    }
    Ok(())
}

/// Scan `roots`, handing what each directory held to `sink` as soon as it is read, from the
/// walker threads (the sink may block: that is the backpressure). Directories are tasks on a
/// work-stealing pool, so a lopsided tree keeps every thread busy; each directory is opened
/// relative to its parent's descriptor and its files are `stat`ed relative to it, so no path
/// is resolved from the root twice. With `opts.sort` the files arrive once, sorted, at the end.
pub fn scan_with(
    roots: &[PathBuf],
    opts: &ScanOptions,
    progress: &Progress,
    sink: &Sink<'_>,
) -> Result<Summary, ScanError> {
    let filter = Filter::new(opts)?;
    let mut root_ids = Vec::with_capacity(roots.len());
    for root in roots {
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => root_ids.push((m.dev(), m.ino())),
            Ok(_) => return Err(ScanError::NotADirectory(root.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ScanError::RootNotFound(root.clone()))
            }
            Err(e) => return Err(ScanError::Root(root.clone(), e)),
        }
    }
    let max_depth = if opts.recursive {
        opts.max_depth.unwrap_or(usize::MAX)
    } else {
        1
    };
    let mut summary = Summary::default();
    if max_depth == 0 {
        return Ok(summary);
    }
    let sorted = Mutex::new(Batch::default());
    let sort_sink = |b: Batch, _: Option<BorrowedFd<'_>>| {
        sorted.lock().unwrap_or_else(|e| e.into_inner()).append(b)
    };
    let walker = Walker {
        roots,
        root_ids: &root_ids,
        filter: &filter,
        max_depth,
        progress,
        sink: if opts.sort { &sort_sink } else { sink },
        held_fds: AtomicUsize::new(0),
        seen: AtomicU64::new(0),
    };
    let walk = || {
        rayon::scope(|s| {
            for (i, root) in roots.iter().enumerate() {
                let w = &walker;
                let task = DirTask {
                    path: root.clone(),
                    parent: None,
                    root: i as u32,
                    depth: 0,
                    ancestors: opts
                        .follow_symlinks
                        .then(|| Arc::new(Ancestor::root(root_ids[i]))),
                    order: vec![i as u32],
                };
                s.spawn(move |s| w.visit(s, task));
            }
        })
    };
    crate::pool::with_workers(opts.threads, walk);
    summary.entries_seen = walker.seen.load(Ordering::Relaxed);
    summary.cancelled = progress.is_cancelled();
    if opts.sort {
        let mut all = sorted.into_inner().unwrap_or_else(|e| e.into_inner());
        sort_batch(&mut all);
        if !all.is_empty() {
            sink(all, None);
        }
    }
    Ok(summary)
}

/// Open directory handles held by pending tasks, above which new tasks open by path instead
/// (a wide tree must not run the process out of descriptors).
const MAX_HELD_FDS: usize = 256;

/// The (device, inode) chain above a directory reached through followed links (loop checks).
struct Ancestor {
    id: (u64, u64),
    up: Option<Arc<Ancestor>>,
}

impl Ancestor {
    fn root(id: (u64, u64)) -> Self {
        Self { id, up: None }
    }

    fn contains(&self, id: (u64, u64)) -> bool {
        let mut at = Some(self);
        while let Some(a) = at {
            if a.id == id {
                return true;
            }
            at = a.up.as_deref();
        }
        false
    }
}

/// A directory to read: its path, and its parent's open handle to open it by name.
struct DirTask {
    path: PathBuf,
    parent: Option<Arc<OwnedFd>>,
    root: u32,
    /// Depth of this directory below its root (the root is 0).
    depth: usize,
    ancestors: Option<Arc<Ancestor>>,
    /// See [`Batch::order`].
    order: Vec<u32>,
}

struct Walker<'a> {
    roots: &'a [PathBuf],
    root_ids: &'a [(u64, u64)],
    filter: &'a Filter<'a>,
    max_depth: usize,
    progress: &'a Progress,
    sink: &'a Sink<'a>,
    held_fds: AtomicUsize,
    seen: AtomicU64,
}

/// One entry of a directory as `readdir` gives it.
struct RawEntry {
    name: OsString,
    d_type: u8,
}

impl<'a> Walker<'a> {
    fn visit<'s>(&'s self, scope: &rayon::Scope<'s>, task: DirTask) {
        if self.progress.is_cancelled() {
            return;
        }
        let mut out = Batch {
            order: task.order.clone(),
            ..Batch::default()
        };
        let fd = match open_dir(&task) {
            Ok(fd) => fd,
            Err(e) => {
                out.errors.push(FileError::from_io(&task.path, &e));
                self.progress.add_error();
                (self.sink)(out, None);
                return;
            }
        };
        drop(task.parent);
        let entries = match read_entries(&fd) {
            Ok(entries) => entries,
            Err(e) => {
                out.errors.push(FileError::from_io(&task.path, &e));
                self.progress.add_error();
                (self.sink)(out, None);
                return;
            }
        };
        let opts = self.filter.opts;
        let fd = Arc::new(fd);
        let depth = task.depth + 1;
        let root = &self.roots[task.root as usize];
        let rel_start = rel_start(root);
        for (position, raw) in entries.into_iter().enumerate() {
            out.seen += 1;
            let path = task.path.join(&raw.name);
            let rel = || Path::new(OsStr::from_bytes(&path.as_os_str().as_bytes()[rel_start..]));
            let mut kind = raw.d_type;
            if kind == libc::DT_UNKNOWN {
                match Stat::at(fd.as_raw_fd(), &raw.name, false) {
                    Ok(st) => kind = st.d_type,
                    Err(e) => {
                        out.errors.push(FileError::from_io(&path, &e));
                        self.progress.add_error();
                        continue;
                    }
                }
            }
            let mut followed: Option<Stat> = None;
            if kind == libc::DT_LNK {
                // A link: followed into directories only when asked; a link to a file is
                // listed as that file (as `Path.is_file()` does); a broken one is reported.
                match Stat::at(fd.as_raw_fd(), &raw.name, true) {
                    Ok(st) if st.d_type == libc::DT_DIR && !opts.follow_symlinks => continue,
                    Ok(st) => {
                        kind = st.d_type;
                        followed = Some(st);
                    }
                    Err(e) => {
                        let err = if e.raw_os_error() == Some(libc::ELOOP) {
                            FileError::new(&path, "SymlinkLoopError", "symbolic link loop")
                        } else if e.kind() == io::ErrorKind::NotFound {
                            FileError::new(
                                &path,
                                "FileNotFoundError",
                                "broken symbolic link: target does not exist",
                            )
                        } else {
                            FileError::from_io(&path, &e)
                        };
                        if self.filter.name_passes(&raw.name, &|| rel().to_path_buf()) {
                            out.errors.push(err);
                            self.progress.add_error();
                        }
                        continue;
                    }
                }
            }
            if kind == libc::DT_DIR {
                if depth >= self.max_depth || !self.filter.descend(&raw.name, rel()) {
                    continue;
                }
                let mut ancestors = task.ancestors.clone();
                if let Some(up) = &task.ancestors {
                    let id = match &followed {
                        Some(st) => (st.dev, st.ino),
                        None => match Stat::at(fd.as_raw_fd(), &raw.name, false) {
                            Ok(st) => (st.dev, st.ino),
                            Err(e) => {
                                out.errors.push(FileError::from_io(&path, &e));
                                self.progress.add_error();
                                continue;
                            }
                        },
                    };
                    if up.contains(id) {
                        out.errors
                            .push(loop_error(&path, self.roots, self.root_ids, up, id));
                        self.progress.add_error();
                        continue;
                    }
                    ancestors = Some(Arc::new(Ancestor {
                        id,
                        up: Some(up.clone()),
                    }));
                }
                if opts.same_file_system {
                    let dev = match &followed {
                        Some(st) => Ok(st.dev),
                        None => Stat::at(fd.as_raw_fd(), &raw.name, false).map(|s| s.dev),
                    };
                    match dev {
                        Ok(d) if d != self.root_ids[task.root as usize].0 => continue,
                        Ok(_) => {}
                        Err(e) => {
                            out.errors.push(FileError::from_io(&path, &e));
                            self.progress.add_error();
                            continue;
                        }
                    }
                }
                let parent = if self.held_fds.load(Ordering::Relaxed) < MAX_HELD_FDS {
                    Some(fd.clone())
                } else {
                    None
                };
                let mut order = Vec::with_capacity(task.order.len() + 1);
                order.extend_from_slice(&task.order);
                order.push(position as u32);
                let child = DirTask {
                    path,
                    parent,
                    root: task.root,
                    depth,
                    ancestors,
                    order,
                };
                if child.parent.is_some() {
                    self.held_fds.fetch_add(1, Ordering::Relaxed);
                }
                scope.spawn(move |s| {
                    let held = child.parent.is_some();
                    self.visit(s, child);
                    if held {
                        self.held_fds.fetch_sub(1, Ordering::Relaxed);
                    }
                });
                continue;
            }
            self.consider(
                &fd, path, &raw.name, kind, followed, rel_start, task.root, &mut out,
            );
        }
        self.seen.fetch_add(out.seen, Ordering::Relaxed);
        self.progress.add_items(out.seen);
        if !out.is_empty() || out.seen > 0 {
            (self.sink)(out, Some(fd.as_fd()));
        }
    }

    /// Apply the filters to one non-directory entry and record it.
    #[allow(clippy::too_many_arguments)]
    fn consider(
        &self,
        dir: &OwnedFd,
        path: PathBuf,
        name: &OsStr,
        d_type: u8,
        followed: Option<Stat>,
        rel_start: usize,
        root: u32,
        out: &mut Batch,
    ) {
        let filter = self.filter;
        let rel = || PathBuf::from(OsStr::from_bytes(&path.as_os_str().as_bytes()[rel_start..]));
        if !filter.name_passes(name, &rel) {
            return;
        }
        let Some(kind) = Kind::of_dtype(d_type) else {
            return;
        };
        let mut entry = Entry {
            path,
            root,
            size: 0,
            mtime_ns: 0,
            dev: 0,
            ino: 0,
            kind,
            link: followed.is_some(),
        };
        // A followed link was stat'ed already: its target's metadata costs nothing more.
        if filter.needs_stat || kind != Kind::File || followed.is_some() {
            let st = match followed {
                Some(st) => Ok(st),
                None => Stat::at(dir.as_raw_fd(), name, false),
            };
            let st = match st {
                Ok(st) => st,
                Err(e) => {
                    // Vanished between listing and stat, or unreadable: report, go on.
                    out.errors.push(FileError::from_io(&entry.path, &e));
                    self.progress.add_error();
                    return;
                }
            };
            entry.size = st.size;
            entry.mtime_ns = st.mtime_ns;
            entry.dev = st.dev;
            entry.ino = st.ino;
            if !filter.meta_passes(entry.size, entry.mtime_ns) {
                return;
            }
        }
        if kind == Kind::File || filter.opts.include_special {
            out.files.push(entry);
        } else {
            out.special.push(entry);
        }
    }
}

/// Seconds since the epoch exactly as Python's `os.stat().st_mtime` computes them from the
/// same nanoseconds (`sec + nsec * 1e-9`), so a scanned file equals `FileInfo.from_path`.
pub fn mtime_secs(ns: i64) -> f64 {
    let sec = ns.div_euclid(1_000_000_000);
    let nsec = ns.rem_euclid(1_000_000_000);
    sec as f64 + nsec as f64 * 1e-9
}

/// Where the path relative to `root` starts in a path below it.
pub fn rel_start(root: &Path) -> usize {
    let n = root.as_os_str().len();
    if root.as_os_str().as_bytes().ends_with(b"/") {
        n
    } else {
        n + 1
    }
}

fn loop_error(
    path: &Path,
    roots: &[PathBuf],
    root_ids: &[(u64, u64)],
    up: &Ancestor,
    id: (u64, u64),
) -> FileError {
    // Name the ancestor the link points to when it is a root; otherwise the link itself.
    let target = root_ids
        .iter()
        .position(|r| *r == id)
        .map(|i| roots[i].clone())
        .or_else(|| fs::canonicalize(path).ok())
        .unwrap_or_else(|| path.to_path_buf());
    let _ = up;
    FileError::new(
        path,
        "SymlinkLoopError",
        format!(
            "file system loop: link points to its ancestor {}",
            target.display()
        ),
    )
}

/// What the filters and the output need from `stat`.
#[derive(Debug, Clone, Copy)]
struct Stat {
    size: u64,
    mtime_ns: i64,
    dev: u64,
    ino: u64,
    d_type: u8,
}

impl Stat {
    /// `fstatat(dir, name)`, following a final link only when `follow`.
    // The field types of `libc::stat` differ between targets; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    fn at(dir: RawFd, name: &OsStr, follow: bool) -> io::Result<Stat> {
        let name = CString::new(name.as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut st = MaybeUninit::<libc::stat>::uninit();
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        // SAFETY: `name` is NUL-terminated and `st` is written by the kernel on success.
        let rc = unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), flags) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat returned 0, so the struct is initialised.
        let st = unsafe { st.assume_init() };
        let d_type = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => libc::DT_REG,
            libc::S_IFDIR => libc::DT_DIR,
            libc::S_IFLNK => libc::DT_LNK,
            libc::S_IFIFO => libc::DT_FIFO,
            libc::S_IFSOCK => libc::DT_SOCK,
            libc::S_IFBLK => libc::DT_BLK,
            libc::S_IFCHR => libc::DT_CHR,
            _ => libc::DT_UNKNOWN,
        };
        Ok(Stat {
            size: st.st_size as u64,
            mtime_ns: (st.st_mtime as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(st.st_mtime_nsec as i64),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            d_type,
        })
    }
}

/// Open a directory for reading: by name relative to its parent's handle when there is one,
/// else by path. Links are not followed here (a followed link was resolved by its parent).
fn open_dir(task: &DirTask) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let fd = match &task.parent {
        Some(parent) => {
            let name = task.path.file_name().unwrap_or_default();
            let c = CString::new(name.as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: `c` is NUL-terminated; the parent descriptor is open (we hold an Arc).
            unsafe { libc::openat(parent.as_raw_fd(), c.as_ptr(), flags) }
        }
        None => {
            let c = CString::new(task.path.as_os_str().as_bytes())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: `c` is NUL-terminated.
            unsafe { libc::open(c.as_ptr(), flags) }
        }
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Every entry of an open directory (`.` and `..` left out), read with `readdir` on a
/// duplicate of the handle so the handle itself stays open for `*at()` calls.
fn read_entries(dir: &OwnedFd) -> io::Result<Vec<RawEntry>> {
    // SAFETY: dup of a descriptor we own; fdopendir takes ownership of the duplicate.
    let dup = unsafe { libc::fcntl(dir.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a valid directory descriptor.
    let dirp = unsafe { libc::fdopendir(dup) };
    if dirp.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `dup` is still ours to close.
        unsafe { libc::close(dup) };
        return Err(err);
    }
    let mut out = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; readdir returns NULL at the end or on error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dirp` is a valid, open DIR*.
        let ent = unsafe { libc::readdir64(dirp) };
        if ent.is_null() {
            let errno = io::Error::last_os_error();
            break match errno.raw_os_error() {
                Some(0) | None => Ok(()),
                Some(_) => Err(errno),
            };
        }
        // SAFETY: a non-NULL dirent from readdir holds a NUL-terminated name.
        let (name, d_type) = unsafe {
            let e = &*ent;
            (CStr::from_ptr(e.d_name.as_ptr()).to_bytes(), e.d_type)
        };
        if name == b"." || name == b".." {
            continue;
        }
        out.push(RawEntry {
            name: OsStr::from_bytes(name).to_os_string(),
            d_type,
        });
    };
    // SAFETY: `dirp` is open; closedir closes the duplicate descriptor.
    unsafe { libc::closedir(dirp) };
    result.map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::symlink;

    fn touch(p: &Path, size: usize) {
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, vec![b'x'; size]).unwrap();
    }

    fn names(out: &ScanOutput, root: &Path) -> BTreeSet<String> {
        out.files
            .iter()
            .map(|e| {
                e.path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    fn run(root: &Path, opts: ScanOptions) -> ScanOutput {
        scan(&[root.to_path_buf()], &opts, &Progress::new()).unwrap()
    }

    fn sample() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        touch(&r.join("a.csv"), 10);
        touch(&r.join("B.CSV"), 200);
        touch(&r.join("notes.txt"), 5);
        touch(&r.join(".hidden.csv"), 5);
        touch(&r.join("sub/c.csv"), 300);
        touch(&r.join("sub/deep/d.csv"), 1);
        touch(&r.join("sub/deep/e.json"), 1);
        touch(&r.join("build/x.csv"), 1);
        touch(&r.join(".git/config"), 1);
        t
    }

    #[test]
    fn lists_everything_by_default_including_hidden() {
        let t = sample();
        let out = run(t.path(), ScanOptions::default());
        assert_eq!(out.files.len(), 9);
        assert!(out.errors.is_empty());
    }

    #[test]
    fn name_globs_match_names_and_path_globs_match_relative_paths() {
        let t = sample();
        let out = run(
            t.path(),
            ScanOptions {
                include: vec!["*.csv".into()],
                ..Default::default()
            },
        );
        assert!(names(&out, t.path()).contains("sub/deep/d.csv"));
        assert!(
            !names(&out, t.path()).contains("B.CSV"),
            "globs are case-sensitive"
        );
        let out = run(
            t.path(),
            ScanOptions {
                include: vec!["sub/*.csv".into()],
                ..Default::default()
            },
        );
        assert_eq!(
            names(&out, t.path()),
            BTreeSet::from(["sub/c.csv".to_string()])
        );
        let out = run(
            t.path(),
            ScanOptions {
                include: vec!["sub/**/*.csv".into()],
                ..Default::default()
            },
        );
        assert_eq!(
            names(&out, t.path()),
            BTreeSet::from(["sub/c.csv".into(), "sub/deep/d.csv".into()])
        );
    }

    #[test]
    fn excluded_directories_are_not_entered() {
        let t = sample();
        let out = run(
            t.path(),
            ScanOptions {
                exclude: vec!["build".into(), ".git".into()],
                ..Default::default()
            },
        );
        let n = names(&out, t.path());
        assert!(!n
            .iter()
            .any(|p| p.starts_with("build/") || p.starts_with(".git/")));
        assert!(n.contains("sub/deep/d.csv"));
    }

    #[test]
    fn extensions_are_case_insensitive_with_or_without_dot() {
        let t = sample();
        let out = run(
            t.path(),
            ScanOptions {
                extensions: vec!["csv".into()],
                ..Default::default()
            },
        );
        let n = names(&out, t.path());
        assert!(n.contains("B.CSV") && n.contains("a.csv") && !n.contains("notes.txt"));
        let out2 = run(
            t.path(),
            ScanOptions {
                extensions: vec![".CSV".into()],
                ..Default::default()
            },
        );
        assert_eq!(names(&out2, t.path()), n);
    }

    #[test]
    fn size_depth_hidden_and_recursion_filters() {
        let t = sample();
        let out = run(
            t.path(),
            ScanOptions {
                min_size: Some(100),
                max_size: Some(250),
                ..Default::default()
            },
        );
        assert_eq!(names(&out, t.path()), BTreeSet::from(["B.CSV".to_string()]));
        let out = run(
            t.path(),
            ScanOptions {
                recursive: false,
                ..Default::default()
            },
        );
        assert_eq!(out.files.len(), 4);
        let out = run(
            t.path(),
            ScanOptions {
                max_depth: Some(2),
                skip_hidden: true,
                ..Default::default()
            },
        );
        let n = names(&out, t.path());
        assert!(
            n.contains("sub/c.csv") && !n.contains("sub/deep/d.csv") && !n.contains(".hidden.csv")
        );
        assert!(!n.iter().any(|p| p.starts_with(".git")));
    }

    #[test]
    fn metadata_is_filled_and_relative_paths_work() {
        let t = sample();
        let roots = vec![t.path().to_path_buf()];
        let out = scan(
            &roots,
            &ScanOptions {
                sort: true,
                ..Default::default()
            },
            &Progress::new(),
        )
        .unwrap();
        let c = out
            .files
            .iter()
            .find(|e| e.path.ends_with("sub/c.csv"))
            .unwrap();
        assert_eq!(c.size, 300);
        assert!(c.mtime_ns > 0 && c.ino > 0);
        assert_eq!(c.relative(&roots), Path::new("sub/c.csv"));
        assert_eq!(c.extension(), ".csv");
        let paths: Vec<_> = out.files.iter().map(|e| e.path.clone()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn missing_root_and_file_root_are_errors() {
        let t = sample();
        let p = Progress::new();
        assert!(matches!(
            scan(&[t.path().join("nope")], &ScanOptions::default(), &p),
            Err(ScanError::RootNotFound(_))
        ));
        assert!(matches!(
            scan(&[t.path().join("a.csv")], &ScanOptions::default(), &p),
            Err(ScanError::NotADirectory(_))
        ));
        let bad = ScanOptions {
            include: vec!["[".into()],
            ..Default::default()
        };
        assert!(matches!(
            scan(&[t.path().to_path_buf()], &bad, &p),
            Err(ScanError::Pattern { .. })
        ));
    }

    #[test]
    fn broken_links_and_loops_are_reported_not_fatal() {
        let t = sample();
        let r = t.path();
        symlink(r.join("missing"), r.join("broken.csv")).unwrap();
        symlink(r, r.join("sub/loop")).unwrap();
        symlink(r.join("a.csv"), r.join("link.csv")).unwrap();
        let out = run(r, ScanOptions::default());
        assert!(out
            .errors
            .iter()
            .any(|e| e.path.ends_with("broken.csv") && e.error_type == "FileNotFoundError"));
        assert!(
            names(&out, r).contains("link.csv"),
            "links to files are listed"
        );
        let out = run(
            r,
            ScanOptions {
                follow_symlinks: true,
                ..Default::default()
            },
        );
        assert!(
            out.errors
                .iter()
                .any(|e| e.error_type == "SymlinkLoopError"),
            "{:?}",
            out.errors
        );
    }

    #[test]
    fn fifos_are_reported_not_listed() {
        let t = sample();
        let fifo = t.path().join("pipe.csv");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let out = run(t.path(), ScanOptions::default());
        assert!(!out.files.iter().any(|e| e.path == fifo));
        assert!(out
            .special
            .iter()
            .any(|e| e.path == fifo && e.kind == Kind::Fifo));
        let out = run(
            t.path(),
            ScanOptions {
                include_special: true,
                ..Default::default()
            },
        );
        assert!(out.files.iter().any(|e| e.path == fifo));
    }

    #[test]
    fn several_roots_and_single_thread_agree() {
        let a = sample();
        let b = sample();
        let roots = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let one = scan(
            &roots,
            &ScanOptions {
                threads: Some(1),
                sort: true,
                ..Default::default()
            },
            &Progress::new(),
        )
        .unwrap();
        let many = scan(
            &roots,
            &ScanOptions {
                threads: Some(4),
                sort: true,
                ..Default::default()
            },
            &Progress::new(),
        )
        .unwrap();
        assert_eq!(one.files, many.files);
        assert_eq!(one.files.len(), 18);
        assert!(one.files.iter().any(|e| e.root == 1));
    }

    #[test]
    fn cancel_stops_the_scan() {
        let t = sample();
        let p = Progress::new();
        p.cancel();
        let out = scan(&[t.path().to_path_buf()], &ScanOptions::default(), &p).unwrap();
        assert!(out.cancelled);
    }

    #[test]
    fn python_suffix_rules() {
        assert_eq!(suffix(OsStr::new("a.tar.gz")), Some(&b".gz"[..]));
        assert_eq!(suffix(OsStr::new(".bashrc")), None);
        assert_eq!(suffix(OsStr::new("noext")), None);
        assert_eq!(suffix(OsStr::new("trailing.")), None);
    }
}
