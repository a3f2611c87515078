//! Filtered directory scanning on top of `walkdir`.
//!
//! Speed comes from deciding as much as possible from the directory entry alone: the name is
//! matched against one compiled `GlobSet`, the extension against a small set, and the type comes
//! from `d_type`; `stat` runs only for entries that passed those tests and only when a size or
//! time filter or the caller needs it. Large trees are split into subtrees walked in parallel
//! by rayon, each by its own `walkdir` walker.
//!
//! Errors on single entries (permission denied, vanished, broken links, loops) never abort a
//! scan: they are collected in [`ScanOutput::errors`]. Only a missing or non-directory root and
//! a bad glob are fatal.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;
use walkdir::WalkDir;

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

    fn of(ft: &fs::FileType) -> Option<Kind> {
        if ft.is_file() {
            Some(Kind::File)
        } else if ft.is_fifo() {
            Some(Kind::Fifo)
        } else if ft.is_socket() {
            Some(Kind::Socket)
        } else if ft.is_block_device() {
            Some(Kind::BlockDevice)
        } else if ft.is_char_device() {
            Some(Kind::CharDevice)
        } else {
            None
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
}

impl Entry {
    /// The path relative to its root.
    pub fn relative<'a>(&'a self, roots: &[PathBuf]) -> &'a Path {
        self.path
            .strip_prefix(&roots[self.root as usize])
            .unwrap_or(&self.path)
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

/// Everything one walker collects; merged at the end.
#[derive(Default)]
struct Part {
    files: Vec<Entry>,
    special: Vec<Entry>,
    errors: Vec<FileError>,
    seen: u64,
    cancelled: bool,
}

impl Part {
    fn merge(mut self, other: Part) -> Part {
        self.files.extend(other.files);
        self.special.extend(other.special);
        self.errors.extend(other.errors);
        self.seen += other.seen;
        self.cancelled |= other.cancelled;
        self
    }
}

/// Entries between progress flushes and cancel checks (a few ms of walking).
const FLUSH_EVERY: u64 = 512;

/// A directory whose contents still have to be listed.
struct Pending {
    dir: PathBuf,
    root: u32,
    /// Depth of `dir` itself below its root (the root is 0).
    depth: usize,
}

/// Scan `roots` for files matching `opts`. Counts entries seen in `progress.items_done` and
/// stops early (with `cancelled` set) once `progress` is cancelled.
pub fn scan(
    roots: &[PathBuf],
    opts: &ScanOptions,
    progress: &Progress,
) -> Result<ScanOutput, ScanError> {
    let filter = Filter::new(opts)?;
    let mut root_devs = Vec::with_capacity(roots.len());
    for root in roots {
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => root_devs.push(m.dev()),
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
    if max_depth == 0 {
        return Ok(ScanOutput::default());
    }
    let threads = opts
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);

    // Following links, a walker needs every ancestor to detect loops, so the tree is walked by
    // one walker per root. Otherwise the top of the tree is listed breadth-first until there
    // are enough subtrees to keep every thread busy, and those are walked in parallel.
    let mut part = Part::default();
    let mut frontier: Vec<Pending> = roots
        .iter()
        .enumerate()
        .map(|(i, r)| Pending {
            dir: r.clone(),
            root: i as u32,
            depth: 0,
        })
        .collect();
    if !opts.follow_symlinks && threads > 1 {
        let want = threads * 16;
        while !frontier.is_empty() && frontier.len() < want && !progress.is_cancelled() {
            let mut next = Vec::new();
            for p in frontier {
                if p.depth + 1 > max_depth {
                    continue;
                }
                list_one_level(
                    &p, roots, &root_devs, &filter, max_depth, progress, &mut part, &mut next,
                );
            }
            frontier = next;
            if frontier.iter().all(|p| p.depth >= max_depth) {
                frontier.clear();
            }
        }
    }
    let walk = |p: &Pending| walk_subtree(p, roots, &filter, max_depth, progress);
    let rest = if threads > 1 && frontier.len() > 1 {
        crate::pool::with_workers(opts.threads, || {
            frontier
                .par_iter()
                .map(walk)
                .reduce(Part::default, Part::merge)
        })
    } else {
        frontier.iter().map(walk).fold(Part::default(), Part::merge)
    };
    let mut part = part.merge(rest);
    part.cancelled |= progress.is_cancelled();
    if opts.sort {
        part.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        part.special.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        part.errors.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(ScanOutput {
        files: part.files,
        special: part.special,
        errors: part.errors,
        entries_seen: part.seen,
        cancelled: part.cancelled,
    })
}

/// List the direct contents of `p.dir` (used to split the tree): files are handled, the
/// subdirectories to descend into are pushed on `next`.
#[allow(clippy::too_many_arguments)]
fn list_one_level(
    p: &Pending,
    roots: &[PathBuf],
    root_devs: &[u64],
    filter: &Filter,
    max_depth: usize,
    progress: &Progress,
    part: &mut Part,
    next: &mut Vec<Pending>,
) {
    let rd = match fs::read_dir(&p.dir) {
        Ok(rd) => rd,
        Err(e) => {
            part.errors.push(FileError::from_io(&p.dir, &e));
            progress.add_error();
            return;
        }
    };
    let root = &roots[p.root as usize];
    for item in rd {
        let de = match item {
            Ok(de) => de,
            Err(e) => {
                part.errors.push(FileError::from_io(&p.dir, &e));
                progress.add_error();
                continue;
            }
        };
        part.seen += 1;
        progress.add_items(1);
        let ft = match de.file_type() {
            Ok(ft) => ft,
            Err(e) => {
                part.errors.push(FileError::from_io(de.path(), &e));
                progress.add_error();
                continue;
            }
        };
        let path = de.path();
        let name = de.file_name();
        if ft.is_dir() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            if p.depth + 1 < max_depth && filter.descend(&name, rel) {
                if filter.opts.same_file_system {
                    match fs::symlink_metadata(&path) {
                        Ok(m) if m.dev() != root_devs[p.root as usize] => continue,
                        Ok(_) => {}
                        Err(e) => {
                            part.errors.push(FileError::from_io(&path, &e));
                            progress.add_error();
                            continue;
                        }
                    }
                }
                next.push(Pending {
                    dir: path,
                    root: p.root,
                    depth: p.depth + 1,
                });
            }
            continue;
        }
        consider(&path, &name, ft, None, root, p.root, filter, part, progress);
    }
}

/// Walk everything below `p.dir` with one walkdir walker.
fn walk_subtree(
    p: &Pending,
    roots: &[PathBuf],
    filter: &Filter,
    max_depth: usize,
    progress: &Progress,
) -> Part {
    let mut part = Part::default();
    let root = &roots[p.root as usize];
    let opts = filter.opts;
    let mut walker = WalkDir::new(&p.dir)
        .min_depth(1)
        .follow_links(opts.follow_symlinks)
        .same_file_system(opts.same_file_system);
    if max_depth != usize::MAX {
        walker = walker.max_depth(max_depth - p.depth);
    }
    let mut dirs = DirFds::new(&p.dir);
    let mut it = walker.into_iter();
    let mut since_flush = 0u64;
    loop {
        let item = match it.next() {
            None => break,
            Some(item) => item,
        };
        since_flush += 1;
        if since_flush == FLUSH_EVERY {
            progress.add_items(since_flush);
            since_flush = 0;
            if progress.is_cancelled() {
                part.cancelled = true;
                break;
            }
        }
        part.seen += 1;
        let de = match item {
            Ok(de) => de,
            Err(e) => {
                part.errors.push(walk_error(&e));
                progress.add_error();
                continue;
            }
        };
        let ft = de.file_type();
        let name = de.file_name();
        if ft.is_dir() {
            let rel = de.path().strip_prefix(root).unwrap_or(de.path());
            // walkdir's same_file_system compares with its own start, which the split above
            // already checked against the root's device.
            if filter.descend(name, rel) {
                dirs.enter(de.depth(), de.path());
            } else {
                it.skip_current_dir();
            }
            continue;
        }
        consider(
            de.path(),
            name,
            ft,
            dirs.parent_of(de.depth()),
            root,
            p.root,
            filter,
            &mut part,
            progress,
        );
    }
    progress.add_items(since_flush);
    part
}

/// What the filters and the output need from `stat`.
struct Stat {
    size: u64,
    mtime_ns: i64,
    dev: u64,
    ino: u64,
}

impl From<&fs::Metadata> for Stat {
    fn from(m: &fs::Metadata) -> Self {
        Stat {
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

impl Stat {
    /// `fstatat(dir, name)` without following a final link (callers resolve links themselves).
    // The field types of `libc::stat` differ between targets; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    fn at(dir: RawFd, name: &OsStr) -> io::Result<Stat> {
        let name = CString::new(name.as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut st = MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `name` is NUL-terminated and `st` is written by the kernel on success.
        let rc = unsafe {
            libc::fstatat(
                dir,
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fstatat returned 0, so the struct is initialised.
        let st = unsafe { st.assume_init() };
        Ok(Stat {
            size: st.st_size as u64,
            mtime_ns: (st.st_mtime as i64)
                .saturating_mul(1_000_000_000)
                .saturating_add(st.st_mtime_nsec as i64),
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        })
    }
}

/// Open handles on the directories above the walker's position, by depth, so files are
/// `stat`ed relative to their parent. Only the top `MAX_DEPTH` levels hold a descriptor, so a
/// very deep tree cannot exhaust them; deeper files fall back to a path `stat`.
struct DirFds {
    fds: Vec<Option<OwnedFd>>,
}

impl DirFds {
    const MAX_DEPTH: usize = 48;

    fn new(start: &Path) -> Self {
        Self {
            fds: vec![open_dir(start)],
        }
    }

    fn enter(&mut self, depth: usize, dir: &Path) {
        self.fds.truncate(depth);
        let fd = if depth < Self::MAX_DEPTH {
            open_dir(dir)
        } else {
            None
        };
        self.fds.push(fd);
    }

    fn parent_of(&self, depth: usize) -> Option<RawFd> {
        // Pre-order walk: the entry at `depth - 1` is always this entry's parent.
        self.fds
            .get(depth.checked_sub(1)?)?
            .as_ref()
            .map(|fd| fd.as_raw_fd())
    }
}

fn open_dir(dir: &Path) -> Option<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // O_PATH: a handle for *at() calls only; needs no read permission and reads nothing.
    // SAFETY: `c` is NUL-terminated; a non-negative result is a descriptor we now own.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        None
    } else {
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn walk_error(e: &walkdir::Error) -> FileError {
    let path = e.path().map(Path::to_path_buf).unwrap_or_default();
    if let Some(ancestor) = e.loop_ancestor() {
        return FileError::new(
            path,
            "SymlinkLoopError",
            format!(
                "file system loop: link points to its ancestor {}",
                ancestor.display()
            ),
        );
    }
    match e.io_error() {
        Some(io) => FileError::from_io(path, io),
        None => FileError::new(path, "OSError", e.to_string()),
    }
}

/// Apply the filters to one non-directory entry and record it.
#[allow(clippy::too_many_arguments)]
fn consider(
    path: &Path,
    name: &OsStr,
    ft: fs::FileType,
    parent: Option<RawFd>,
    root: &Path,
    root_idx: u32,
    filter: &Filter,
    part: &mut Part,
    progress: &Progress,
) {
    let rel = || path.strip_prefix(root).unwrap_or(path).to_path_buf();
    if !filter.name_passes(name, &rel) {
        return;
    }
    // A link not followed by the walker: keep it when it points to a file (as `Path.is_file()`
    // does), skip links to directories, and report broken ones.
    let mut kind = Kind::of(&ft);
    let mut meta = None;
    if ft.is_symlink() {
        match fs::metadata(path) {
            Ok(m) => {
                kind = Kind::of(&m.file_type());
                meta = Some(m);
            }
            Err(e) => {
                let err = if e.raw_os_error() == Some(libc::ELOOP) {
                    FileError::new(path, "SymlinkLoopError", "symbolic link loop")
                } else if e.kind() == io::ErrorKind::NotFound {
                    FileError::new(
                        path,
                        "FileNotFoundError",
                        "broken symbolic link: target does not exist",
                    )
                } else {
                    FileError::from_io(path, &e)
                };
                part.errors.push(err);
                progress.add_error();
                return;
            }
        }
    }
    let Some(kind) = kind else { return };
    let mut entry = Entry {
        path: path.to_path_buf(),
        root: root_idx,
        size: 0,
        mtime_ns: 0,
        dev: 0,
        ino: 0,
        kind,
    };
    if filter.needs_stat || kind != Kind::File {
        let st = match meta {
            Some(m) => Ok(Stat::from(&m)),
            // Relative to the open parent: no path walk from the root for every file.
            None => match parent {
                Some(fd) => Stat::at(fd, name),
                None => fs::metadata(path).map(|m| Stat::from(&m)),
            },
        };
        let st = match st {
            Ok(st) => st,
            Err(e) => {
                // Vanished between listing and stat, or unreadable: report, go on.
                part.errors.push(FileError::from_io(path, &e));
                progress.add_error();
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
        part.files.push(entry);
    } else {
        part.special.push(entry);
    }
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
